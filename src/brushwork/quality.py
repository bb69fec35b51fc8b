"""How painted a result is, and how much of the photo it keeps: one metric for all.

The definition is fixed (issue "Paintings, not filters"), so that figures from
the CLI, the studio and the benchmarks agree:

* network: the default VGG-16, on post-ReLU layers (deliberately not the conv
  layers the default objective optimizes), fp32;
* style distance: the mean over relu1_1, relu2_1, relu3_1, relu4_1, relu5_1 of
  ‖G(x) − G(s)‖_F / ‖G(s)‖_F, with G = FFᵀ/(h·w) in fp32 and the style image
  resized, keeping its aspect ratio, to the output's area;
* style gap closed: 1 − d(result) / d(content photo at the output's size);
* content distance: ‖relu4_2(result) − relu4_2(content)‖ / ‖relu4_2(content)‖.

A second style figure, for comparing style losses fairly: the Gram distance
favours losses that match Gram matrices, so :class:`Quality` also carries the
gap closed in the features' means and covariances, per layer
√(‖μ(x) − μ(s)‖² + ‖Σ(x) − Σ(s)‖²_F) / √(‖μ(s)‖² + ‖Σ(s)‖²_F), averaged over the
same layers (Σ = FFᵀ/(h·w) − μμᵀ).
"""

from __future__ import annotations

import hashlib
import math
from collections import OrderedDict
from dataclasses import dataclass
from typing import NamedTuple

import torch
from PIL import Image
from torch import Tensor

from brushwork.backbones import VGGFeatures, build_backbone
from brushwork.pixels import resize, to_tensor

STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
CONTENT_LAYER = "relu4_2"
#: Paintings (at one output size each) whose statistics a meter keeps.
STYLE_CACHE = 8


@dataclass(frozen=True)
class Quality:
    """The metric of one result: higher ``gap_closed`` is more painted, higher
    ``content_distance`` is further from the photo."""

    gap_closed: float
    content_distance: float
    style_distance: float  # d(result)
    start_distance: float  # d(content photo)
    meancov_gap_closed: float  # the same gap in means and covariances (module docstring)


def gram(f: Tensor) -> Tensor:
    """G = F Fᵀ / (h·w) of features (1, c, h, w), fp32 (c, c)."""
    _, c, h, w = f.shape
    m = f.float().reshape(c, h * w)
    return m @ m.T / (h * w)


class _Stats(NamedTuple):
    """A layer's statistics the metric compares: G, and μ and Σ (fp32)."""

    gram: Tensor
    mean: Tensor
    cov: Tensor


def _stats(f: Tensor) -> _Stats:
    _, c, h, w = f.shape
    m = f.float().reshape(c, h * w)
    mean = m.mean(dim=1)
    # Σ from the centred features, not as G − μμᵀ: post-ReLU means are large next to
    # the spread in deep layers, and the difference would cancel away fp32 digits.
    centred = m - mean[:, None]
    return _Stats(gram(f), mean, centred @ centred.T / (h * w))


def _distance(x: _Stats, t: _Stats) -> tuple[float, float]:
    """(Gram distance, mean/covariance distance) of one layer, both relative to the target."""
    g = float(torch.linalg.norm(x.gram - t.gram) / torch.linalg.norm(t.gram))
    num = (x.mean - t.mean).pow(2).sum() + (x.cov - t.cov).pow(2).sum()
    den = t.mean.pow(2).sum() + t.cov.pow(2).sum()
    return g, float(torch.sqrt(num / den))


class QualityMeter:
    """Scores results with the fixed metric; holds the network between calls."""

    def __init__(self, device: torch.device | None = None) -> None:
        self.device = device or torch.device("cpu")
        net, _ = build_backbone("vgg16", layers=(*STYLE_LAYERS, CONTENT_LAYER))
        self.net: VGGFeatures = net.to(self.device)
        self._style: OrderedDict[tuple[str, int, int], list[_Stats]] = OrderedDict()

    def _features(self, img: Image.Image) -> dict[str, Tensor]:
        # cuDNN runs fp32 convolutions in TF32 by default (10-bit mantissa): the metric
        # is defined in fp32, and a score must not depend on the device it ran on.
        with (
            torch.no_grad(),
            torch.backends.cudnn.flags(enabled=torch.backends.cudnn.enabled, allow_tf32=False),
        ):
            out: dict[str, Tensor] = self.net(
                to_tensor(img, self.device), (*STYLE_LAYERS, CONTENT_LAYER)
            )
            return out

    def style_stats(self, style: Image.Image, h: int, w: int) -> list[_Stats]:
        """The style's statistics at the output's area, keeping the style's aspect ratio.

        Cached by the image's pixels, not its identity: an image freed and another
        allocated at the same address (``id``) once scored a pair against the
        previous painting's statistics.
        """
        digest = hashlib.blake2b(style.tobytes(), digest_size=16)
        digest.update(f"{style.mode}{style.size}".encode())
        key = (digest.hexdigest(), h, w)
        if key in self._style:
            self._style.move_to_end(key)
            return self._style[key]
        sw, sh = style.size
        f = math.sqrt(h * w / (sw * sh))
        feats = self._features(resize(style, max(16, round(sh * f)), max(16, round(sw * f))))
        stats = self._style[key] = [_stats(feats[n]) for n in STYLE_LAYERS]
        if len(self._style) > STYLE_CACHE:
            self._style.popitem(last=False)
        return stats

    def style_distances(
        self, feats: dict[str, Tensor], targets: list[_Stats]
    ) -> tuple[float, float]:
        """(Gram, mean/covariance) style distances, each the mean over the style layers."""
        d = [_distance(_stats(feats[n]), t) for n, t in zip(STYLE_LAYERS, targets, strict=True)]
        return sum(g for g, _ in d) / len(d), sum(m for _, m in d) / len(d)

    def score(self, result: Image.Image, content: Image.Image, style: Image.Image) -> Quality:
        """The metric of ``result``, painted from ``content`` in the style of ``style``."""
        w, h = result.size
        targets = self.style_stats(style, h, w)
        fr = self._features(result)
        fc = self._features(resize(content, h, w))
        start, start_mc = self.style_distances(fc, targets)
        d, d_mc = self.style_distances(fr, targets)
        ref = fc[CONTENT_LAYER].float()
        moved = float(torch.linalg.norm(fr[CONTENT_LAYER].float() - ref) / torch.linalg.norm(ref))
        return Quality(1.0 - d / start, moved, d, start, 1.0 - d_mc / start_mc)
