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
#: they start from the warped previous output, already painted, so 20 iterations
#: at the full size held the style (docs/video.md, measured when the default ran 60
#: per scale and this fraction was a third). Two thirds of today's 30 keeps those 20.
LATER_FRACTION = 2 / 3
