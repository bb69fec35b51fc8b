"""The single source of defaults: :class:`StyleConfig` and the presets.

The CLI builds its flags from these fields (name, type, ``help`` metadata), and
:func:`brushwork.stylize` accepts the same names as keyword arguments, so a
default lives in exactly one place.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal, TypedDict

from brushwork.errors import ConfigError

Model = Literal["vgg16", "vgg19"]
Device = Literal["auto", "cpu", "cuda", "mps"]
Precision = Literal["auto", "fp32", "bf16", "fp16"]
Pooling = Literal["max", "avg"]
StyleFit = Literal["area", "stretch"]

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
    iterations: int = field(default=500, metadata=_opt("optimizer iterations"))
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
    seed: int = field(default=0, metadata=_opt("random seed"))
    stages: tuple[Stage, ...] = field(
        default=(),
        metadata=_opt("explicit stages; empty = one stage from size/iterations", cli=False),
    )

    def __post_init__(self) -> None:
        # Accept lists from Python callers and JSON; keep the dataclass hashable.
        for name in ("content_layers", "style_layers", "stages"):
            value = getattr(self, name)
            if isinstance(value, list):
                object.__setattr__(self, name, tuple(value))

    def resolved_stages(self) -> tuple[Stage, ...]:
        """The stages to run: the explicit ones, or one stage from size/iterations."""
        if self.stages:
            return self.stages
        return (Stage(self.size, self.iterations, self.lr_decay_every),)

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
        if self.content_layers is not None and not self.content_layers:
            raise ConfigError("content layers must not be empty")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready parameters, for the run record."""
        return dataclasses.asdict(self)


class StyleOptions(TypedDict, total=False):
    """Keyword arguments accepted by :func:`brushwork.stylize`: the fields of StyleConfig.

    A test keeps this in step with :class:`StyleConfig`.
    """

    model: Model
    weights: str | None
    size: int
    iterations: int
    lr: float
    lr_decay_every: int
    lr_decay: float
    content_weight: float | None
    style_weight: float | None
    tv_weight: float | None
    content_layers: tuple[str, ...] | None
    style_layers: tuple[str, ...]
    pooling: Pooling
    style_fit: StyleFit
    device: Device
    precision: Precision
    channels_last: bool
    seed: int
    stages: tuple[Stage, ...]


#: Named recipes. Each is a set of overrides on StyleConfig; explicit options win.
PRESETS: dict[str, dict[str, Any]] = {
    # The d2l chapter's full experiment: 150x225 for 500 iterations (decay every
    # 200), then upsampled to 600x900 for 300 more (decay every 100). The book
    # stretches the style image to the content's shape.
    "d2l": {
        "stages": (Stage(225, 500, 200), Stage(900, 300, 100)),
        "style_fit": "stretch",
    },
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
