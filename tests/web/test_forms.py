"""The studio's form: built from the option description, checks what clients send."""

from __future__ import annotations

import dataclasses

import pytest

from brushwork.config import OPTIONS, StyleConfig
from brushwork.errors import ConfigError
from brushwork.web.forms import build_config, form_fields, label, parse_options


def test_the_form_is_the_studio_options_of_the_config() -> None:
    fields = {f.name: f for f in form_fields()}
    studio = [o.name for o in OPTIONS if "studio" in o.surfaces and o.kind not in ("path",)]
    assert list(fields) == [n for n in studio if n != "stages"]
    # Exposure comes from the description, not from a metavar string.
    assert "model_weights" not in fields and "init_image" not in fields
    # init is a choice; "image" needs a path, which the studio never takes.
    assert fields["init"].kind == "select"
    assert fields["init"].choices == ("content", "noise", "style-stats")
    js = fields["iterations"].to_json()
    assert (js["min"], js["max"], js["default"]) == (1, 100_000, StyleConfig().iterations)
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
        ({"init": "image"}, "must be one of content, noise, style-stats"),
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
