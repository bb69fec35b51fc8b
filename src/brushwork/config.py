"""The single source of defaults: :class:`StyleConfig` and the presets.

Each field is declared with :func:`brushwork.options.option`, which carries
its help, bounds and where it is exposed; the CLI builds its flags and the
studio its form from that description, and :func:`brushwork.stylize` accepts
the same names as keyword arguments, so a default lives in exactly one place.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Literal, TypedDict

from brushwork.budget import AUTO_CONTENT_BUDGET, CPU_CONTENT_BUDGET
from brushwork.errors import ConfigError
from brushwork.options import Option, describe, option

Model = Literal["vgg16", "vgg19"]
Device = Literal["auto", "cpu", "cuda", "mps"]
Precision = Literal["auto", "fp32", "bf16", "fp16"]
Pooling = Literal["max", "avg"]
StyleFit = Literal["area", "stretch"]
Optimizer = Literal["adam", "lbfgs"]
PreserveColor = Literal["none", "luminance", "histogram"]
StyleLossKind = Literal["gram", "meancov", "sliced"]
Balance = Literal["auto", "book"]
Init = Literal["recolored", "content", "noise", "style-stats", "image"]

#: Output sides below this cannot pass VGG's four 2x poolings to conv5_1.
MIN_SIZE = 16
#: Largest long side accepted at all; what fits in memory is checked per run (plan.py).
MAX_SIZE = 32768
#: Most scales a pyramid may have (128 px to 32768 px in √2 steps is 17).
MAX_SCALES = 24
#: Most iterations per scale: far beyond convergence (L-BFGS needs hundreds).
MAX_ITERATIONS = 100_000
#: torch's generators take seeds in 0 .. 2**64 - 1.
MAX_SEED = 2**64 - 1

_WEIGHT_DEFAULT = "calibrated per backbone and optimizer; `brushwork models` lists them"


@dataclass(frozen=True)
class Stage:
    """One optimization stage: the long side in pixels, iterations, lr decay period."""

    size: int
    iterations: int
    lr_decay_every: int


#: The StyleConfig fields that :meth:`StyleConfig.for_device` resolves when they are
#: unset; a run record stores them resolved (batch reruns match on that).
DEVICE_RESOLVED = ("iterations", "content_budget")


@dataclass(frozen=True)
class StyleConfig:
    """Every knob of a style transfer run, with its default.

    Loss weights left at ``None`` are resolved by :mod:`brushwork.balance` from
    the backbone's calibration, the optimizer and the style loss.
    """

    model: Model = option("vgg16", "backbone network")
    model_weights: str | None = option(
        None,
        "local network weights file (.safetensors or torchvision .pth) instead of the "
        "backbone's default source",
        studio=False,
        default_text="the backbone's own source; see `brushwork models`",
        metavar="PATH",
    )
    size: int = option(
        512,
        "long side of the output in pixels (aspect ratio is kept)",
        low=MIN_SIZE,
        high=MAX_SIZE,
    )
    # None = by device (AUTO_ITERATIONS): the engine resolves it before planning, and
    # the run record stores the number that ran.
    iterations: int | None = option(
        None,
        "optimizer iterations (per scale)",
        low=1,
        high=MAX_ITERATIONS,
        default_text=(
            "30 on the CPU (20 on a square canvas; 60 and 40 where bf16 runs on AMX, "
            "up to 1024 px), 300 on a CUDA GPU"
        ),
    )
    scales: int = option(
        2,
        "coarse-to-fine pyramid: number of scales from --min-size up to --size "
        "(1 = single scale; 0 = automatic, one scale per √2 step)",
        low=0,
        high=MAX_SCALES,
    )
    min_size: int = option(
        256, "long side of the pyramid's first scale", low=MIN_SIZE, high=MAX_SIZE
    )
    tile: int = option(
        0,
        "tile side in pixels of the exact tiled objective at large sizes (0 = automatic: "
        "untiled when it fits in memory, else the largest tiles that fit)",
        low=0,
        high=MAX_SIZE,
        studio=False,
    )
    max_memory: float | None = option(
        None,
        "memory budget in GB: tiles and the L-BFGS history shrink to fit it, and a run "
        "that cannot fit is refused",
        low=0.5,
        high=1e6,
        default_text="what the machine has available",
        metavar="GB",
        studio=False,
    )
    # L-BFGS by default: on the book's pair at 512 px it reaches a 6x lower objective than
    # Adam at equal time (benchmarks/RESULTS.md, "time to quality").
    optimizer: Optimizer = option(
        "lbfgs", "lbfgs (Gatys's and neural-style's; lr 1, --lr unused) or adam (the book's)"
    )
    lbfgs_history: int = option(100, "L-BFGS history size", low=1, high=1000)
    tol: float = option(
        0.0,
        "stop a scale early when the loss changes by less than this fraction over "
        "--tol-window iterations (0 = never)",
        low=0,
        high=1,
    )
    tol_window: int = option(20, "window of the --tol test, iterations", low=1, high=MAX_ITERATIONS)
    lr: float = option(
        0.01, "Adam learning rate on the normalized image", low=0, low_open=True, high=100
    )
    lr_decay_every: int = option(
        200,
        "multiply the learning rate by --lr-decay every N iterations",
        low=1,
        high=MAX_ITERATIONS,
    )
    lr_decay: float = option(0.1, "learning-rate decay factor", low=0, low_open=True, high=1)
    balance: Balance = option(
        "auto",
        "how the loss terms are weighed: auto (each term relative to its own target, so one "
        "--strength means the same on every painting) or book (the book's raw losses with "
        "calibrated weights)",
    )
    strength: float = option(
        1.0,
        "how strongly the painting's style is imposed (auto balance): the style/content "
        "weight ratio relative to the default",
        low=0,
        low_open=True,
        high=1000,
    )
    content_budget: float | None = option(
        None,
        "auto balance: how far the result's structure may move from the photo (the "
        "quality metric's content distance); the style weight is corrected for the pair "
        "to end there, times --strength's share. 0 = off",
        low=0,
        high=10,
        default_text="0.82 on the CPU, off on a CUDA GPU",
        studio=False,
    )
    content_weight: float | None = option(
        None, "content loss weight", low=0, default_text=_WEIGHT_DEFAULT
    )
    style_weight: float | None = option(
        None, "style loss weight", low=0, default_text=_WEIGHT_DEFAULT
    )
    tv_weight: float | None = option(
        None, "total-variation loss weight", low=0, default_text=_WEIGHT_DEFAULT
    )
    content_layers: tuple[str, ...] | None = option(
        None,
        "comma-separated content layers",
        default_text="the last conv of block 4: conv4_3 on vgg16, conv4_4 on vgg19",
    )
    style_layers: tuple[str, ...] = option(
        ("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1"), "comma-separated style layers"
    )
    style_layer_weights: tuple[float, ...] | None = option(
        None,
        "comma-separated weights, one per style layer",
        low=0,
        default_text="1 for every style layer",
    )
    style_loss: StyleLossKind = option(
        "gram",
        "gram (the book's Gram-matrix MSE), meancov (feature means and covariances) or "
        "sliced (sliced Wasserstein: whole feature distributions, along random directions)",
    )
    style_blend: tuple[float, ...] | None = option(
        None,
        "comma-separated blend weights, one per style image",
        low=0,
        default_text="equal",
    )
    style_scale: float = option(
        1.0,
        "size of the style image relative to the output (brush-stroke size)",
        low=0,
        low_open=True,
        high=16,
    )
    preserve_color: PreserveColor = option(
        "none",
        "keep the content's colours: luminance-only transfer, or recolour the style "
        "to the content's colour statistics first (histogram)",
    )
    init: Init = option(
        "recolored",
        "starting image: the content recoloured to the painting's colour mean and "
        "covariance, the content as it is (the book's start), white noise, noise with "
        "the style's colour statistics, or the image given by --init-image",
    )
    init_image: str | None = option(
        None,
        "starting image file (implies --init image)",
        studio=False,
        default_text="none",
        metavar="PATH",
    )
    pooling: Pooling = option("max", "VGG pooling layers")
    style_fit: StyleFit = option(
        "area",
        "resize the style image to the output's area keeping its aspect ratio, "
        "or stretch it to the output's exact shape (the book's way)",
    )
    device: Device = option("auto", "compute device")
    precision: Precision = option(
        "auto", "network precision; auto = bf16 where the hardware has it, else fp32"
    )
    channels_last: bool = option(True, "run the network in channels-last memory layout")
    clamp: bool = option(
        True, "keep the image in the valid pixel range while optimizing (the book does not)"
    )
    seed: int = option(0, "random seed", low=0, high=MAX_SEED)
    stages: tuple[Stage, ...] = option(
        (),
        "explicit stages; empty = the pyramid from size, scales and iterations",
        cli=False,
        studio=False,
    )

    def __post_init__(self) -> None:
        # Accept lists from Python callers and JSON; keep the dataclass hashable.
        for name in ("content_layers", "style_layers", "style_layer_weights", "style_blend"):
            value = getattr(self, name)
            if isinstance(value, list):
                object.__setattr__(self, name, tuple(value))
        # An init image is a start of its own: setting one implies init "image"
        # (over the content starts, "recolored" being the default; noise or
        # style-stats with it is refused).
        if self.init_image is not None and self.init in ("recolored", "content"):
            object.__setattr__(self, "init", "image")
        # JSON and Python callers may give a whole float (3.0) for an int option; it
        # passes validation, but range() and tensor shapes need a real int.
        for opt in OPTIONS:
            value = getattr(self, opt.name)
            if opt.kind == "int" and isinstance(value, float) and value.is_integer():
                object.__setattr__(self, opt.name, int(value))
        # Stages may come back from a run record as dicts.
        stages = tuple(s if isinstance(s, Stage) else Stage(**s) for s in self.stages)
        object.__setattr__(self, "stages", stages)

    def for_device(
        self,
        device_type: str,
        canvas: tuple[int, int] | None = None,
        *,
        fast_cpu: bool = False,
    ) -> StyleConfig:
        """This config with ``iterations`` left at None set for ``device_type``
        ("cpu", "cuda", "mps"; :data:`AUTO_ITERATIONS`) and the output's
        ``canvas`` (width, height; :func:`cpu_iterations`), and ``content_budget``
        left at None set for the device (:data:`~brushwork.budget.AUTO_CONTENT_BUDGET`).
        ``fast_cpu``: the run computes in bf16 on AMX tiles
        (:func:`~brushwork.devices.cpu_runs_amx_bf16`), which affords
        :data:`FAST_CPU_ITERATIONS` per scale up to :data:`FULL_ITERATIONS_SIZE`."""
        cfg = self
        if cfg.iterations is None:
            its = AUTO_ITERATIONS.get(device_type)
            if its is None:
                fast = fast_cpu and cfg.size <= FULL_ITERATIONS_SIZE
                per_scale = FAST_CPU_ITERATIONS if fast else CPU_ITERATIONS
                its = per_scale if canvas is None else cpu_iterations(*canvas, per_scale)
            cfg = dataclasses.replace(cfg, iterations=its)
        if cfg.content_budget is None:
            budget = AUTO_CONTENT_BUDGET.get(device_type, CPU_CONTENT_BUDGET)
            cfg = dataclasses.replace(cfg, content_budget=budget)
        return cfg

    def resolved_stages(self) -> tuple[Stage, ...]:
        """The stages to run: explicit ones, else the pyramid from min_size to size.

        With ``scales == 0`` the sizes rise from ``min_size`` by factors of √2 up to
        ``size``; with ``scales == n`` there are n sizes spaced geometrically between
        the two (n = 1: ``size`` only, the book's single stage).
        """
        if self.stages:
            return self.stages
        sizes = pyramid_sizes(self.size, self.min_size, self.scales)
        # Before the device is known (the studio's and the CLI's checks, which need
        # the sizes only) an unset count reads as the CPU's; runs call for_device first.
        its = CPU_ITERATIONS if self.iterations is None else self.iterations
        return tuple(
            Stage(
                s,
                print_iterations(its, s) if i else its,
                self.lr_decay_every,
            )
            for i, s in enumerate(sizes)
        )

    def validate(self) -> None:
        """Raise :class:`ConfigError` for values that cannot work.

        Every field is checked against its :class:`~brushwork.options.Option`
        (kind, choices, finite numbers, bounds), then combinations are checked.
        Needs no weights and no images: what depends on them is checked in
        :mod:`brushwork.plan`.
        """
        for opt in OPTIONS:
            opt.check(getattr(self, opt.name))
        for st in self.stages:
            if not MIN_SIZE <= st.size <= MAX_SIZE:
                raise ConfigError(f"stage size must be {MIN_SIZE}..{MAX_SIZE} px, got {st.size}")
            if not 1 <= st.iterations <= MAX_ITERATIONS:
                raise ConfigError(
                    f"stage iterations must be 1..{MAX_ITERATIONS}, got {st.iterations}"
                )
            if st.lr_decay_every < 1:
                raise ConfigError(f"lr decay period must be >= 1, got {st.lr_decay_every}")
        weights = self.style_layer_weights
        if weights is not None and len(weights) != len(self.style_layers):
            raise ConfigError(
                f"{len(weights)} style layer weights for {len(self.style_layers)} style layers"
            )
        if self.style_blend is not None and not sum(self.style_blend) > 0:
            raise ConfigError("style blend weights must not all be 0")
        if self.init == "image" and self.init_image is None:
            raise ConfigError("init 'image' needs an init image file")
        if self.init_image is not None and self.init != "image":
            raise ConfigError(f"an init image is only used with init 'image', not {self.init!r}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready parameters, for the run record."""
        return dataclasses.asdict(self)


#: The description of every StyleConfig field, read by the CLI, the studio and validate().
OPTIONS: tuple[Option, ...] = describe(StyleConfig)


#: Iterations per scale on the CPU when none are given. On the 256 -> 512 pyramid the
#: coarse scale lays the large strokes cheaply; at 512 px most of the style gap is closed
#: by iteration 30 (rainier + Starry Night: 0.714 at 20, 0.718 at 30 and at 60), and
#: later iterations mostly pull the content distance down, at 0.57 s each on a 2-core
#: CPU. 30 fit issue 9's 30 s on 3:2 photos (README "Quality").
CPU_ITERATIONS = 30
#: Iterations per scale on a CPU whose run computes in bf16 on AMX tiles (Intel Xeon
#: from Sapphire Rapids on): there a 512 px run of 30 takes 9-12 s, and 60 take
#: 17-25 s (two sessions' Xeons, 2026-12-03), still inside issue 9's 30 s. The later
#: iterations bring the photo's structure back at the same style (the content budget
#: then spends that on style): on the 20 quality pairs, 17/20 on target at 60, mean gap
#: 0.797 at content 0.804, against 15/20, 0.772 / 0.826 at 30 (README "Quality",
#: 2026-12-03; 18/20 with the budget's late look, which gains nothing at 30). CPUs without AMX
#: keep 30: an AVX512-BF16 Zen 4 took 22 s at 30 (2026-11-28, RESULTS.md).
FAST_CPU_ITERATIONS = 60
#: The canvas CPU_ITERATIONS was set on: a 3:2 photo, whose short side is 2/3 of its long
#: side. A squarer canvas has more pixels at the same --size and costs more per iteration.
REFERENCE_FILL = 2 / 3


def cpu_iterations(width: int, height: int, per_scale: int = CPU_ITERATIONS) -> int:
    """Default iterations per scale on the CPU for a ``width`` × ``height`` output.

    ``per_scale`` (CPU_ITERATIONS, or FAST_CPU_ITERATIONS) on a 3:2 canvas or a longer
    one; on a squarer canvas the count falls with its area at the same long side, so
    the run's work stays that of a 3:2 photo: 20 (40) on a square. The default is a
    time budget (issue 9: a 512 px run in 30 s on a 2-core CPU); a square at 30 took
    33-34 s and at 20 stays on target on the quality pairs (README "Quality").
    """
    fill = min(width, height) / max(width, height, 1)
    if fill <= REFERENCE_FILL:
        return per_scale
    return round(per_scale * REFERENCE_FILL / fill)  # fill <= 1, so 2/3 of it at least


#: Iterations per scale by device type when none are given (any other type: the CPU's,
#: cpu_iterations; MPS was not measured). A GPU runs 300 in about
#: 13 s at 512 px (H100, benchmarks/gpu.py), and those iterations keep the style while
#: the content comes back: over the 20 quality pairs, mean gap 0.782 at content 0.703
#: with 17/20 on target, against 0.771 / 0.815, 11/20 at 30 on the same GPU.
AUTO_ITERATIONS: dict[str, int] = {"cuda": 300}

#: Largest ratio between two pyramid scales: a bigger jump upsamples strokes so
#: far that the next scale must repaint them (256 -> 4096 would be 16x).
MAX_SCALE_STEP = 2.0
#: Scales above this long side refine what the coarser ones painted and run
#: fewer iterations (:func:`print_iterations`).
FULL_ITERATIONS_SIZE = 1024
#: The fewest iterations a print scale runs.
MIN_PRINT_ITERATIONS = 6


def pyramid_sizes(size: int, min_size: int, scales: int) -> list[int]:
    """Long sides of a coarse-to-fine pyramid ending at ``size``.

    With more than one scale, scales are added where two would be more than
    :data:`MAX_SCALE_STEP` apart, so that ``--size 4096`` climbs 256, 512, …, 4096.
    """
    if scales == 1 or min_size >= size:
        return [size]
    if scales == 0:
        sizes = [size]
        while sizes[-1] / math.sqrt(2) >= min_size - 0.5:
            sizes.append(round(sizes[-1] / math.sqrt(2)))
        return sorted(set(sizes))
    ratio = (size / min_size) ** (1 / (scales - 1))
    if ratio > MAX_SCALE_STEP:
        ratio = (size / min_size) ** (1 / math.ceil(math.log(size / min_size, MAX_SCALE_STEP)))
        scales = round(math.log(size / min_size, ratio)) + 1
    return [round(min_size * ratio**i) for i in range(scales - 1)] + [size]


def print_iterations(iterations: int, size: int) -> int:
    """Iterations of a pyramid scale after the first, at long side ``size``.

    Up to :data:`FULL_ITERATIONS_SIZE` every scale runs ``iterations``; above
    it the count falls as 1/size (the composition is set; each doubling costs
    4x per iteration and needs fewer to sharpen the strokes it inherits), so a
    4096 px print runs 30, 30, 30, 15, 8 iterations on its last five scales.
    """
    if size <= FULL_ITERATIONS_SIZE:
        return iterations
    return max(
        min(iterations, MIN_PRINT_ITERATIONS), math.ceil(iterations * FULL_ITERATIONS_SIZE / size)
    )


class StyleOptions(TypedDict, total=False):
    """Keyword arguments accepted by :func:`brushwork.stylize`: the fields of StyleConfig.

    A test keeps this in step with :class:`StyleConfig`, names and types.
    """

    model: Model
    model_weights: str | None
    size: int
    iterations: int | None
    scales: int
    min_size: int
    optimizer: Optimizer
    tile: int
    max_memory: float | None
    lbfgs_history: int
    tol: float
    tol_window: int
    lr: float
    lr_decay_every: int
    lr_decay: float
    balance: Balance
    strength: float
    content_budget: float | None
    content_weight: float | None
    style_weight: float | None
    tv_weight: float | None
    content_layers: tuple[str, ...] | None
    style_layers: tuple[str, ...]
    style_layer_weights: tuple[float, ...] | None
    style_loss: StyleLossKind
    style_blend: tuple[float, ...] | None
    style_scale: float
    preserve_color: PreserveColor
    init: Init
    init_image: str | None
    pooling: Pooling
    style_fit: StyleFit
    device: Device
    precision: Precision
    channels_last: bool
    clamp: bool
    seed: int
    stages: tuple[Stage, ...]


#: Named recipes. Each is a set of overrides on StyleConfig; options the user sets win.
PRESETS: dict[str, dict[str, Any]] = {
    # The d2l chapter's full experiment: 150x225 for 500 iterations (decay every
    # 200), then upsampled to 600x900 for 300 more (decay every 100). The book
    # stretches the style image to the content's shape.
    "d2l": {
        "stages": (Stage(225, 500, 200), Stage(900, 300, 100)),
        "optimizer": "adam",
        "lr": 0.01,
        "lr_decay": 0.1,
        "style_fit": "stretch",
        "clamp": False,
        "balance": "book",
    },
    # A quick look: small and short, on any device. 30 iterations, not 60: at 384 px the
    # pictures look the same (rainier + Starry Night, astronaut + great wave side by
    # side) in half the time (README "Presets").
    "fast": {"size": 384, "scales": 1, "iterations": 30},
    # The best picture: coarse-to-fine from 256 px to 1024 px in √2 steps, each scale
    # until it converges (or 150 iterations), matching statistics of the style.
    # Not from 128 px: there the canvas is no larger than the receptive field of the
    # deepest style layer (VGG-16's conv5_1 sees 132 px), so that layer's Gram matrix
    # describes the painting's composition (Starry Night's moon and swirls), 150
    # iterations paint it across the canvas, and every finer scale keeps it: one large
    # branching stroke pattern across the sky (README "Presets" shows before and after).
    # The default pyramid starts at 256 px too.
    # And the sliced Wasserstein style loss, not Gram's: a Gram matrix is an average over
    # the canvas, so a strongly painted patch beside unpainted ones can match it as well
    # as an evenly painted canvas (Risser et al. 2017), and run to convergence the Gram
    # objective went there: at 1024 px a fan of strokes crossed the middle of the sky and
    # the clouds either side stayed photo, worse with 500 iterations per scale than 150,
    # better with 30. Matching whole feature distributions penalizes that mix; with
    # sliced the whole sky is painted (README "Presets").
    "quality": {
        "size": 1024,
        "scales": 0,
        "min_size": 256,
        "iterations": 150,
        "tol": 2e-3,
        "tol_window": 20,
        "style_loss": "sliced",
    },
}


def rescale_stages(
    stages: tuple[Stage, ...],
    *,
    size: int | None = None,
    iterations: int | None = None,
    lr_decay_every: int | None = None,
) -> tuple[Stage, ...]:
    """Explicit stages with the last one's size, iterations or decay period set.

    Earlier stages keep their ratios to the last one, so ``size`` is always the
    output's long side and ``iterations`` the last stage's (d2l: ``size=450``
    gives 113 then 450 px; ``iterations=30`` gives 50 then 30 iterations, decay
    periods 20 and 10).
    """
    last = stages[-1]

    def scaled(value: int, new: int | None, ref: int) -> int:
        return value if new is None else max(1, round(value * new / ref))

    out = []
    for st in stages:
        its = scaled(st.iterations, iterations, last.iterations)
        decay = scaled(st.lr_decay_every, iterations, last.iterations)
        out.append(
            Stage(
                size=scaled(st.size, size, last.size),
                iterations=its,
                lr_decay_every=scaled(st.lr_decay_every, lr_decay_every, last.lr_decay_every)
                if lr_decay_every is not None
                else decay,
            )
        )
    return tuple(out)


def make_config(preset: str | None = None, **overrides: Any) -> StyleConfig:
    """Build a config from an optional preset plus the options the user set (which win).

    A preset with explicit stages (``d2l``) takes ``size``, ``iterations`` and
    ``lr_decay_every`` as the last stage's, earlier stages keeping their ratios
    (:func:`rescale_stages`); ``scales`` and ``min_size`` cannot change its
    stages and are refused. Setting ``init_image`` alone implies ``init="image"``.
    """
    values: dict[str, Any] = {}
    if preset is not None:
        if preset not in PRESETS:
            raise ConfigError(f"unknown preset {preset!r} (choose from {', '.join(PRESETS)})")
        values.update(PRESETS[preset])
    known = {f.name for f in dataclasses.fields(StyleConfig)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ConfigError(f"unknown option(s): {', '.join(unknown)}")
    if "stages" in values and "stages" not in overrides:
        fixed = sorted({"scales", "min_size"} & set(overrides))
        if fixed:
            raise ConfigError(
                f"preset {preset} runs fixed stages; {' and '.join(fixed)} cannot change them "
                "(size and iterations can)"
            )
        staged = ("size", "iterations", "lr_decay_every")
        for opt in OPTIONS:
            if opt.name in staged and opt.name in overrides:
                opt.check(overrides[opt.name])  # before they scale the stages
        stages = rescale_stages(
            values["stages"],
            size=overrides.get("size"),
            iterations=overrides.get("iterations"),
            lr_decay_every=overrides.get("lr_decay_every"),
        )
        values["stages"] = stages
        # The record's size and iterations then say what the last stage ran.
        values["size"] = stages[-1].size
        values["iterations"] = stages[-1].iterations
        values["lr_decay_every"] = stages[-1].lr_decay_every
        overrides = {k: v for k, v in overrides.items() if k not in staged}
    values.update(overrides)
    return StyleConfig(**values)
