"""Pixel conversions and sizes against numpy and exact arithmetic."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from brushwork.pixels import (
    fit_long_side,
    normalize,
    pixel_bounds,
    resize,
    rgb01,
    rgb_image,
    rgb_tensor,
    style_size,
    to_image,
    to_tensor,
)

CPU = torch.device("cpu")
MEAN = np.array([0.485, 0.456, 0.406]).reshape(1, 3, 1, 1)
STD = np.array([0.229, 0.224, 0.225]).reshape(1, 3, 1, 1)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1512)


@pytest.fixture
def photo(rainier: Path) -> Image.Image:
    return Image.open(rainier).convert("RGB").resize((120, 80), Image.Resampling.LANCZOS)


def test_normalize_is_imagenet_mean_std(rng: np.random.Generator) -> None:
    x = rng.uniform(-0.2, 1.2, size=(2, 3, 5, 7))
    out = normalize(torch.from_numpy(x))
    assert out.dtype == torch.float64
    np.testing.assert_allclose(out.numpy(), (x - MEAN) / STD, rtol=1e-15, atol=1e-15)


def test_rgb01_is_x_std_plus_mean(rng: np.random.Generator) -> None:
    x = rng.normal(size=(1, 3, 4, 6))
    out = rgb01(torch.from_numpy(x))
    np.testing.assert_allclose(out.numpy(), x * STD + MEAN, rtol=1e-15, atol=1e-15)


def test_normalize_and_rgb01_are_inverses_float64(rng: np.random.Generator) -> None:
    rgb = torch.from_numpy(rng.uniform(0, 1, size=(3, 3, 9, 11)))
    x = torch.from_numpy(rng.normal(size=(3, 3, 9, 11)) * 2)
    # Two roundings each way: the error is a few ulps of values of order 1..5.
    assert (rgb01(normalize(rgb)) - rgb).abs().max().item() < 4e-16
    assert (normalize(rgb01(x)) - x).abs().max().item() < 4e-15


def test_rgb_tensor_is_bytes_over_255(photo: Image.Image) -> None:
    t = rgb_tensor(photo, CPU)
    assert t.shape == (1, 3, 80, 120) and t.dtype == torch.float32 and t.is_contiguous()
    ref = np.asarray(photo, dtype=np.float32).transpose(2, 0, 1)[None] / np.float32(255.0)
    np.testing.assert_array_equal(t.numpy(), ref)


def test_rgb_tensor_and_rgb_image_round_trip_8bit_exact(photo: Image.Image) -> None:
    back = rgb_image(rgb_tensor(photo, CPU))
    assert back.mode == "RGB" and back.size == photo.size
    np.testing.assert_array_equal(np.asarray(back), np.asarray(photo))


def test_to_tensor_and_to_image_round_trip_8bit_exact(photo: Image.Image) -> None:
    x = to_tensor(photo, CPU)
    assert x.shape == (1, 3, 80, 120) and x.dtype == torch.float32 and x.is_contiguous()
    arr = np.asarray(photo, dtype=np.float64).transpose(2, 0, 1)[None] / 255.0
    np.testing.assert_allclose(x.numpy(), (arr - MEAN) / STD, rtol=0, atol=2e-6)
    np.testing.assert_array_equal(np.asarray(to_image(x)), np.asarray(photo))


def test_rgb_image_clips_and_rounds() -> None:
    rgb = torch.tensor([-0.3, 0.6 / 255, 0.4 / 255, 1.7, 128.4 / 255, 128.6 / 255])
    img = rgb_image(rgb.view(1, 1, 2, 3).expand(1, 3, 2, 3))
    assert np.asarray(img)[:, :, 0].tolist() == [[0, 1, 0], [255, 128, 129]]
    # to_image clips in RGB, not in the normalized space.
    lo, hi = pixel_bounds(CPU)
    x = torch.cat([lo - 5.0, hi + 5.0], dim=3)
    assert np.asarray(to_image(x)).tolist() == [[[0, 0, 0], [255, 255, 255]]]


def test_pixel_bounds_are_normalized_0_and_1() -> None:
    lo, hi = pixel_bounds(CPU)
    assert lo.shape == hi.shape == (1, 3, 1, 1)
    np.testing.assert_allclose(lo.numpy().ravel(), (-MEAN / STD).ravel(), rtol=1e-6)
    np.testing.assert_allclose(hi.numpy().ravel(), ((1 - MEAN) / STD).ravel(), rtol=1e-6)
    np.testing.assert_array_equal(lo.numpy(), normalize(torch.zeros(1, 3, 1, 1)).numpy())
    np.testing.assert_array_equal(hi.numpy(), normalize(torch.ones(1, 3, 1, 1)).numpy())
    np.testing.assert_allclose(rgb01(lo).numpy(), 0.0, atol=1e-7)
    np.testing.assert_allclose(rgb01(hi).numpy(), 1.0, atol=1e-7)


def test_fit_long_side() -> None:
    assert fit_long_side(2048, 1365, 96) == (64, 96)  # (h, w) of the book's landscape
    assert fit_long_side(1365, 2048, 96) == (96, 64)
    assert fit_long_side(300, 300, 50) == (50, 50)
    assert fit_long_side(100, 50, 400) == (200, 400)  # upscales to the asked size
    assert fit_long_side(10000, 3, 50) == (1, 50)  # each side at least 1
    assert fit_long_side(451, 300, 512) == (round(300 * 512 / 451), 512)


def test_resize_keeps_an_image_of_the_right_size() -> None:
    img = Image.new("RGB", (40, 30))
    assert resize(img, 30, 40) is img
    assert resize(img, 15, 20).size == (20, 15)


# --- style_size -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("style_wh", "out_hw", "scale"),
    [
        ((300, 600), (64, 96), 1.0),
        ((2048, 1365), (120, 80), 1.0),
        ((1000, 700), (256, 256), 0.5),
        ((1000, 700), (100, 150), 1.5),
    ],
)
def test_style_size_area_keeps_own_aspect_and_scaled_area(
    style_wh: tuple[int, int], out_hw: tuple[int, int], scale: float
) -> None:
    sw, sh = style_wh
    h, w = out_hw
    got_h, got_w = style_size(
        Image.new("RGB", style_wh), h, w, fit="area", scale=scale, min_side=16
    )
    # Exact sizes from the definition: the factor that gives scale² × the output's area.
    f = scale * math.sqrt(h * w / (sw * sh))
    assert f < 1  # downscaled cases
    assert (got_h, got_w) == (round(sh * f), round(sw * f))
    # The style's own aspect ratio and the requested area, up to rounding to pixels.
    assert abs(got_w / got_h - sw / sh) <= (sw / sh) * (1 / got_h + 1 / got_w)
    assert abs(got_h * got_w / (scale**2 * h * w) - 1) < 2 * (1 / got_h + 1 / got_w)


def test_style_size_area_never_upscales() -> None:
    small = Image.new("RGB", (100, 50))
    assert style_size(small, 512, 512, fit="area", scale=1.0, min_side=16) == (50, 100)
    assert style_size(small, 60, 60, fit="area", scale=4.0, min_side=16) == (50, 100)
    # Exactly its own area: factor 1.
    assert style_size(small, 50, 100, fit="area", scale=1.0, min_side=16) == (50, 100)


def test_style_size_min_side() -> None:
    strip = Image.new("RGB", (1000, 10))
    # factor sqrt(64·64 / 10000) = 0.64: 6.4 rows -> 6, raised to 16; width 640.
    assert style_size(strip, 64, 64, fit="area", scale=1.0, min_side=16) == (16, 640)
    assert style_size(strip, 64, 64, fit="area", scale=1.0, min_side=4) == (6, 640)
    assert style_size(strip, 20, 20, fit="stretch", scale=0.5, min_side=16) == (16, 16)


def test_style_size_stretch_is_output_times_scale() -> None:
    style = Image.new("RGB", (37, 900))
    assert style_size(style, 64, 96, fit="stretch", scale=1.0, min_side=16) == (64, 96)
    assert style_size(style, 64, 96, fit="stretch", scale=1.5, min_side=16) == (96, 144)
    assert style_size(style, 64, 96, fit="stretch", scale=0.25, min_side=16) == (16, 24)
