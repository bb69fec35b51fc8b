"""Flow, warping and Ruder's consistency mask, on clips made from real photos with known motion."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from brushwork.video.flow import (
    consistency_mask,
    dis_flow,
    disocclusion,
    long_term_masks,
    motion_boundary,
    pair_flow,
    to_gray,
    warp,
)
from brushwork.video.synth import moving_object, pan, zoom

SIZE = (160, 112)
BORDER = 10  # flow near the frame's edge has nothing to match: judged away from it


@pytest.fixture(scope="module")
def photo(rainier: Path) -> Image.Image:
    return Image.open(rainier).convert("RGB").resize((600, 400), Image.Resampling.LANCZOS)


def epe(flow: np.ndarray, true: np.ndarray) -> float:
    """Mean endpoint error away from the borders, in pixels."""
    err = np.sqrt(((flow - true) ** 2).sum(-1))
    return float(err[BORDER:-BORDER, BORDER:-BORDER].mean())


@pytest.mark.parametrize("step", [(3.0, 2.0), (1.5, -0.75), (-4.25, 0.5)])
def test_dis_flow_on_a_pan_is_within_half_a_pixel(photo: Image.Image, step) -> None:
    # The window moves by +step per frame, so the scene moves by -step and each
    # pixel of frame 1 was at p + step in frame 0: the backward flow is +step.
    f0, f1 = pan(photo, 2, SIZE, step, origin=(200.0, 120.0))
    flow = dis_flow(to_gray(f1), to_gray(f0))
    true = np.broadcast_to(np.array(step, np.float32), flow.shape)
    assert epe(flow, true) < 0.5
    # And not just "small": the mean flow is the step to a fifth of a pixel.
    inner = flow[BORDER:-BORDER, BORDER:-BORDER].reshape(-1, 2).mean(0)
    np.testing.assert_allclose(inner, step, atol=0.2)


def test_dis_flow_on_a_zoom_follows_the_radial_field(photo: Image.Image) -> None:
    rate = 1.04
    f0, f1 = zoom(photo, 2, SIZE, rate, center=(300.0, 200.0))
    flow = dis_flow(to_gray(f1), to_gray(f0))
    w, h = SIZE
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    # Pixel p of frame 1 was at c + (p - c) / rate in frame 0.
    true = np.stack([(xs - w / 2) * (1 / rate - 1), (ys - h / 2) * (1 / rate - 1)], axis=-1)
    assert np.abs(true).max() > 2.5  # a real zoom: up to ~3 px at the corners
    assert epe(flow, true) < 0.5


def test_warp_by_a_known_shift_moves_pixels_exactly(photo: Image.Image) -> None:
    img = np.asarray(photo, dtype=np.float32)[:100, :150] / 255
    flow = np.zeros((100, 150, 2), np.float32)
    flow[..., 0], flow[..., 1] = 3.0, -2.0
    out = warp(img, flow)
    # out(y, x) = img(y - 2, x + 3), exactly for integer shifts (either interpolation).
    np.testing.assert_allclose(out[2:, :-3], img[:-2, 3:], atol=1e-5)
    np.testing.assert_allclose(warp(img, flow, cubic=False)[2:, :-3], img[:-2, 3:], atol=1e-5)


def test_warp_by_half_a_pixel_is_bilinear_interpolation(photo: Image.Image) -> None:
    img = np.asarray(photo, dtype=np.float32)[:60, :80, 1] / 255
    flow = np.zeros((60, 80, 2), np.float32)
    flow[..., 0] = 0.5
    out = warp(img, flow, cubic=False)
    expected = (img[:, :-1] + img[:, 1:]) / 2
    np.testing.assert_allclose(out[:, :-1], expected, atol=2e-3)  # OpenCV's 5-bit weights
    # Bicubic is sharper: closer to the original's contrast than bilinear.
    cubic = warp(img, flow)
    assert np.std(np.diff(cubic, axis=1)) > np.std(np.diff(out, axis=1))


def numpy_disocclusion(backward: np.ndarray, forward: np.ndarray) -> np.ndarray:
    """Ruder's test written out per pixel, with nearest-pixel lookups of integer flows."""
    h, w = backward.shape[:2]
    bad = np.zeros((h, w), bool)
    for y in range(h):
        for x in range(w):
            u, v = backward[y, x]
            ty, tx = int(round(y + v)), int(round(x + u))
            if not (0 <= ty < h and 0 <= tx < w):
                bad[y, x] = True
                continue
            uh, vh = forward[ty, tx]
            lhs = (u + uh) ** 2 + (v + vh) ** 2
            rhs = 0.01 * (u * u + v * v + uh * uh + vh * vh) + 0.5
            bad[y, x] = lhs > rhs
    return bad


def test_disocclusion_matches_the_paper_formula() -> None:
    rng = np.random.default_rng(0)
    # Integer flows keep the lookup exact, so the formula alone decides: a
    # uniform motion, with forward vectors disturbed at random pixels.
    backward = np.broadcast_to(np.array([2.0, -1.0], np.float32), (24, 32, 2)).copy()
    backward[rng.random((24, 32)) < 0.1] = (5.0, 3.0)
    forward = -np.broadcast_to(np.array([2.0, -1.0], np.float32), (24, 32, 2)).copy()
    hit = rng.random((24, 32)) < 0.3
    forward[hit] += rng.integers(-2, 3, size=(int(hit.sum()), 2)).astype(np.float32)
    ours = disocclusion(backward, forward)
    ref = numpy_disocclusion(backward, forward)
    assert 0.05 < ref.mean() < 0.95  # both outcomes occur
    np.testing.assert_array_equal(ours, ref)


def test_motion_boundary_matches_the_paper_formula() -> None:
    rng = np.random.default_rng(1)
    flow = (rng.normal(size=(20, 30, 2)) * 0.01).astype(np.float32)
    flow[:, 15:, 0] += 4.0  # a moving half: a motion boundary at column 15
    u, v = flow[..., 0].astype(np.float64), flow[..., 1].astype(np.float64)
    grad = np.zeros_like(u)
    for comp in (u, v):
        gy = np.zeros_like(comp)
        gx = np.zeros_like(comp)
        gy[1:-1] = (comp[2:] - comp[:-2]) / 2
        gy[0], gy[-1] = comp[1] - comp[0], comp[-1] - comp[-2]
        gx[:, 1:-1] = (comp[:, 2:] - comp[:, :-2]) / 2
        gx[:, 0], gx[:, -1] = comp[:, 1] - comp[:, 0], comp[:, -1] - comp[:, -2]
        grad += gx**2 + gy**2
    ref = grad > 0.01 * (u**2 + v**2) + 0.002
    ours = motion_boundary(flow)
    np.testing.assert_array_equal(ours, ref)
    assert ours[:, 14:16].all()  # the boundary itself is marked
    assert ours[:, 2:12].mean() < 0.5  # and the smooth part mostly not


def test_the_mask_marks_what_a_moving_object_uncovers(photo: Image.Image, autumn_oak: Path) -> None:
    sprite = Image.open(autumn_oak).convert("RGB")
    frames, boxes = moving_object(
        photo.resize((300, 200)), sprite, 3, SIZE, box=(48, 48), start=(30, 32), step=(12, 0)
    )
    pair = pair_flow(to_gray(frames[2]), to_gray(frames[1]))
    x0_prev, y0, _, y1 = boxes[1]
    x0, _, x1, _ = boxes[2]
    # Frame 2 shows background in [x0_prev, x0) that the object hid in frame 1.
    uncovered = 1 - pair.mask[y0:y1, x0_prev:x0]
    far = np.ones(pair.mask.shape, bool)
    far[max(0, y0 - 12) : y1 + 12, max(0, x0_prev - 12) : x1 + 12] = False
    elsewhere = 1 - pair.mask[far]
    assert uncovered.mean() > 0.6
    assert elsewhere.mean() < 0.1
    # DIS's 8-px patches smear the object's motion onto the few background
    # columns next to it; the columns further from the object are all marked.
    assert uncovered[:, :6].mean() > 0.95


def test_a_pan_is_consistent_except_where_it_enters(photo: Image.Image) -> None:
    f0, f1 = pan(photo, 2, SIZE, (4.0, 0.0), origin=(200.0, 120.0))
    pair = pair_flow(to_gray(f1), to_gray(f0))
    # Pixels of frame 1 whose previous place lies outside frame 0 (the last 4 columns).
    assert pair.mask[:, -3:].mean() < 0.05
    assert pair.mask[BORDER:-BORDER, BORDER:-BORDER].mean() > 0.97


def test_consistency_mask_combines_both_tests() -> None:
    backward = np.zeros((10, 12, 2), np.float32)
    forward = np.zeros_like(backward)
    forward[2, 3] = (5.0, 0.0)  # inconsistent at (2, 3)
    backward[6:, :, 0] = 3.0  # a motion boundary between rows 5 and 6
    backward[6:, -3:, 0] = 0.0  # (keep those pixels inside the frame)
    mask = consistency_mask(backward, forward)
    assert mask.dtype == np.float32
    assert mask[2, 3] == 0.0 and mask[0, 0] == 1.0
    assert (mask[5:7, :6] == 0).all()


def test_long_term_masks_count_each_pixel_once() -> None:
    c1 = np.array([[1, 0, 0, 1]], np.float32)
    c2 = np.array([[1, 1, 0, 0]], np.float32)
    c4 = np.array([[1, 1, 1, 0]], np.float32)
    l1, l2, l4 = long_term_masks([c1, c2, c4])
    np.testing.assert_array_equal(l1, [[1, 0, 0, 1]])
    np.testing.assert_array_equal(l2, [[0, 1, 0, 0]])
    np.testing.assert_array_equal(l4, [[0, 0, 1, 0]])
