"""The single source of defaults: :class:`StyleConfig` and the presets.

The CLI builds its flags from these fields (name, type, ``help`` metadata), and
:func:`brushwork.stylize` accepts the same names as keyword arguments, so a
default lives in exactly one place.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Literal, TypedDict

from brushwork.errors import ConfigError

Model = Literal["vgg16", "vgg19"]
Device = Literal["auto", "cpu", "cuda", "mps"]
Precision = Literal["auto", "fp32", "bf16", "fp16"]
Pooling = Literal["max", "avg"]
StyleFit = Literal["area", "stretch"]
Optimizer = Literal["adam", "lbfgs"]
PreserveColor = Literal["none", "luminance", "histogram"]
StyleLossKind = Literal["gram", "meancov"]

#: Output sizes below this cannot pass VGG's four 2x poolings to conv5_1.
MIN_SIZE = 16


@dataclass(frozen=True)
class Stage:
    """One optimization stage: the long side in pixels, iterations, lr decay period."""

    size: int
    iterations: int
    lr_decay_every: int


def _opt(help: str, *, cli: bool = True, metavar: str | None = None) -> dict[str, Any]:
    return {"help": help, "cli": cli, "metavar": metavar}


@dataclass(frozen=True)
class StyleConfig:
    """Every knob of a style transfer run, with its default.

    Weights left at ``None`` take the backbone's calibrated defaults (see
    :mod:`brushwork.backbones`): the book's (1, 1e3, 10) on ``vgg19``.
    """

    model: Model = field(default="vgg16", metadata=_opt("backbone network"))
    weights: str | None = field(
        default=None,
        metadata=_opt(
            "local weights file (.safetensors or torchvision .pth) instead of the default source",
            metavar="PATH",
        ),
    )
    size: int = field(
        default=512, metadata=_opt("long side of the output in pixels (aspect ratio is kept)")
    )
    iterations: int = field(default=200, metadata=_opt("optimizer iterations (per scale)"))
    scales: int = field(
        default=1,
        metadata=_opt(
            "coarse-to-fine pyramid: number of scales from --min-size up to --size "
            "(1 = single scale; 0 = automatic, one scale per √2 step)"
        ),
    )
    min_size: int = field(default=128, metadata=_opt("long side of the pyramid's first scale"))
    # L-BFGS by default: on the book's pair at 512 px it reaches a 6x lower objective than
    # Adam at equal time (benchmarks/RESULTS.md, "time to quality").
    optimizer: Optimizer = field(
        default="lbfgs",
        metadata=_opt("lbfgs (Gatys's and neural-style's; lr 1, --lr unused) or adam (the book's)"),
    )
    lbfgs_history: int = field(default=100, metadata=_opt("L-BFGS history size"))
    tol: float = field(
        default=0.0,
        metadata=_opt(
            "stop a scale early when the loss changes by less than this fraction over "
            "--tol-window iterations (0 = never)"
        ),
    )
    tol_window: int = field(default=20, metadata=_opt("window of the --tol test, iterations"))
    lr: float = field(default=0.01, metadata=_opt("Adam learning rate on the normalized image"))
    lr_decay_every: int = field(
        default=200, metadata=_opt("multiply the learning rate by --lr-decay every N iterations")
    )
    lr_decay: float = field(default=0.1, metadata=_opt("learning-rate decay factor"))
    content_weight: float | None = field(
        default=None, metadata=_opt("content loss weight (default: per backbone)")
    )
    style_weight: float | None = field(
        default=None, metadata=_opt("style loss weight (default: per backbone)")
    )
    tv_weight: float | None = field(
        default=None, metadata=_opt("total-variation loss weight (default: per backbone)")
    )
    content_layers: tuple[str, ...] | None = field(
        default=None,
        metadata=_opt("comma-separated content layers (default: last conv of block 4)"),
    )
    style_layers: tuple[str, ...] = field(
        default=("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1"),
        metadata=_opt("comma-separated style layers"),
    )
    style_layer_weights: tuple[float, ...] | None = field(
        default=None,
        metadata=_opt("comma-separated weights, one per style layer (default: all 1)"),
    )
    style_loss: StyleLossKind = field(
        default="gram",
        metadata=_opt(
            "gram (the book's Gram-matrix MSE) or meancov (feature means and covariances)"
        ),
    )
    style_blend: tuple[float, ...] | None = field(
        default=None,
        metadata=_opt("comma-separated blend weights, one per style image (default: equal)"),
    )
    style_scale: float = field(
        default=1.0,
        metadata=_opt("size of the style image relative to the output (brush-stroke size)"),
    )
    preserve_color: PreserveColor = field(
        default="none",
        metadata=_opt(
            "keep the content's colours: luminance-only transfer, or recolour the style "
            "to the content's colour statistics first (histogram)"
        ),
    )
    init: str = field(
        default="content",
        metadata=_opt("starting image: content, noise, style-stats, or an image PATH"),
    )
    pooling: Pooling = field(default="max", metadata=_opt("VGG pooling layers"))
    style_fit: StyleFit = field(
        default="area",
        metadata=_opt(
            "resize the style image to the output's area keeping its aspect ratio, "
            "or stretch it to the output's exact shape (the book's way)"
        ),
    )
    device: Device = field(default="auto", metadata=_opt("compute device"))
    precision: Precision = field(
        default="auto",
        metadata=_opt("network precision; auto = bf16 where the hardware has it, else fp32"),
    )
    channels_last: bool = field(
        default=True, metadata=_opt("run the network in channels-last memory layout")
    )
    clamp: bool = field(
        default=True,
        metadata=_opt(
            "keep the image in the valid pixel range while optimizing (the book does not)"
        ),
    )
    seed: int = field(default=0, metadata=_opt("random seed"))
    stages: tuple[Stage, ...] = field(
        default=(),
        metadata=_opt("explicit stages; empty = one stage from size/iterations", cli=False),
    )

    def __post_init__(self) -> None:
        # Accept lists from Python callers and JSON; keep the dataclass hashable.
        for name in (
            "content_layers",
            "style_layers",
            "stages",
            "style_layer_weights",
            "style_blend",
        ):
            value = getattr(self, name)
            if isinstance(value, list):
                object.__setattr__(self, name, tuple(value))

    def resolved_stages(self) -> tuple[Stage, ...]:
        """The stages to run: explicit ones, else the pyramid from min_size to size.

        With ``scales == 0`` the sizes rise from ``min_size`` by factors of √2 up to
        ``size``; with ``scales == n`` there are n sizes spaced geometrically between
        the two (n = 1: ``size`` only, the book's single stage).
        """
        if self.stages:
            return self.stages
        return tuple(
            Stage(s, self.iterations, self.lr_decay_every)
            for s in pyramid_sizes(self.size, self.min_size, self.scales)
        )

    def validate(self) -> None:
        """Raise :class:`ConfigError` for values that cannot work."""
        for st in self.resolved_stages():
            if st.size < MIN_SIZE:
                raise ConfigError(f"size must be at least {MIN_SIZE} px, got {st.size}")
            if st.iterations < 0:
                raise ConfigError(f"iterations must be >= 0, got {st.iterations}")
            if st.lr_decay_every < 1:
                raise ConfigError(f"lr decay period must be >= 1, got {st.lr_decay_every}")
        if not self.lr > 0:
            raise ConfigError(f"lr must be > 0, got {self.lr}")
        if not 0 < self.lr_decay <= 1:
            raise ConfigError(f"lr decay must be in (0, 1], got {self.lr_decay}")
        for name in ("content_weight", "style_weight", "tv_weight"):
            value = getattr(self, name)
            if value is not None and not value >= 0:
                raise ConfigError(f"{name.replace('_', ' ')} must be >= 0, got {value}")
        if not self.style_layers:
            raise ConfigError("at least one style layer is needed")
        if self.scales < 0:
            raise ConfigError(f"scales must be >= 0, got {self.scales}")
        if self.min_size < MIN_SIZE:
            raise ConfigError(f"min size must be at least {MIN_SIZE} px, got {self.min_size}")
        if self.lbfgs_history < 1:
            raise ConfigError(f"L-BFGS history must be >= 1, got {self.lbfgs_history}")
        if not self.tol >= 0 or self.tol_window < 1:
            raise ConfigError("tol must be >= 0 and tol window >= 1")
        if not self.style_scale > 0:
            raise ConfigError(f"style scale must be > 0, got {self.style_scale}")
        if self.style_layer_weights is not None:
            if len(self.style_layer_weights) != len(self.style_layers):
                raise ConfigError(
                    f"{len(self.style_layer_weights)} style layer weights for "
                    f"{len(self.style_layers)} style layers"
                )
            if any(not w >= 0 for w in self.style_layer_weights):
                raise ConfigError("style layer weights must be >= 0")
        if self.style_blend is not None and (
            any(not w >= 0 for w in self.style_blend) or not sum(self.style_blend) > 0
        ):
            raise ConfigError("style blend weights must be >= 0 and not all 0")
        if self.content_layers is not None and not self.content_layers:
            raise ConfigError("content layers must not be empty")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready parameters, for the run record."""
        return dataclasses.asdict(self)


def pyramid_sizes(size: int, min_size: int, scales: int) -> list[int]:
    """Long sides of a coarse-to-fine pyramid ending at ``size``."""
    if scales == 1 or min_size >= size:
        return [size]
    if scales == 0:
        sizes = [size]
        while sizes[-1] / math.sqrt(2) >= min_size - 0.5:
            sizes.append(round(sizes[-1] / math.sqrt(2)))
        return sorted(set(sizes))
    ratio = (size / min_size) ** (1 / (scales - 1))
    return [round(min_size * ratio**i) for i in range(scales - 1)] + [size]


class StyleOptions(TypedDict, total=False):
    """Keyword arguments accepted by :func:`brushwork.stylize`: the fields of StyleConfig.

    A test keeps this in step with :class:`StyleConfig`.
    """

    model: Model
    weights: str | None
    size: int
    iterations: int
    scales: int
    min_size: int
    optimizer: Optimizer
    lbfgs_history: int
    tol: float
    tol_window: int
    lr: float
    lr_decay_every: int
    lr_decay: float
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
    init: str
    pooling: Pooling
    style_fit: StyleFit
    device: Device
    precision: Precision
    channels_last: bool
    clamp: bool
    seed: int
    stages: tuple[Stage, ...]


#: Named recipes. Each is a set of overrides on StyleConfig; explicit options win.
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
    },
    # A quick look: small and short.
    "fast": {"size": 384, "iterations": 80},
    # The best picture: coarse-to-fine from 128 px to 1024 px in √2 steps, each scale
    # until it converges (or 150 iterations), matching statistics of the style.
    "quality": {"size": 1024, "scales": 0, "iterations": 150, "tol": 2e-3, "tol_window": 20},
}


def make_config(preset: str | None = None, **overrides: Any) -> StyleConfig:
    """Build a config from an optional preset plus explicit overrides (which win)."""
    values: dict[str, Any] = {}
    if preset is not None:
        if preset not in PRESETS:
            raise ConfigError(f"unknown preset {preset!r} (choose from {', '.join(PRESETS)})")
        values.update(PRESETS[preset])
    values.update(overrides)
    known = {f.name for f in dataclasses.fields(StyleConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"unknown option(s): {', '.join(unknown)}")
    return StyleConfig(**values)
