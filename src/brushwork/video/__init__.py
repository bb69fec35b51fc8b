"""Video style transfer with temporal consistency (Ruder, Dosovitskiy & Brox 2016).

The modules: :mod:`~brushwork.video.flow` (DIS flow, warping, the consistency
mask), :mod:`~brushwork.video.temporal` (the loss), :mod:`~brushwork.video.media`
(PyAV in and out), :mod:`~brushwork.video.run` (the driver,
:func:`~brushwork.video.run.stylize_video`), :mod:`~brushwork.video.cli`.
This package imports nothing heavy, so the CLI's parser can read its defaults.
"""

#: Default weight of the temporal term. Measured on a pan (benchmarks/video.py,
#: docs/video.md): flicker falls steeply up to ~20 and slowly beyond, while the
#: style gap closed per frame stays within ~2 % of per-frame runs.
DEFAULT_TEMPORAL_WEIGHT = 20.0
#: Later frames run this fraction of the last stage's iterations (at least 1):
#: they start from the warped previous output, already painted, so a third of
#: the budget holds the style (docs/video.md) and costs under a third of frame 1.
LATER_FRACTION = 1 / 3
