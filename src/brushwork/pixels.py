"""Between pictures and the optimized tensor: conversions and sizes.

The composite image lives in the d2l book's space, ImageNet mean/std-normalized
RGB, as a float32 (1, 3, h, w) tensor; each backbone converts it to its own
input inside its forward pass. Colour work happens in RGB 0..1 (``rgb01``).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from PIL import Image
from torch import Tensor

#: ImageNet statistics of torchvision's models, in RGB, for 0..1 input.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _stats(x: Tensor) -> tuple[Tensor, Tensor]:
    mean = torch.tensor(IMAGENET_MEAN, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    return mean, std


def normalize(rgb: Tensor) -> Tensor:
    """RGB in 0..1 (b, 3, h, w) -> ImageNet-normalized, (rgb − mean) / std."""
    mean, std = _stats(rgb)
    return (rgb - mean) / std


def rgb01(x: Tensor) -> Tensor:
    """ImageNet-normalized (b, 3, h, w) -> RGB in 0..1, x·std + mean (not clipped)."""
    mean, std = _stats(x)
    return x * std + mean


def pixel_bounds(device: torch.device) -> tuple[Tensor, Tensor]:
    """The normalized images of RGB 0 and 1, (1, 3, 1, 1) each: the valid range of x."""
    lo = normalize(torch.zeros(1, 3, 1, 1, device=device))
    hi = normalize(torch.ones(1, 3, 1, 1, device=device))
    return lo, hi


def rgb_tensor(img: Image.Image, device: torch.device) -> Tensor:
    """PIL RGB -> (1, 3, h, w) float32 RGB in 0..1."""
    arr = np.asarray(img, dtype=np.float32) / 255.0
    return torch.from_numpy(arr).permute(2, 0, 1).unsqueeze(0).contiguous().to(device)


def rgb_image(rgb: Tensor) -> Image.Image:
    """(1, 3, h, w) RGB -> PIL RGB, clipped to 0..1 (the book's postprocess), rounded."""
    arr = rgb.detach().to("cpu", torch.float32).clamp(0, 1)[0].permute(1, 2, 0).numpy()
    return Image.fromarray((arr * 255.0 + 0.5).astype(np.uint8))


def to_tensor(img: Image.Image, device: torch.device) -> Tensor:
    """PIL RGB -> (1, 3, h, w) float32, ImageNet-normalized."""
    return normalize(rgb_tensor(img, device)).contiguous()


def to_image(x: Tensor) -> Image.Image:
    """(1, 3, h, w) normalized -> PIL RGB, clipped to the valid range."""
    return rgb_image(rgb01(x.detach().float()))


def fit_long_side(width: int, height: int, long_side: int) -> tuple[int, int]:
    """(h, w) with the given long side and the input's aspect ratio (each >= 1)."""
    scale = long_side / max(width, height)
    return max(1, round(height * scale)), max(1, round(width * scale))


def resize(img: Image.Image, h: int, w: int) -> Image.Image:
    """Lanczos resize to (h, w); the same image when it already has that size."""
    if img.size == (w, h):
        return img
    return img.resize((w, h), Image.Resampling.LANCZOS)


def style_size(
    style: Image.Image, h: int, w: int, *, fit: str, scale: float, min_side: int
) -> tuple[int, int]:
    """(h, w) of a style image for an (h, w) output.

    ``area``: the style's own aspect ratio, with ``scale``² times the output's
    area, never upscaled beyond its own pixels. ``stretch``: exactly (h, w)
    times ``scale`` (the book's way at scale 1). Each side is at least ``min_side``.
    """
    if fit == "stretch":
        return max(min_side, round(h * scale)), max(min_side, round(w * scale))
    sw, sh = style.size
    factor = min(1.0, scale * math.sqrt(h * w / (sw * sh)))
    return max(min_side, round(sh * factor)), max(min_side, round(sw * factor))
