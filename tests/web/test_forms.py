"""The studio's form: built from the option description, checks what clients send."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest

from brushwork.config import OPTIONS, StyleConfig
from brushwork.errors import ConfigError
from brushwork.web.forms import (
    SLIDERS,
    Slider,
    build_config,
    check_slider,
    form_fields,
    label,
    parse_options,
)


def test_the_form_is_the_studio_options_of_the_config() -> None:
    fields = {f.name: f for f in form_fields()}
    studio = [o.name for o in OPTIONS if "studio" in o.surfaces and o.kind not in ("path",)]
    assert list(fields) == [n for n in studio if n != "stages"]
    # Exposure comes from the description, not from a metavar string.
    assert "model_weights" not in fields and "init_image" not in fields
    # init is a choice; "image" needs a path, which the studio never takes.
    assert fields["init"].kind == "select"
    assert fields["init"].choices == ("recolored", "content", "noise", "style-stats")
    js = fields["iterations"].to_json()
    assert (js["min"], js["max"], js["default"]) == (1, 100_000, StyleConfig().iterations)
    # Left empty it shows "auto"; the help says what auto runs.
    assert js["nullable"] and js["help"].endswith(
        "(auto: 30 on the CPU (20 on a square canvas; 60 and 40 where bf16 runs on AMX, "
        "up to 1024 px), 300 on a CUDA GPU)"
    )
    assert label("tv_weight") == "TV weight" and label("lbfgs_history") == "L-BFGS history"


@pytest.mark.parametrize(
    ("options", "needle"),
    [
        ({"scales": 1_000_000}, "scales must be >= 0 and <= 24"),
        ({"iterations": 0}, "iterations must be >= 1"),
        ({"iterations": 1e9}, "iterations must be >= 1 and <= 100000"),
        ({"lr": int("9" * 400)}, "out of range"),
        ({"lr": "1e999"}, "finite"),
        ({"seed": 2**70}, "seed must be >= 0"),
        ({"seed": 2**64}, "seed must be >= 0 and <= 18446744073709551615"),
        ({"content_weight": -1}, ">= 0"),
        ({"style_blend": [1, "x"]}, "not a number"),
        ({"style_layers": ["conv1_1", "../etc"]}, "not a valid name"),
        ({"init": "image"}, "must be one of recolored, content, noise, style-stats"),
        ({"model_weights": "/etc/passwd"}, "not allowed"),
        ({"stages": []}, "not allowed"),
    ],
)
def test_parse_options_refuses_at_submit_time(options: dict[str, object], needle: str) -> None:
    with pytest.raises(ConfigError) as e:
        parse_options(options)
    assert needle in str(e.value), str(e.value)


@pytest.mark.parametrize(
    ("options", "n_styles", "needle"),
    [
        ({"style_layers": ["conv9_1"]}, 1, "unknown layer"),
        ({"precision": "fp16", "device": "cpu"}, 1, "fp16 is for GPUs"),
        ({"style_blend": [1, 2, 3]}, 2, "3 blend weights for 2 style images"),
        ({"style_layer_weights": [1, 2]}, 1, "2 style layer weights for 5"),
        ({"size": 4096}, 1, "over this studio's limit of 2048"),
    ],
)
def test_build_config_refuses_what_the_engine_would(
    options: dict[str, object], n_styles: int, needle: str
) -> None:
    with pytest.raises(ConfigError) as e:
        build_config(None, parse_options(options), max_side=2048, n_styles=n_styles)
    assert needle in str(e.value), str(e.value)


def test_build_config_applies_presets_under_the_options() -> None:
    cfg = build_config("fast", parse_options({"iterations": 7}), max_side=2048, n_styles=1)
    assert (cfg.size, cfg.iterations) == (384, 7)
    d2l = build_config("d2l", {}, max_side=2048, n_styles=1)
    assert [s.size for s in d2l.stages] == [225, 900]
    assert dataclasses.replace(d2l, seed=3).seed == 3


def test_strength_is_a_log_slider_inside_its_option_bounds() -> None:
    fields = {f.name: f for f in form_fields()}
    assert [n for n, f in fields.items() if f.kind == "slider"] == list(SLIDERS)
    js = fields["strength"].to_json()
    option = next(o for o in OPTIONS if o.name == "strength")
    # The option stays the source of the default and of what may be sent ...
    assert js["kind"] == "slider" and js["primary"]
    assert (js["default"], js["min"], js["min_open"], js["max"]) == (
        StyleConfig().strength,
        option.low,
        True,
        option.high,
    )
    assert (js["min"], js["max"]) == (0, 1000)
    # ... the slider spans the useful ratios 0.1..10 on a log scale, the default in the middle.
    slider = js["slider"]
    assert {k: slider[k] for k in ("min", "max", "scale", "whole")} == {
        "min": 0.1,
        "max": 10.0,
        "scale": "log",
        "whole": False,
    }
    assert slider["steps"] >= 100 and slider["ends"] == ["photo", "painting"]
    assert math.isclose(math.sqrt(slider["min"] * slider["max"]), js["default"])
    assert json.loads(json.dumps(js)) == js  # what /api/options sends
    # Other numbers stay number boxes.
    assert fields["content_weight"].to_json()["slider"] is None
    assert fields["content_weight"].kind == "float"


@pytest.mark.parametrize(
    ("sent", "parsed"),
    [(2, 2.0), (0.25, 0.25), ("0.5", 0.5), (50, 50.0), (1000, 1000.0), (0.001, 0.001)],
)
def test_slider_values_are_floats_over_the_whole_option_range(sent: object, parsed: float) -> None:
    # The number box beside the slider sends values outside the slider's 0.1..10 too.
    value = parse_options({"strength": sent})["strength"]
    assert type(value) is float and value == parsed
    assert build_config(None, {"strength": value}, max_side=2048, n_styles=1).strength == parsed


@pytest.mark.parametrize(
    ("sent", "needle"),
    [
        (0, "strength must be > 0 and <= 1000, got 0"),
        (1000.5, "strength must be > 0 and <= 1000"),
        (-1, "> 0"),
        (True, "must be a number"),
        ("strong", "not a number"),
        (None, "strength needs a value"),
    ],
)
def test_slider_values_are_checked_against_the_option(sent: object, needle: str) -> None:
    with pytest.raises(ConfigError) as e:
        parse_options({"strength": sent})
    assert needle in str(e.value), str(e.value)


@pytest.mark.parametrize(
    ("name", "slider", "error"),
    [
        ("strength", Slider(0.0, 10.0, scale="log"), "log scale needs a range above 0"),
        ("strength", Slider(0.0, 10.0), "strength must be > 0"),  # the option's open bound
        ("strength", Slider(0.1, 2000.0, scale="log"), "strength must be > 0 and <= 1000"),
        ("strength", Slider(10.0, 0.1, scale="log"), "empty range"),
        ("content_weight", Slider(0.1, 10.0), "only non-nullable number options"),
        ("balance", Slider(0.1, 10.0), "only non-nullable number options"),
    ],
)
def test_a_slider_outside_its_option_is_refused(name: str, slider: Slider, error: str) -> None:
    option = next(o for o in OPTIONS if o.name == name)
    with pytest.raises((ConfigError, TypeError, ValueError)) as e:
        check_slider(option, slider)
    assert error in str(e.value), str(e.value)
