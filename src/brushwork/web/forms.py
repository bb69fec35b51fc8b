"""The studio's form, derived from :class:`StyleConfig`'s fields.

The page asks ``/api/options`` which controls to draw, and the server checks
submitted options against the same list, so a field the engine team adds to
StyleConfig shows up in the studio without touching this package.
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from dataclasses import dataclass
from typing import Any, Literal

from brushwork.config import PRESETS, StyleConfig, make_config
from brushwork.errors import ConfigError

FieldKind = Literal["select", "int", "float", "bool", "list", "floats"]

#: Drawn outside the "more settings" fold; every other field, new ones included, goes inside it.
PRIMARY = ("size", "iterations", "content_weight", "style_weight", "tv_weight")

#: Items of list fields (layer names such as conv4_2). Anything else is refused
#: before it reaches the engine.
_ITEM = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_MAX_ITEMS = 32


@dataclass(frozen=True)
class FormField:
    """One control of the form: what to draw and how to check what comes back."""

    name: str
    kind: FieldKind
    help: str
    default: Any
    nullable: bool
    choices: tuple[str, ...] = ()
    primary: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "label": label(self.name),
            "kind": self.kind,
            "help": self.help,
            "default": to_json(self.default),
            "nullable": self.nullable,
            "choices": list(self.choices),
            "primary": self.primary,
        }


#: Words shown in capitals in labels.
_ACRONYMS = {"tv": "TV", "lr": "LR", "lbfgs": "L-BFGS"}


def label(name: str) -> str:
    """``tv_weight`` -> ``TV weight``: what the page shows for a field."""
    words = [_ACRONYMS.get(w, w) for w in name.split("_")]
    return " ".join([words[0][:1].upper() + words[0][1:], *words[1:]])


def _unwrap(tp: Any) -> tuple[Any, bool]:
    """``X | None`` -> (X, True); anything else -> (tp, False)."""
    if isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return tp, False


def _kind(tp: Any) -> tuple[FieldKind, tuple[str, ...]] | None:
    if typing.get_origin(tp) is Literal:
        choices = typing.get_args(tp)
        if all(isinstance(c, str) for c in choices):
            return "select", tuple(choices)
        return None
    if tp is bool:  # before int: bool is an int subclass
        return "bool", ()
    if tp is int:
        return "int", ()
    if tp is float:
        return "float", ()
    if typing.get_origin(tp) is tuple and typing.get_args(tp) == (str, ...):
        return "list", ()
    if typing.get_origin(tp) is tuple and typing.get_args(tp) == (float, ...):
        return "floats", ()
    # Free strings are left out on purpose: the only one today is a weights
    # *path*, and no user-supplied path may reach the server's filesystem.
    return None


def form_fields() -> tuple[FormField, ...]:
    """The StyleConfig fields a browser may set, in declaration order."""
    hints = typing.get_type_hints(StyleConfig)
    out: list[FormField] = []
    for f in dataclasses.fields(StyleConfig):
        meta = f.metadata
        if not meta.get("cli", True) or meta.get("metavar") == "PATH":
            continue
        tp, nullable = _unwrap(hints[f.name])
        kind = _kind(tp)
        if kind is None:
            continue
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = None
        out.append(
            FormField(
                f.name,
                kind[0],
                str(meta.get("help", "")),
                default,
                nullable,
                kind[1],
                f.name in PRIMARY,
            )
        )
    return tuple(out)


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

    Raises :class:`ConfigError` with a message fit for the page.
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
    return out


def _parse_value(spec: FormField, value: Any) -> Any:
    label = spec.name.replace("_", " ")
    if value is None:
        if spec.nullable:
            return None
        raise ConfigError(f"{label} needs a value")
    if spec.kind == "select":
        if value not in spec.choices:
            raise ConfigError(f"{label} must be one of {', '.join(spec.choices)}")
        return value
    if spec.kind == "bool":
        if not isinstance(value, bool):
            raise ConfigError(f"{label} must be true or false")
        return value
    if spec.kind in ("int", "float"):
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if not number or not math.isfinite(value):
            raise ConfigError(f"{label} must be a number")
        if spec.kind == "int":
            if value != int(value):
                raise ConfigError(f"{label} must be a whole number")
            return int(value)
        return float(value)
    if spec.kind == "floats":
        return _parse_floats(label, value)
    # list
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    if not isinstance(value, list) or not 0 < len(value) <= _MAX_ITEMS:
        raise ConfigError(f"{label} must be a list of 1 to {_MAX_ITEMS} names")
    for item in value:
        if not isinstance(item, str) or not _ITEM.match(item):
            raise ConfigError(f"{label}: {str(item)[:64]!r} is not a valid name")
    return tuple(value)


def _parse_floats(label: str, value: Any) -> tuple[float, ...]:
    if isinstance(value, str):
        try:
            value = [float(v) for v in value.split(",") if v.strip()]
        except ValueError:
            raise ConfigError(f"{label} must be comma-separated numbers") from None
    if not isinstance(value, list) or not 0 < len(value) <= _MAX_ITEMS:
        raise ConfigError(f"{label} must be a list of 1 to {_MAX_ITEMS} numbers")
    for item in value:
        number = isinstance(item, int | float) and not isinstance(item, bool)
        if not number or not math.isfinite(item):
            raise ConfigError(f"{label}: {str(item)[:64]!r} is not a number")
    return tuple(float(v) for v in value)


def build_config(preset: Any, options: dict[str, Any], *, max_side: int) -> StyleConfig:
    """Preset + checked options -> a validated StyleConfig no larger than ``max_side``."""
    if preset is not None and (not isinstance(preset, str) or preset not in PRESETS):
        raise ConfigError(f"unknown preset {str(preset)[:64]!r} (choose from {', '.join(PRESETS)})")
    cfg = make_config(preset, **options)
    cfg.validate()
    for stage in cfg.resolved_stages():
        if stage.size > max_side:
            raise ConfigError(f"size {stage.size} px is over this studio's limit of {max_side} px")
    return cfg
