"""Optical flow between content frames, warping, and the consistency mask (Ruder et al. 2016).

Conventions (arrays, not tensors: OpenCV works on them):

* images are (h, w) uint8 grey for flow, (h, w, c) float32 for warping;
* a flow ``w`` from frame A to frame B is (h, w, 2) float32, (dx, dy) in pixels,
  such that A(p) ≈ B(p + w(p)): each pixel of A says where it is in B.

So the *backward* flow of frame t (from t to t−1) lets each pixel of t look up
where it was in t−1, which is what warping the previous output needs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

Flow = NDArray[np.float32]
Mask = NDArray[np.float32]

#: Ruder et al. 2016, eq. (4)/(5), after Sundaram et al. 2010: disoccluded where
#: |w + ŵ|² > OCC_REL (|w|² + |ŵ|²) + OCC_ABS.
OCC_REL = 0.01
OCC_ABS = 0.5
#: Motion boundary where |∇u|² + |∇v|² > MB_REL |w|² + MB_ABS.
MB_REL = 0.01
MB_ABS = 0.002


def to_gray(rgb: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """(h, w, 3) uint8 RGB -> (h, w) uint8 luma, the input of DIS."""
    import cv2

    return np.asarray(cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY))


def dis_flow(a: NDArray[np.uint8], b: NDArray[np.uint8]) -> Flow:
    """Dense flow from grey frame ``a`` to grey frame ``b``: a(p) ≈ b(p + flow(p)).

    OpenCV's DIS (Kroeger et al. 2016) with its "medium" preset: on a
    synthetic pan it is accurate to a tenth of a pixel (tests), and costs a few
    milliseconds against the seconds of a frame's optimization, so the
    faster presets buy nothing here.
    """
    import cv2

    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"expected two grey frames of one size, got {a.shape} and {b.shape}")
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)  # type: ignore[attr-defined]
    flow = dis.calc(np.ascontiguousarray(a), np.ascontiguousarray(b), None)
    return np.asarray(flow, dtype=np.float32)


def warp(image: NDArray[np.float32], flow: Flow, *, cubic: bool = True) -> NDArray[np.float32]:
    """Backward warp: out(p) = image(p + flow(p)), borders replicated.

    ``image`` (h, w) or (h, w, c) float32 is frame B; ``flow`` goes from frame A
    to B; the result is B's content moved onto A's pixel grid. Bicubic by
    default: each frame starts from, and is tied to, the previous output
    warped, so the interpolation's blur compounds over a clip, and a bilinear
    half-pixel shift halves the finest strokes' contrast; bicubic keeps them.
    """
    import cv2

    h, w = flow.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    map_x = xs + flow[..., 0]
    map_y = ys + flow[..., 1]
    out = cv2.remap(
        np.ascontiguousarray(image, dtype=np.float32),
        map_x,
        map_y,
        interpolation=cv2.INTER_CUBIC if cubic else cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )
    return np.asarray(out, dtype=np.float32).reshape(image.shape)


def disocclusion(backward: Flow, forward: Flow) -> NDArray[np.bool_]:
    """True where the forward-backward check fails: pixels of frame t not seen in t−1.

    ``backward`` goes from t to t−1, ``forward`` from t−1 to t. ŵ(p) =
    forward(p + backward(p)) is the forward flow fetched at where p was; for a
    consistent pixel ŵ ≈ −w. Disoccluded where
    |w + ŵ|² > 0.01 (|w|² + |ŵ|²) + 0.5 (Ruder et al. 2016), or where p + w(p)
    falls outside frame t−1 (nothing there to be consistent with).
    """
    w = backward
    w_hat = warp(forward, backward, cubic=False)
    lhs = np.sum((w + w_hat) ** 2, axis=-1)
    rhs = OCC_REL * (np.sum(w**2, axis=-1) + np.sum(w_hat**2, axis=-1)) + OCC_ABS
    h, wd = w.shape[:2]
    ys, xs = np.mgrid[0:h, 0:wd].astype(np.float32)
    tx, ty = xs + w[..., 0], ys + w[..., 1]
    outside = (tx < 0) | (tx > wd - 1) | (ty < 0) | (ty > h - 1)
    return np.asarray((lhs > rhs) | outside)


def motion_boundary(flow: Flow) -> NDArray[np.bool_]:
    """True on motion boundaries: |∇u|² + |∇v|² > 0.01 |w|² + 0.002 (Ruder et al. 2016).

    Gradients are central differences (one-sided at the borders), per pixel.
    """
    u, v = flow[..., 0].astype(np.float64), flow[..., 1].astype(np.float64)
    uy, ux = np.gradient(u)
    vy, vx = np.gradient(v)
    grad2 = ux**2 + uy**2 + vx**2 + vy**2
    return np.asarray(grad2 > MB_REL * (u**2 + v**2) + MB_ABS)


def consistency_mask(backward: Flow, forward: Flow) -> Mask:
    """Ruder's weights c: (h, w) float32, 0 where disoccluded or on a motion boundary, else 1."""
    bad = disocclusion(backward, forward) | motion_boundary(backward)
    return (~bad).astype(np.float32)


@dataclass(frozen=True)
class FramePair:
    """The flow of a frame t back to an earlier frame, and where that flow can be trusted."""

    backward: Flow  # t -> earlier: warp the earlier output with it
    mask: Mask  # (h, w) float32 in {0, 1}


def pair_flow(current: NDArray[np.uint8], earlier: NDArray[np.uint8]) -> FramePair:
    """Both DIS flows between two grey frames and Ruder's consistency mask."""
    backward = dis_flow(current, earlier)
    forward = dis_flow(earlier, current)
    return FramePair(backward, consistency_mask(backward, forward))


def long_term_masks(masks: list[Mask]) -> list[Mask]:
    """Ruder's long-term weights: c_long_j = max(c_j − Σ_{k<j} c_k, 0), nearest frame first.

    Each pixel is tied to the closest earlier frame in which it is visible, and
    only to that one, so the term does not count a pixel several times.
    """
    out: list[Mask] = []
    seen = np.zeros_like(masks[0]) if masks else np.zeros((0,), np.float32)
    for m in masks:
        out.append(np.maximum(m - seen, 0.0).astype(np.float32))
        seen = seen + m
    return out
