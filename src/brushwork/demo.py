"""The built-in demo pair: a photo that ships with scikit-image, and a painting we paint.

Nothing is downloaded. The photo is scikit-image's ``chelsea.png`` (public
domain, Stefan van der Walt), read straight from the installed wheel without
importing scikit-image. The style image is painted here from a fixed seed:
swirling impasto strokes in a night-sky palette, so it is ours to
redistribute.
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from brushwork.errors import BrushworkError

DEMO_PHOTO = "chelsea.png"

# Night-sky palette (RGB): ultramarine, cobalt, teal, pale blue, chrome yellow, ochre, white.
_PALETTE = np.array(
    [
        (20, 40, 110),
        (35, 70, 160),
        (60, 110, 190),
        (30, 110, 130),
        (150, 190, 220),
        (240, 200, 60),
        (220, 150, 40),
        (245, 240, 210),
    ],
    dtype=np.float64,
)


def demo_photo_path() -> Path:
    """Path of scikit-image's bundled ``chelsea.png``."""
    spec = importlib.util.find_spec("skimage")
    if spec is None or not spec.submodule_search_locations:
        raise BrushworkError("the demo photo comes with scikit-image; pip install scikit-image")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / DEMO_PHOTO
    if not path.is_file():
        raise BrushworkError(f"scikit-image is installed but has no {path}")
    return path


def demo_photo() -> Image.Image:
    with Image.open(demo_photo_path()) as img:
        return img.convert("RGB")


def paint_style(size: int = 512, seed: int = 7) -> Image.Image:
    """Paint a swirling night-sky 'painting' of ``size``×``size`` pixels.

    Strokes follow a flow field made of a few vortices; colour depends on how
    close a stroke is to a vortex core (warm yellows in the swirls, blues in
    between), with per-stroke jitter.
    """
    rng = np.random.default_rng(seed)
    img = Image.new("RGB", (size, size), (25, 45, 100))
    draw = ImageDraw.Draw(img)
    centres = rng.uniform(0.1, 0.9, size=(5, 2)) * size
    spins = rng.choice([-1.0, 1.0], size=5)
    radius = size * 0.12

    def flow(x: float, y: float) -> tuple[float, float]:
        vx, vy = 0.6, 0.08 * math.sin(y / size * 9.0)
        for (cx, cy), spin in zip(centres, spins, strict=True):
            dx, dy = x - cx, y - cy
            r2 = dx * dx + dy * dy + 1.0
            k = spin * radius * radius / r2
            vx += -dy * k / math.sqrt(r2)
            vy += dx * k / math.sqrt(r2)
        n = math.hypot(vx, vy) + 1e-9
        return vx / n, vy / n

    def warmth(x: float, y: float) -> float:
        d = min(math.hypot(x - cx, y - cy) for cx, cy in centres)
        return math.exp(-((d / (radius * 0.9)) ** 2))

    strokes = int(3.2 * size * size / 256)
    for _ in range(strokes):
        x, y = rng.uniform(0, size, 2)
        heat = warmth(x, y)
        if rng.random() < heat:
            base = _PALETTE[rng.choice([5, 6, 7], p=[0.5, 0.3, 0.2])]
        else:
            base = _PALETTE[rng.choice([0, 1, 2, 3, 4], p=[0.3, 0.3, 0.2, 0.12, 0.08])]
        colour = tuple(int(v) for v in np.clip(base + rng.normal(0, 14, 3), 0, 255))
        width = int(rng.integers(3, 8))
        pts = [(x, y)]
        for _ in range(int(rng.integers(4, 12))):
            ux, uy = flow(x, y)
            x, y = x + ux * 4.0, y + uy * 4.0
            pts.append((x, y))
        draw.line(pts, fill=colour, width=width, joint="curve")
    return img.filter(ImageFilter.SMOOTH)
