"""Option records: how every config field is checked and described."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import pytest

from brushwork.config import Stage, StyleConfig
from brushwork.errors import ConfigError
from brushwork.options import MAX_ITEMS, Option, describe, for_surface, option


def opt(kind: str, **kw: object) -> Option:
    return Option(name=kw.pop("name", "some_value"), kind=kind, help="h", default=None, **kw)


def refused(o: Option, value: object) -> str:
    with pytest.raises(ConfigError) as e:
        o.check(value)
    return str(e.value)


# --- check: kinds ------------------------------------------------------------------


def test_choice_accepts_only_its_choices() -> None:
    o = opt("choice", name="style_loss", choices=("gram", "meancov"))
    o.check("gram")
    o.check("meancov")
    msg = refused(o, "Gram")
    assert msg == "style loss must be one of gram, meancov, got 'Gram'"
    refused(o, "")


@pytest.mark.parametrize("value", ["3", b"3", [3], True, False, object()])
def test_numbers_refuse_non_numbers_and_bools(value: object) -> None:
    for kind in ("int", "float"):
        msg = refused(opt(kind), value)
        assert msg.startswith("some value must be a number, got "), msg


@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan])
def test_numbers_must_be_finite(value: float) -> None:
    for kind in ("int", "float"):
        msg = refused(opt(kind), value)
        assert "must be a finite number" in msg


def test_int_takes_whole_floats_but_not_fractions() -> None:
    o = opt("int", low=1, high=10)
    o.check(3)
    o.check(3.0)
    assert refused(o, 2.5) == "some value must be a whole number, got 2.5"


def test_float_takes_ints() -> None:
    o = opt("float", low=0, high=1)
    o.check(0)
    o.check(1)
    o.check(0.25)


def test_names_and_floats_list_1_to_max_items() -> None:
    names = opt("names")
    names.check(("conv1_1",))
    names.check(tuple(f"l{i}" for i in range(MAX_ITEMS)))
    assert MAX_ITEMS == 32
    assert refused(names, ()) == f"some value must list 1 to {MAX_ITEMS} items"
    refused(names, tuple(f"l{i}" for i in range(MAX_ITEMS + 1)))
    floats = opt("floats", low=0)
    floats.check((0.0, 1.5, 3))
    refused(floats, ())
    assert "finite" in refused(floats, (1.0, math.nan))
    assert refused(floats, (1.0, -0.5)) == "some value must be >= 0, got -0.5"
    assert "must be a number" in refused(floats, (1.0, "2"))


def test_kinds_without_checks_take_any_value() -> None:
    for kind in ("bool", "path", "stages"):
        opt(kind).check("anything")


# --- check: bounds ------------------------------------------------------------------


def test_closed_bounds_include_their_ends() -> None:
    o = opt("int", low=16, high=32768)
    for v in (16, 17, 32767, 32768):
        o.check(v)
    assert refused(o, 15) == "some value must be >= 16 and <= 32768, got 15"
    assert refused(o, 32769) == "some value must be >= 16 and <= 32768, got 32769"


def test_low_open_excludes_the_lower_bound() -> None:
    o = opt("float", name="lr", low=0, low_open=True, high=100)
    o.check(1e-300)
    o.check(100.0)
    assert refused(o, 0.0) == "lr must be > 0 and <= 100, got 0"
    assert refused(o, 0) == "lr must be > 0 and <= 100, got 0"
    assert refused(o, -1e-300) == "lr must be > 0 and <= 100, got -1e-300"
    assert (
        refused(o, 100.0000001) == "lr must be > 0 and <= 100, got 100"
    )  # %g rounds the shown value
    closed = opt("float", low=0, high=100)
    closed.check(0.0)


def test_huge_ints_are_refused_with_a_short_message() -> None:
    big = 10**400
    # A float option: the run computes in floats, and float(10**400) overflows.
    msg = refused(opt("float", name="style_weight", low=0), big)
    assert msg == "style weight is out of range (a 401-digit number)"
    # An int option with a bound compares exactly and shortens the value shown.
    msg = refused(opt("int", name="seed", low=0, high=2**64 - 1), big)
    assert msg == "seed must be >= 0 and <= 18446744073709551615, got a 401-digit number"
    # One past the bound is exact, not rounded to the same float as the bound.
    msg = refused(opt("int", name="seed", low=0, high=2**64 - 1), 2**64)
    assert msg == "seed must be >= 0 and <= 18446744073709551615, got 18446744073709551616"
    opt("int", name="seed", low=0, high=2**64 - 1).check(2**64 - 1)
    assert refused(opt("float", high=1e300), 10**301).endswith("got a 302-digit number")


def test_nullable_takes_none_and_others_do_not() -> None:
    opt("float", nullable=True, low=0).check(None)
    opt("choice", nullable=True, choices=("a",)).check(None)
    assert refused(opt("float", low=0), None) == "some value needs a value"
    refused(opt("names"), None)


# --- presentation -------------------------------------------------------------------


def test_bounds_text() -> None:
    assert opt("float", low=0, low_open=True, high=100).bounds_text() == "> 0 and <= 100"
    assert opt("float", low=0.5).bounds_text() == ">= 0.5"
    assert opt("float", high=1e-3).bounds_text() == "<= 0.001"
    assert opt("int", low=0, high=2**64 - 1).bounds_text() == ">= 0 and <= 18446744073709551615"
    assert opt("float").bounds_text() == ""


def test_shown_default() -> None:
    def shown(default: object, **kw: object) -> str:
        o = Option(name="x", kind="float", help="h", default=default, **kw)
        return o.shown_default()

    assert shown(("conv1_1", "conv2_1")) == "conv1_1,conv2_1"
    assert shown((1.0, 0.5)) == "1.0,0.5"
    assert shown(True) == "on"
    assert shown(False) == "off"
    assert shown(0.01) == "0.01"
    assert shown(512) == "512"
    assert shown(None) == "None"
    assert shown(None, default_text="calibrated") == "calibrated"
    assert shown(3, default_text="three") == "three"


def test_flag_and_label() -> None:
    o = opt("int", name="lr_decay_every")
    assert o.flag == "--lr-decay-every"
    assert o.label == "lr decay every"


# --- describe -----------------------------------------------------------------------


@dataclass(frozen=True)
class Small:
    mode: Literal["fast", "slow"] = option("fast", "how to run")
    verbose: bool = option(False, "talk more", studio=False)
    count: int = option(3, "how many", low=1, high=9)
    rate: float = option(0.5, "how fast", low=0, low_open=True, high=1)
    weight: float | None = option(None, "weight", low=0, default_text="calibrated")
    source: str | None = option(None, "a file", cli=False, metavar="PATH")
    layers: tuple[str, ...] = option(("a", "b"), "layer names")
    factors: tuple[float, ...] | None = option(None, "factors", low=0)
    stages: tuple[Stage, ...] | None = option(None, "stages", cli=False, studio=False)


def test_describe_reads_back_every_field() -> None:
    opts = {o.name: o for o in describe(Small)}
    assert list(opts) == [
        "mode",
        "verbose",
        "count",
        "rate",
        "weight",
        "source",
        "layers",
        "factors",
        "stages",
    ]
    kinds = {n: o.kind for n, o in opts.items()}
    assert kinds == {
        "mode": "choice",
        "verbose": "bool",
        "count": "int",
        "rate": "float",
        "weight": "float",
        "source": "path",
        "layers": "names",
        "factors": "floats",
        "stages": "stages",
    }
    assert opts["mode"].choices == ("fast", "slow")
    assert opts["mode"].default == "fast" and opts["mode"].help == "how to run"
    assert [n for n, o in opts.items() if o.nullable] == ["weight", "source", "factors", "stages"]
    assert (opts["count"].low, opts["count"].high, opts["count"].low_open) == (1, 9, False)
    assert (opts["rate"].low, opts["rate"].high, opts["rate"].low_open) == (0, 1, True)
    assert opts["weight"].shown_default() == "calibrated"
    assert opts["source"].metavar == "PATH"
    # The records check values as declared.
    opts["count"].check(9)
    refused(opts["count"], 10)
    refused(opts["rate"], 0.0)
    opts["weight"].check(None)
    refused(opts["factors"], (1.0, -1.0))
    refused(opts["mode"], "medium")


def test_for_surface_filters_by_exposure() -> None:
    opts = describe(Small)
    cli = [o.name for o in for_surface(opts, "cli")]
    studio = [o.name for o in for_surface(opts, "studio")]
    assert cli == ["mode", "verbose", "count", "rate", "weight", "layers", "factors"]
    assert studio == ["mode", "count", "rate", "weight", "source", "layers", "factors"]
    assert opts[-1].surfaces == frozenset()


def test_describe_refuses_a_field_type_without_a_kind() -> None:
    @dataclass
    class Bad:
        name: str = option("x", "a plain string is not an option kind")

    with pytest.raises(TypeError, match="no option kind for field name"):
        describe(Bad)


def test_style_config_describes_every_field() -> None:
    opts = {o.name: o for o in describe(StyleConfig)}
    assert set(opts) == set(StyleConfig.__dataclass_fields__)
    lr = opts["lr"]
    assert (lr.kind, lr.low, lr.low_open, lr.high) == ("float", 0, True, 100)
    refused(lr, 0.0)
    assert opts["size"].kind == "int" and opts["size"].default == 512
    assert opts["optimizer"].choices == ("adam", "lbfgs")
    # Defaults pass their own checks.
    for o in opts.values():
        o.check(o.default)
