"""Style inputs: style images, blend weights and region masks, made into each
stage's :class:`~brushwork.objective.StyleSource` list.

Everything is loaded and checked once, before any weights load; each stage
then resizes what it needs to its own output size.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps
from torch import Tensor

from brushwork.color import ColorMode
from brushwork.config import MIN_SIZE, StyleConfig
from brushwork.errors import ConfigError, ImageError
from brushwork.images import ImageInput, load_image
from brushwork.objective import StyleSource
from brushwork.pixels import normalize, resize, rgb_tensor, style_size


def as_list(value: ImageInput | Sequence[ImageInput]) -> list[ImageInput]:
    """One image input, or several, as a list."""
    if isinstance(value, str | os.PathLike | Image.Image):
        return [value]
    return list(value)


@dataclass(frozen=True)
class Region:
    """Pixels (bool, at the content's size) that take their own style images."""

    label: int
    pixels: np.ndarray
    styles: list[Image.Image]


@dataclass(frozen=True)
class StyleInputs:
    """Decoded style images with their blend, and the regions of a mask."""

    styles: list[Image.Image]
    blend: tuple[float, ...]
    regions: list[Region] = field(default_factory=list)
    fit: str = "area"
    scale: float = 1.0

    def sources(
        self, h: int, w: int, content: Tensor, mode: ColorMode, device: torch.device
    ) -> list[StyleSource]:
        """The stage's style sources for an (h, w) output; ``content`` is RGB 0..1 at (h, w).

        Each region's loss counts in proportion to its area (``StyleSource.share``),
        so the total stays comparable to an unmasked run.
        """

        def prep(img: Image.Image) -> Tensor:
            sh, sw = style_size(img, h, w, fit=self.fit, scale=self.scale, min_side=MIN_SIZE)
            rgb = rgb_tensor(resize(img, sh, sw), device)
            return normalize(mode.style_image(rgb, content)).contiguous()

        if not self.regions:
            return [StyleSource([prep(i) for i in self.styles], self.blend)]
        sources = []
        rest = np.ones((h, w), dtype=bool)
        for region in self.regions:
            r = _resize_mask(region.pixels, h, w)
            rest &= ~r
            if r.any():
                sources.append(
                    StyleSource(
                        [prep(i) for i in region.styles],
                        (1.0,) * len(region.styles),
                        region=_mask_tensor(r, device),
                    )
                )
        if rest.any():
            sources.append(
                StyleSource(
                    [prep(i) for i in self.styles], self.blend, region=_mask_tensor(rest, device)
                )
            )
        return sources


def load_style_inputs(
    style: ImageInput | Sequence[ImageInput],
    *,
    blend: Sequence[float] | None,
    mask: ImageInput | None,
    region_styles: Mapping[int, ImageInput | Sequence[ImageInput]] | None,
    content_size: tuple[int, int],
    fit: str,
    scale: float,
) -> StyleInputs:
    """Decode and check every style input; ``content_size`` is the content's (w, h)."""
    paths = as_list(style)
    if not paths:
        raise ConfigError("at least one style image is needed")
    if blend is not None and len(blend) != len(paths):
        raise ConfigError(f"{len(blend)} blend weights for {len(paths)} style images")
    styles = [load_image(s, "style") for s in paths]
    regions = load_regions(mask, region_styles, content_size)
    return StyleInputs(styles, tuple(blend or (1.0,) * len(styles)), regions, fit=fit, scale=scale)


def config_style_inputs(
    cfg: StyleConfig,
    style: ImageInput | Sequence[ImageInput],
    *,
    content_size: tuple[int, int],
    mask: ImageInput | None = None,
    region_styles: Mapping[int, ImageInput | Sequence[ImageInput]] | None = None,
) -> StyleInputs:
    """:func:`load_style_inputs` with the config's blend weights, fit and scale."""
    return load_style_inputs(
        style,
        blend=cfg.style_blend,
        mask=mask,
        region_styles=region_styles,
        content_size=content_size,
        fit=cfg.style_fit,
        scale=cfg.style_scale,
    )


def load_regions(
    mask: ImageInput | None,
    region_styles: Mapping[int, ImageInput | Sequence[ImageInput]] | None,
    content_size: tuple[int, int],
) -> list[Region]:
    """Regions of a label mask the size of the content, each with its style images."""
    if mask is None:
        if region_styles:
            raise ConfigError("region styles need a mask image")
        return []
    if not region_styles:
        raise ConfigError("a mask needs at least one region style (LABEL=STYLE)")
    labels = label_array(mask)
    w, h = content_size
    if labels.shape != (h, w):
        raise ConfigError(
            f"the mask is {labels.shape[1]}x{labels.shape[0]} but the content image is "
            f"{w}x{h}; they must be the same size"
        )
    out = []
    for label, imgs in sorted(region_styles.items()):
        pixels = labels == label
        if not pixels.any():
            raise ConfigError(f"the mask has no pixels with label {label}")
        out.append(Region(label, pixels, [load_image(i, "region style") for i in as_list(imgs)]))
    return out


def label_array(mask: ImageInput) -> np.ndarray:
    """Region labels: palette indices, or gray values, of the mask image (h, w) int64."""
    if isinstance(mask, Image.Image):
        img = mask
    else:
        path = Path(mask)
        load_image(path, "mask")  # validates: exists, decodes, size limit
        try:
            img = Image.open(path)
            img.load()
        except OSError as e:
            raise ImageError(f"mask '{path}' cannot be read ({e})") from None
    img = ImageOps.exif_transpose(img) or img
    if img.mode not in ("P", "L", "1", "I", "I;16"):
        img = img.convert("L")
    return np.asarray(img).astype(np.int64)


def _resize_mask(region: np.ndarray, h: int, w: int) -> np.ndarray:
    img = Image.fromarray(region.astype(np.uint8) * 255).resize((w, h), Image.Resampling.NEAREST)
    return np.asarray(img) > 127


def _mask_tensor(region: np.ndarray, device: torch.device) -> Tensor:
    return torch.from_numpy(region.astype(np.float32))[None, None].to(device)
