"""Synthetic clips with known motion, made from a still photo (tests, benchmark, demo).

No clip ships with brushwork or its dependencies, so the tests make their own:
a camera pan (every pixel moves by the same known step), a zoom (flow grows
linearly from the centre), and an object moving over a still background (it
covers and uncovers pixels: occlusions at known places).
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image

Frame = NDArray[np.uint8]


def _affine(src: Image.Image, size: tuple[int, int], matrix: Sequence[float]) -> Frame:
    """Output pixel (x, y) samples src at (a x + b y + c, d x + e y + f), bicubic."""
    out = src.transform(size, Image.Transform.AFFINE, tuple(matrix), Image.Resampling.BICUBIC)
    return np.array(out.convert("RGB"))  # a writable copy


def pan(
    photo: Image.Image,
    frames: int,
    size: tuple[int, int],
    step: tuple[float, float],
    *,
    origin: tuple[float, float] = (0.0, 0.0),
) -> list[Frame]:
    """A camera pan: frame t shows the window of ``size`` (w, h) at origin + t·step.

    The scene moves by −step per frame, so the backward flow (from t to t−1)
    is +step everywhere inside the frame. Sub-pixel steps are sampled bicubically.
    """
    ox, oy = origin
    sx, sy = step
    return [_affine(photo, size, (1, 0, ox + t * sx, 0, 1, oy + t * sy)) for t in range(frames)]


def zoom(
    photo: Image.Image,
    frames: int,
    size: tuple[int, int],
    rate: float,
    *,
    center: tuple[float, float],
) -> list[Frame]:
    """A zoom in by ``rate`` per frame about ``center`` (in photo pixels).

    Frame t shows photo(center + (p − c) / rate^t) at output pixel p, with c
    the frame's centre, so pixel p of frame t was at c + (p − c) / rate in
    frame t−1: the backward flow is (p − c)(1/rate − 1).
    """
    w, h = size
    cx, cy = center
    out = []
    for t in range(frames):
        s = 1.0 / rate**t
        out.append(_affine(photo, size, (s, 0, cx - s * w / 2, 0, s, cy - s * h / 2)))
    return out


def moving_object(
    background: Image.Image,
    sprite: Image.Image,
    frames: int,
    size: tuple[int, int],
    *,
    box: tuple[int, int],
    start: tuple[int, int],
    step: tuple[int, int],
    pan_step: tuple[float, float] = (0.0, 0.0),
    round_shape: bool = False,
) -> tuple[list[Frame], list[tuple[int, int, int, int]]]:
    """An opaque object cut from ``sprite`` moving by ``step`` px per frame.

    The object is the ``box`` (w, h) rectangle, or the ellipse inside it with
    ``round_shape``. The background is still (or pans by ``pan_step``). Returns
    the frames and each frame's object box (x0, y0, x1, y1), so a test knows
    which pixels a frame uncovers: those of the previous box not in the current one.
    """
    bw, bh = box
    patch = np.asarray(sprite.convert("RGB").resize((bw, bh), Image.Resampling.LANCZOS))
    inside = np.ones((bh, bw), bool)
    if round_shape:
        ys, xs = np.mgrid[0:bh, 0:bw]
        inside = ((xs + 0.5 - bw / 2) / (bw / 2)) ** 2 + ((ys + 0.5 - bh / 2) / (bh / 2)) ** 2 <= 1
    bg = pan(background, frames, size, pan_step)
    boxes = []
    for t, frame in enumerate(bg):
        x0, y0 = start[0] + t * step[0], start[1] + t * step[1]
        # Clip to the frame: the object may enter or leave it.
        fx0, fy0 = max(x0, 0), max(y0, 0)
        fx1, fy1 = min(x0 + bw, frame.shape[1]), min(y0 + bh, frame.shape[0])
        if fx0 < fx1 and fy0 < fy1:
            region = frame[fy0:fy1, fx0:fx1]
            sub = (slice(fy0 - y0, fy1 - y0), slice(fx0 - x0, fx1 - x0))
            region[inside[sub]] = patch[sub][inside[sub]]
        boxes.append((x0, y0, x0 + bw, y0 + bh))
    return bg, boxes


def write_clip(
    path: Path,
    frames: Sequence[Frame],
    fps: Fraction | int = 8,
    *,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    pts: Sequence[int] | None = None,
    time_base: Fraction | None = None,
    rotation: int = 0,
    audio: str | None = None,
) -> Path:
    """Encode frames (h, w, 3) uint8 into a video file with PyAV.

    ``pts``/``time_base`` give explicit (e.g. variable-rate) timestamps;
    ``rotation`` sets the display matrix; ``audio`` adds a tone in that codec.
    """
    import av

    h, w = frames[0].shape[:2]
    with av.open(str(path), "w") as out:
        vs: Any = out.add_stream(codec, rate=Fraction(fps))
        vs.width, vs.height, vs.pix_fmt = w, h, pix_fmt
        if time_base is not None:
            vs.time_base = time_base
            vs.codec_context.time_base = time_base
        if rotation:
            vs.set_display_rotation(rotation)
        a_out: Any = None
        if audio is not None:
            a_out = out.add_stream(audio, rate=16000, layout="mono")
        for i, arr in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(arr), format="rgb24")
            if pts is not None and time_base is not None:
                frame.pts, frame.time_base = pts[i], time_base
            for packet in vs.encode(frame):
                out.mux(packet)
        for packet in vs.encode():
            out.mux(packet)
        if a_out is not None:
            seconds = len(frames) / float(fps)
            n = int(16000 * seconds)
            tone = (np.sin(np.arange(n) * 2 * np.pi * 440 / 16000) * 0.2).astype(np.float32)
            sound = av.AudioFrame.from_ndarray(tone[None], format="flt", layout="mono")
            sound.sample_rate = 16000
            for packet in a_out.encode(sound):
                out.mux(packet)
            for packet in a_out.encode(None):
                out.mux(packet)
    return path
