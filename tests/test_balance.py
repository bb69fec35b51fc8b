"""Loss weights: calibration, the optimizer and style-loss factors, the user's overrides."""

from __future__ import annotations

import pytest

from brushwork.backbones import SPECS
from brushwork.balance import (
    BOOK_WEIGHTS,
    CAFFE_WEIGHTS,
    calibrated_weights,
    default_loss_weights,
    resolve_loss_weights,
)


def test_vgg19_keeps_the_books_weights_and_vgg16_is_calibrated() -> None:
    w19 = calibrated_weights(SPECS["vgg19"].input_space)
    assert (w19.content, w19.style, w19.tv) == (1.0, 1e3, 10.0)
    w16 = calibrated_weights(SPECS["vgg16"].input_space)
    k = 70.0  # measured feature scale, see benchmarks/calibrate_vgg16.py
    assert (w16.content, w16.style, w16.tv) == pytest.approx((1 / k**2, 1e3 / k**4, 10.0))
    # The same balance: style/content ratio shrinks by k² as the features grow by k.
    assert w16.style / w16.content == pytest.approx((w19.style / w19.content) / k**2)


def test_defaults_depend_on_optimizer_and_style_loss() -> None:
    space = SPECS["vgg16"].input_space
    lbfgs = default_loss_weights(space, "lbfgs", "gram")
    assert lbfgs.content == pytest.approx(5 * CAFFE_WEIGHTS.content)  # 0.00102, not 0.000204
    assert lbfgs.content == pytest.approx(0.00102, rel=1e-3)
    assert default_loss_weights(space, "adam", "gram") == CAFFE_WEIGHTS
    meancov = default_loss_weights(space, "adam", "meancov")
    assert meancov.style == pytest.approx(8e-5 * CAFFE_WEIGHTS.style)
    assert default_loss_weights("imagenet-rgb-normalized", "adam", "gram") == BOOK_WEIGHTS


def test_user_weights_win_and_textures_have_no_content() -> None:
    kw = dict(optimizer="lbfgs", style_loss="gram")
    w = resolve_loss_weights(
        "caffe-bgr-255",
        content_weight=2.0,
        style_weight=None,
        tv_weight=0.0,
        has_content=True,
        **kw,
    )
    assert (w.content, w.style, w.tv) == (2.0, CAFFE_WEIGHTS.style, 0.0)
    t = resolve_loss_weights(
        "caffe-bgr-255",
        content_weight=None,
        style_weight=None,
        tv_weight=None,
        has_content=False,
        **kw,
    )
    assert t.content == 0.0


def test_models_prints_what_runs_use(capsys: pytest.CaptureFixture[str]) -> None:
    from brushwork.balance import auto_loss_weights
    from brushwork.cli import main

    assert main(["models"]) == 0
    out = capsys.readouterr().out
    vgg16 = out.split("vgg19")[0]
    default_line = next(
        line for line in vgg16.splitlines() if "(default)" in line and "auto" in line
    )
    w = auto_loss_weights(1.0)
    assert f"content {w.content:g}, style {w.style:g} x strength, tv {w.tv:g}" in default_line
    # The book balance shows the weights an L-BFGS run really uses: 5x the calibration.
    lbfgs = next(line for line in vgg16.splitlines() if "lbfgs" in line and "gram" in line)
    assert "0.00102" in lbfgs and "0.000204" not in lbfgs


def test_auto_balance_weights_scale_with_strength() -> None:
    from brushwork.balance import AUTO_STYLE_WEIGHT, AUTO_TV_WEIGHT

    for strength in (0.3, 1.0, 3.0):
        w = resolve_loss_weights(
            "caffe-bgr-255",
            optimizer="lbfgs",
            style_loss="gram",
            content_weight=None,
            style_weight=None,
            tv_weight=None,
            has_content=True,
            balance="auto",
            strength=strength,
        )
        assert (w.content, w.style, w.tv) == (1.0, AUTO_STYLE_WEIGHT * strength, AUTO_TV_WEIGHT)
