from __future__ import annotations

import dataclasses
import typing

import pytest

from brushwork.backbones import SPECS
from brushwork.config import StyleConfig, StyleOptions, make_config
from brushwork.errors import ConfigError


def test_style_options_mirror_config_fields() -> None:
    fields = {f.name: f.type for f in dataclasses.fields(StyleConfig)}
    assert set(typing.get_type_hints(StyleOptions)) == set(fields)


def test_presets_and_overrides() -> None:
    assert make_config("d2l", iterations=3).style_fit == "stretch"
    with pytest.raises(ConfigError, match="unknown preset"):
        make_config("nope")
    with pytest.raises(ConfigError, match="unknown option"):
        make_config(colour="red")


def test_vgg19_keeps_the_books_weights_and_vgg16_is_calibrated() -> None:
    w19 = SPECS["vgg19"].loss_weights
    assert (w19.content, w19.style, w19.tv) == (1.0, 1e3, 10.0)
    w16 = SPECS["vgg16"].loss_weights
    k = 70.0  # measured feature scale, see benchmarks/calibrate_vgg16.py
    assert (w16.content, w16.style, w16.tv) == pytest.approx((1 / k**2, 1e3 / k**4, 10.0))
    # The same balance: style/content ratio shrinks by k² as the features grow by k.
    assert w16.style / w16.content == pytest.approx((w19.style / w19.content) / k**2)
