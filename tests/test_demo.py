"""The built-in demo pair: a painting painted from a seed, and scikit-image's photo."""

from __future__ import annotations

import numpy as np
from PIL import Image

from brushwork.demo import demo_photo, demo_photo_path, paint_style


def pixels(img: Image.Image) -> np.ndarray:
    return np.asarray(img, dtype=np.float64)


def test_paint_style_is_deterministic_per_seed() -> None:
    a, b = paint_style(96, seed=7), paint_style(96, seed=7)
    assert a.mode == "RGB" and a.size == (96, 96)
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_another_seed_paints_another_picture() -> None:
    a, b = pixels(paint_style(96, seed=7)), pixels(paint_style(96, seed=8))
    # Measured: 96 % of the pixels differ, by 52 grey levels on average.
    assert (a != b).any(axis=2).mean() > 0.5
    assert np.abs(a - b).mean() > 20


def test_paint_style_has_the_requested_size() -> None:
    for size in (16, 64, 131):
        assert paint_style(size, seed=3).size == (size, size)


def test_paint_style_is_not_flat() -> None:
    for seed in (7, 8):
        arr = pixels(paint_style(96, seed=seed)).reshape(-1, 3)
        # Measured per-channel std (R, G, B) in 0..255: (68.6, 54.5, 43.0) for seed 7,
        # (55.7, 44.8, 39.4) for seed 8.
        assert (arr.std(axis=0) > 30).all(), arr.std(axis=0)
        assert len(np.unique(arr, axis=0)) > 1000  # many colours, not a few flat patches


def test_demo_photo_exists_and_decodes() -> None:
    path = demo_photo_path()
    assert path.is_file() and path.name == "chelsea.png"
    with Image.open(path) as img:
        img.load()
        assert img.format == "PNG"
        decoded = np.asarray(img.convert("RGB"))
    assert decoded.shape == (300, 451, 3)
    assert decoded.std() > 10
    photo = demo_photo()
    assert photo.mode == "RGB"
    np.testing.assert_array_equal(np.asarray(photo), decoded)
