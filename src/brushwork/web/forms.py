"""The studio's form, read from the option description of :class:`StyleConfig`.

The page asks ``/api/options`` which controls to draw, and the server checks
submitted options with the same :class:`~brushwork.options.Option` records
that the CLI's flags and ``StyleConfig.validate`` use, so a field added to the
config shows up in the studio, checked the same way, without touching this
package. Path options never reach the studio: no client-supplied path may
touch the server's filesystem.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass
from typing import Any, Literal

from brushwork.config import OPTIONS, PRESETS, StyleConfig, make_config
from brushwork.errors import ConfigError
from brushwork.options import MAX_ITEMS, Option, for_surface

FieldKind = Literal["select", "int", "float", "slider", "bool", "list", "floats"]

#: Drawn outside the "more settings" fold; every other field, new ones included, goes inside it.
PRIMARY = (
    "size",
    "iterations",
    "balance",
    "strength",
    "content_weight",
    "style_weight",
    "tv_weight",
)


@dataclass(frozen=True)
class Slider:
    """A number option drawn as a slider, with a number box beside it for exact values.

    ``low``/``high`` are only the slider's visible range; the option's own bounds
    still say what may be sent, and the number box accepts all of them.
    ``scale="log"`` puts equal ratios at equal distances (``low`` must be > 0).
    ``steps`` is the number of slider positions from ``low`` to ``high``.
    """

    low: float
    high: float
    scale: Literal["linear", "log"] = "linear"
    steps: int = 200
    #: Words at the slider's low and high ends, or none.
    ends: tuple[str, str] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "min": self.low,
            "max": self.high,
            "scale": self.scale,
            "steps": self.steps,
            "ends": None if self.ends is None else list(self.ends),
        }


#: Number options drawn as sliders. The option (config.py) keeps the defaults
#: and the accepted bounds; this only names the part of them a slider spans.
SLIDERS: dict[str, Slider] = {
    # strength is a style/content ratio (0 < strength <= 1000): the useful range is
    # about 0.1 to 10, with the default 1 in the middle, so a log slider over that
    # sub-range. Spanning all of (0, 1000] would squeeze the useful part into a sliver;
    # values outside 0.1..10 still go in the number box.
    "strength": Slider(0.1, 10.0, scale="log", ends=("photo", "painting")),
}

#: Items of list fields (layer names such as conv4_2). Anything else is refused
#: before it reaches the engine.
_ITEM = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")

#: How the page draws each option kind.
_WIDGETS: dict[str, FieldKind] = {
    "choice": "select",
    "int": "int",
    "float": "float",
    "bool": "bool",
    "names": "list",
    "floats": "floats",
}

#: Choices that need a path option the studio does not offer (init "image" needs init_image).
_NEEDS_PATH = {"init": ("image",)}


@dataclass(frozen=True)
class FormField:
    """One control of the form: what to draw, and the option that checks what comes back."""

    option: Option
    kind: FieldKind
    choices: tuple[str, ...]
    primary: bool
    slider: Slider | None = None

    @property
    def name(self) -> str:
        return self.option.name

    def to_json(self) -> dict[str, Any]:
        o = self.option
        return {
            "name": o.name,
            "label": label(o.name),
            "kind": self.kind,
            # An empty nullable field reads "auto" in the form; say what auto is.
            "help": f"{o.help} (auto: {o.default_text})"
            if o.nullable and o.default_text and o.default is None
            else o.help,
            "default": to_json(o.default),
            "nullable": o.nullable,
            "choices": list(self.choices),
            "primary": self.primary,
            "min": o.low,
            "max": o.high,
            "min_open": o.low_open,
            "slider": self._slider_json(),
        }

    def _slider_json(self) -> dict[str, Any] | None:
        if self.slider is None:
            return None
        return {**self.slider.to_json(), "whole": self.option.kind == "int"}


#: Words shown in capitals in labels.
_ACRONYMS = {"tv": "TV", "lr": "LR", "lbfgs": "L-BFGS"}


def label(name: str) -> str:
    """``tv_weight`` -> ``TV weight``: what the page shows for a field."""
    words = [_ACRONYMS.get(w, w) for w in name.split("_")]
    return " ".join([words[0][:1].upper() + words[0][1:], *words[1:]])


def form_fields() -> tuple[FormField, ...]:
    """The options a browser may set, in declaration order."""
    out = []
    for opt in for_surface(OPTIONS, "studio"):
        kind = _WIDGETS.get(opt.kind)
        if kind is None:  # paths and stages are never the studio's
            continue
        hidden = _NEEDS_PATH.get(opt.name, ())
        choices = tuple(c for c in opt.choices if c not in hidden)
        slider = SLIDERS.get(opt.name)
        if slider is not None:
            check_slider(opt, slider)
            kind = "slider"
        out.append(FormField(opt, kind, choices, opt.name in PRIMARY, slider))
    return tuple(out)


def check_slider(opt: Option, slider: Slider) -> None:
    """A slider must be over a number option and inside its bounds (a log one above 0)."""
    if opt.kind not in ("int", "float") or opt.nullable:
        raise TypeError(f"slider for {opt.name}: only non-nullable number options can be sliders")
    if not slider.low < slider.high or slider.steps < 1:
        raise ValueError(f"slider for {opt.name}: empty range or no steps")
    if slider.scale == "log" and slider.low <= 0:
        raise ValueError(f"slider for {opt.name}: a log scale needs a range above 0")
    opt.check(slider.low)  # the bounds of the option itself, open or closed
    opt.check(slider.high)


def to_json(value: Any) -> Any:
    """Dataclasses, tuples and non-finite floats -> plain JSON (NaN is not JSON)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def presets_json() -> dict[str, Any]:
    return {name: to_json(values) for name, values in PRESETS.items()}


def parse_options(raw: Any) -> dict[str, Any]:
    """Check options sent by a client; return StyleConfig keyword arguments.

    Each value is converted to its option's kind and checked against its
    bounds here, so a bad value is named at submit time. Raises
    :class:`ConfigError` with a message fit for the page.
    """
    if not isinstance(raw, dict):
        raise ConfigError("options must be an object of setting names to values")
    fields = {f.name: f for f in form_fields()}
    out: dict[str, Any] = {}
    for name, value in raw.items():
        spec = fields.get(name) if isinstance(name, str) else None
        if spec is None:
            raise ConfigError(f"unknown or not allowed option {str(name)[:64]!r}")
        out[name] = _parse_value(spec, value)
        spec.option.check(out[name])
    return out


def _parse_value(spec: FormField, value: Any) -> Any:
    name = spec.option.label
    if value is None:
        if spec.option.nullable:
            return None
        raise ConfigError(f"{name} needs a value")
    if spec.kind == "select":
        if value not in spec.choices:
            raise ConfigError(f"{name} must be one of {', '.join(spec.choices)}")
        return value
    if spec.kind == "bool":
        if not isinstance(value, bool):
            raise ConfigError(f"{name} must be true or false")
        return value
    if spec.kind in ("int", "float", "slider"):
        # a slider sends its option's kind of number: float unless the option is an int
        return _number(name, value, whole=spec.option.kind == "int")
    if spec.kind == "floats":
        if isinstance(value, str):
            value = [v for v in value.split(",") if v.strip()]
        if not isinstance(value, list) or not 0 < len(value) <= MAX_ITEMS:
            raise ConfigError(f"{name} must be a list of 1 to {MAX_ITEMS} numbers")
        return tuple(_number(name, v, whole=False) for v in value)
    # list of names
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    if not isinstance(value, list) or not 0 < len(value) <= MAX_ITEMS:
        raise ConfigError(f"{name} must be a list of 1 to {MAX_ITEMS} names")
    for item in value:
        if not isinstance(item, str) or not _ITEM.match(item):
            raise ConfigError(f"{name}: {str(item)[:64]!r} is not a valid name")
    return tuple(value)


def _number(name: str, value: Any, *, whole: bool) -> int | float:
    """A JSON number (or numeric text) as int or float; huge or non-finite ones refused."""
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise ConfigError(f"{name}: {value[:64]!r} is not a number") from None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{name} must be a number")
    if isinstance(value, int) and whole:
        return value  # any size: the option's bounds name the range
    try:
        number = float(value)
    except OverflowError:
        # JSON has no size limit on integers; float() of a 400-digit one overflows.
        digits = len(str(abs(value)))
        raise ConfigError(f"{name} is out of range (a {digits}-digit number)") from None
    if not math.isfinite(number):
        raise ConfigError(f"{name} must be a finite number")
    if whole:
        if number != int(number):
            raise ConfigError(f"{name} must be a whole number")
        return int(number)
    return number


def build_config(
    preset: Any, options: dict[str, Any], *, max_side: int, n_styles: int
) -> StyleConfig:
    """Preset + checked options -> a StyleConfig that can run, or :class:`ConfigError`.

    Everything the engine would refuse is refused here, at submit time: bounds,
    combinations, layers the backbone lacks, a precision the device lacks, a
    blend weight count that is not ``n_styles``; and sizes over ``max_side``.
    """
    from brushwork.plan import check_config  # imports torch: only when a job comes in

    if preset is not None and (not isinstance(preset, str) or preset not in PRESETS):
        raise ConfigError(f"unknown preset {str(preset)[:64]!r} (choose from {', '.join(PRESETS)})")
    cfg = make_config(preset, **options)
    check_config(cfg, n_styles=n_styles)
    for stage in cfg.resolved_stages():
        if stage.size > max_side:
            raise ConfigError(f"size {stage.size} px is over this studio's limit of {max_side} px")
    return cfg
