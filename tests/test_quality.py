"""The quality metric against a direct numpy computation of its definition."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import ImageFilter

from brushwork.images import load_image
from brushwork.pixels import resize, to_tensor
from brushwork.quality import CONTENT_LAYER, STYLE_LAYERS, QualityMeter, gram


@pytest.fixture(scope="module")
def meter() -> QualityMeter:
    return QualityMeter()


def np_gram(f: np.ndarray) -> np.ndarray:
    """G = F Fᵀ / (h·w) for features (c, h, w), float64."""
    c, h, w = f.shape
    m = f.reshape(c, h * w).astype(np.float64)
    return m @ m.T / (h * w)


def test_gram_matches_numpy() -> None:
    f = torch.randn(1, 7, 5, 3)
    np.testing.assert_allclose(gram(f).numpy(), np_gram(f[0].numpy()), rtol=1e-5, atol=1e-6)


def test_score_matches_the_definition(meter: QualityMeter, rainier: Path, starry: Path) -> None:
    content, style = load_image(rainier), load_image(starry)
    result = resize(load_image(starry), 64, 96)  # a "result": the painting itself, stretched
    q = meter.score(result, content, style)

    def feats(img):  # the same network, features to numpy
        with torch.no_grad():
            out = meter.net(to_tensor(img, meter.device), (*STYLE_LAYERS, CONTENT_LAYER))
        return {k: v[0].float().numpy() for k, v in out.items()}

    sw, sh = style.size
    f = math.sqrt(64 * 96 / (sw * sh))
    fs = feats(resize(style, round(sh * f), round(sw * f)))
    fr, fc = feats(result), feats(resize(content, 64, 96))

    def dist(fx):
        return np.mean(
            [
                np.linalg.norm(np_gram(fx[n]) - np_gram(fs[n])) / np.linalg.norm(np_gram(fs[n]))
                for n in STYLE_LAYERS
            ]
        )

    def np_mc(f):
        c = f.shape[0]
        m = f.reshape(c, -1).astype(np.float64)
        return m.mean(axis=1), np.cov(m, bias=True)

    def dist_mc(fx):
        out = []
        for n in STYLE_LAYERS:
            (mx, cx), (ms, cs) = np_mc(fx[n]), np_mc(fs[n])
            num = np.sum((mx - ms) ** 2) + np.sum((cx - cs) ** 2)
            out.append(np.sqrt(num / (np.sum(ms**2) + np.sum(cs**2))))
        return np.mean(out)

    d, d0 = dist(fr), dist(fc)
    moved = np.linalg.norm(fr[CONTENT_LAYER] - fc[CONTENT_LAYER]) / np.linalg.norm(
        fc[CONTENT_LAYER]
    )
    assert q.style_distance == pytest.approx(d, rel=1e-4)
    assert q.start_distance == pytest.approx(d0, rel=1e-4)
    assert q.gap_closed == pytest.approx(1 - d / d0, rel=1e-4)
    assert q.content_distance == pytest.approx(moved, rel=1e-4)
    assert q.meancov_gap_closed == pytest.approx(1 - dist_mc(fr) / dist_mc(fc), rel=1e-4)
    assert q.meancov_gap_closed > 0.5
    # The painting is far closer to itself than the photo is, and far from the photo.
    assert q.gap_closed > 0.5 and q.content_distance > 0.8


def test_the_photo_itself_scores_zero(meter: QualityMeter, rainier: Path, starry: Path) -> None:
    content = load_image(rainier)
    q = meter.score(resize(content, 64, 96), content, load_image(starry))
    assert q.gap_closed == pytest.approx(0.0, abs=1e-6)
    assert q.content_distance == pytest.approx(0.0, abs=1e-6)
    assert q.meancov_gap_closed == pytest.approx(0.0, abs=1e-6)


def test_style_statistics_follow_the_pixels_not_the_object(
    meter: QualityMeter, rainier: Path, starry: Path, wave: Path
) -> None:
    # The cache once keyed on id(style): a painting freed and another allocated at
    # its address was scored against the old one's statistics. Changing the pixels
    # of one and the same object must change the score, and scoring it again with
    # the first painting's pixels must give the first score back.
    content = load_image(rainier)
    result = resize(content, 64, 96).filter(ImageFilter.GaussianBlur(2))
    style = load_image(starry).copy()
    first = meter.score(result, content, style)
    style.paste(load_image(wave).resize(style.size))
    second = meter.score(result, content, style)
    fresh = QualityMeter().score(result, content, style)
    assert second.style_distance == pytest.approx(fresh.style_distance, rel=1e-6)
    assert abs(second.style_distance - first.style_distance) > 0.05
    style.paste(load_image(starry))
    assert meter.score(result, content, style).style_distance == pytest.approx(
        first.style_distance, rel=1e-6
    )
