"""One description of every option: kind, choices, bounds, and who exposes it.

:class:`~brushwork.config.StyleConfig` declares its fields with :func:`option`;
:func:`describe` reads them back as :class:`Option` records. The CLI builds its
flags from these records, the studio builds its form and checks submissions
with them, and :meth:`StyleConfig.validate` enforces their bounds, so a field
added to the config shows up, checked the same way, everywhere.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from brushwork.errors import ConfigError

Kind = Literal["choice", "int", "float", "bool", "names", "floats", "path", "stages"]
Surface = Literal["cli", "studio"]

#: Most items a list option (layers, blend or layer weights) may hold.
MAX_ITEMS = 32


@dataclass(frozen=True)
class Option:
    """How one config field is presented and checked.

    ``low``/``high`` bound numbers (and every item of a number list);
    ``low_open`` makes the lower bound exclusive (``lr > 0``). ``default_text``
    is what help shows for the default where the bare value would mislead
    (``None`` meaning "calibrated per backbone").
    """

    name: str
    kind: Kind
    help: str
    default: Any
    nullable: bool = False
    choices: tuple[str, ...] = ()
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    surfaces: frozenset[Surface] = frozenset({"cli", "studio"})
    default_text: str | None = None
    metavar: str | None = None

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def label(self) -> str:
        """Words for messages that both CLI and studio users understand."""
        return self.name.replace("_", " ")

    def shown_default(self) -> str:
        if self.default_text is not None:
            return self.default_text
        if isinstance(self.default, tuple):
            return ",".join(str(v) for v in self.default)
        if isinstance(self.default, bool):
            return "on" if self.default else "off"
        return str(self.default)

    def bounds_text(self) -> str:
        lo = "" if self.low is None else f"{'>' if self.low_open else '>='} {_num(self.low)}"
        hi = "" if self.high is None else f"<= {_num(self.high)}"
        return " and ".join(p for p in (lo, hi) if p)

    def check(self, value: Any) -> None:
        """Raise :class:`ConfigError` unless ``value`` fits this option's kind and bounds."""
        if value is None:
            if self.nullable:
                return
            raise ConfigError(f"{self.label} needs a value")
        if self.kind == "choice":
            if value not in self.choices:
                raise ConfigError(
                    f"{self.label} must be one of {', '.join(self.choices)}, got {value!r}"
                )
        elif self.kind in ("int", "float"):
            self._check_number(value, self.label)
        elif self.kind in ("names", "floats"):
            if not 0 < len(value) <= MAX_ITEMS:
                raise ConfigError(f"{self.label} must list 1 to {MAX_ITEMS} items")
            if self.kind == "floats":
                for v in value:
                    self._check_number(v, self.label)

    def _check_number(self, value: Any, label: str) -> None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{label} must be a number, got {value!r}")
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{label} must be a finite number, got {value}")
        if self.kind == "int" and isinstance(value, float) and not value.is_integer():
            raise ConfigError(f"{label} must be a whole number, got {value}")
        if self.kind == "float" and isinstance(value, int):
            try:
                float(value)  # the run computes in floats: a 400-digit integer overflows
            except OverflowError:
                raise ConfigError(f"{label} is out of range ({_short(value)})") from None
        too_low = self.low is not None and (
            value <= self.low if self.low_open else value < self.low
        )
        too_high = self.high is not None and value > self.high
        if too_low or too_high:
            shown = f"{value:g}" if isinstance(value, float) else _short(value)
            raise ConfigError(f"{label} must be {self.bounds_text()}, got {shown}")


def _num(value: float) -> str:
    """Bounds as written: integers exactly (2**64 - 1 is not 1.84467e+19)."""
    return str(value) if isinstance(value, int) else f"{value:g}"


def _short(value: int) -> str:
    text = str(value)
    return text if len(text) <= 24 else f"a {len(text)}-digit number"


def option(
    default: Any,
    help: str,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    cli: bool = True,
    studio: bool = True,
    default_text: str | None = None,
    metavar: str | None = None,
) -> Any:
    """A dataclass field carrying its :class:`Option` description in its metadata."""
    surfaces = frozenset(s for s, on in (("cli", cli), ("studio", studio)) if on)
    meta = {
        "help": help,
        "low": low,
        "high": high,
        "low_open": low_open,
        "surfaces": surfaces,
        "default_text": default_text,
        "metavar": metavar,
    }
    return dataclasses.field(default=default, metadata=meta)


def unwrap_optional(tp: Any) -> tuple[Any, bool]:
    """``X | None`` -> (X, True); anything else -> (tp, False)."""
    if isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return tp, False


def _kind(name: str, tp: Any, metavar: str | None) -> tuple[Kind, tuple[str, ...]]:
    if typing.get_origin(tp) is Literal:
        return "choice", tuple(str(c) for c in typing.get_args(tp))
    if tp is bool:  # before int: bool is an int subclass
        return "bool", ()
    if tp is int:
        return "int", ()
    if tp is float:
        return "float", ()
    if tp is str and metavar == "PATH":
        return "path", ()
    if typing.get_origin(tp) is tuple:
        item = typing.get_args(tp)[0]
        if item is str:
            return "names", ()
        if item is float:
            return "floats", ()
        return "stages", ()
    raise TypeError(f"no option kind for field {name}: {tp}")  # a new field type needs one


def describe(config_cls: type) -> tuple[Option, ...]:
    """The :class:`Option` of every field of a dataclass declared with :func:`option`."""
    hints = typing.get_type_hints(config_cls)
    out = []
    for f in dataclasses.fields(config_cls):
        meta = f.metadata
        tp, nullable = unwrap_optional(hints[f.name])
        kind, choices = _kind(f.name, tp, meta.get("metavar"))
        out.append(
            Option(
                name=f.name,
                kind=kind,
                help=meta["help"],
                default=f.default,
                nullable=nullable,
                choices=choices,
                low=meta.get("low"),
                high=meta.get("high"),
                low_open=meta.get("low_open", False),
                surfaces=meta.get("surfaces", frozenset()),
                default_text=meta.get("default_text"),
                metavar=meta.get("metavar"),
            )
        )
    return tuple(out)


def for_surface(options: Sequence[Option], surface: Surface) -> tuple[Option, ...]:
    return tuple(o for o in options if surface in o.surfaces)
