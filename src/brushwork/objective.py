"""The objective of one stage: weighted content, style and TV losses with fixed targets.

Targets are computed once per stage, without grad. Several style images are
combined by blending their *targets* (Gram matrices, or means and
covariances) with the normalized blend weights:
Σᵢ bᵢ‖G − Tᵢ‖² = ‖G − Σᵢ bᵢTᵢ‖² + const, so the gradient is the same as
weighting the per-style losses, at the cost of one loss per layer.
With a region mask (Gatys et al. 2017, spatial control) each region gets its
own targets, matched on the features inside the region: masked Gram matrices
normalized by the region's area, or the mean and covariance of the region's
pixels.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from brushwork.backbones import VGGFeatures
from brushwork.balance import LossWeights
from brushwork.losses import ContentLoss, StyleLoss, gram_matrix, tv_loss
from brushwork.meancov import MeanCovLoss, feature_mean_cov, mean_cov_loss
from brushwork.sliced import SlicedLoss, blended_quantiles, random_directions


class LossParts(NamedTuple):
    """Weighted loss terms, fp32 scalars: total = content + style + tv."""

    total: Tensor
    content: Tensor
    style: Tensor
    tv: Tensor


@dataclass(frozen=True)
class StyleSource:
    """Style images (normalized tensors) with blend weights, optionally confined to a region."""

    images: Sequence[Tensor]
    blend: Sequence[float]
    region: Tensor | None = None  # (1, 1, h, w) in {0, 1} at the output's size

    @property
    def share(self) -> float:
        """The region's share of the image: its style loss counts in this proportion."""
        return 1.0 if self.region is None else float(self.region.mean())


class MaskedStyleLoss(nn.Module):
    """Gram loss on features inside a region: G_r = (F∘m)(F∘m)ᵀ / (c·Σm)."""

    target: Tensor
    mask: Tensor

    def __init__(self, target_gram: Tensor, mask: Tensor) -> None:
        super().__init__()
        self.register_buffer("target", target_gram.detach().float())
        self.register_buffer("mask", mask)
        self.scale = float(mask.shape[-1] * mask.shape[-2]) / max(float(mask.sum()), 1.0)

    def forward(self, features: Tensor) -> Tensor:
        g = gram_matrix(features * self.mask.to(features.dtype)) * self.scale
        return F.mse_loss(g, self.target)


class MaskedMeanCovLoss(nn.Module):
    """Mean/covariance loss on the feature vectors of the pixels inside a region.

    features (1, c, h, w) -> the n region pixels as (1, c, n, 1) -> (μ, Σ) over them.
    """

    target_mean: Tensor
    target_cov: Tensor
    index: Tensor

    def __init__(self, target_mean: Tensor, target_cov: Tensor, mask: Tensor) -> None:
        super().__init__()
        self.register_buffer("target_mean", target_mean.detach().float())
        self.register_buffer("target_cov", target_cov.detach().float())
        self.register_buffer("index", mask.flatten().nonzero().squeeze(1))

    def forward(self, features: Tensor) -> Tensor:
        b, c = features.shape[:2]
        inside = features.reshape(b, c, -1).index_select(2, self.index).unsqueeze(3)
        return mean_cov_loss(inside, self.target_mean, self.target_cov)


def _blended(values: Sequence[Tensor], blend: Sequence[float]) -> Tensor:
    total = float(sum(blend))
    return sum((v * (b / total) for v, b in zip(values, blend, strict=True)), torch.zeros(()))


def style_losses(
    kind: str,
    features: Sequence[Tensor],
    blend: Sequence[float],
    mask: Tensor | None,
    generator: torch.Generator | None = None,
) -> nn.Module:
    """The loss of one style layer against the blend of several style images' features.

    ``mask``: (1, 1, h, w) at that layer's size, or None for the whole image.
    ``generator`` draws the directions of the sliced loss (c of them for c channels,
    as Heitz et al. use); the other kinds draw nothing.
    """
    if kind == "sliced":
        c = features[0].shape[1]
        directions = random_directions(c, c, generator or torch.Generator().manual_seed(0))
        return SlicedLoss(directions, blended_quantiles(features, directions, blend), mask)
    if kind == "meancov":
        stats = [feature_mean_cov(f) for f in features]
        mean = _blended([m for m, _ in stats], blend)
        cov = _blended([c for _, c in stats], blend)
        return MeanCovLoss(mean, cov) if mask is None else MaskedMeanCovLoss(mean, cov, mask)
    target = _blended([gram_matrix(f) for f in features], blend)
    return StyleLoss(target) if mask is None else MaskedStyleLoss(target, mask)


class Scaled(nn.Module):
    """A loss times a fixed factor (crowsonkb's ``Scale``)."""

    def __init__(self, loss: nn.Module, factor: float) -> None:
        super().__init__()
        self.loss, self.factor = loss, factor

    def forward(self, features: Tensor) -> Tensor:
        out: Tensor = self.loss(features) * self.factor
        return out


def relative(loss: nn.Module, like: Tensor) -> nn.Module:
    """``loss`` divided by its value at zero features: the energy of its target.

    For the Gram MSE that is mean(T²), for the content MSE mean(F_c²), for the
    mean/covariance loss mean(μ_t²) + mean(Σ_t²): each term then measures its
    error relative to its own target, whatever the layer's or the network's
    feature scale and whatever the painting, so one set of weights means the
    same balance on every pair (the quality metric is relative too).
    """
    with torch.no_grad():
        energy = float(loss(torch.zeros_like(like)))
    return Scaled(loss, 1.0 / energy) if energy > 0 else loss


@dataclass(frozen=True)
class Terms:
    """What one stage's objective measures; the untiled and the tiled objective share it.

    ``content``: the normalized content image (1, 3, h, w), or None (texture).
    ``prepare`` maps the normalized composite image to what the network sees (the
    colour mode's ``network_view``); targets pass through it too. With
    ``relative_losses``, every content and style term is divided by its target's
    energy (:func:`relative`); without, the terms are the book's raw MSEs.
    ``generator`` draws the sliced loss's directions and the tiled grid's shifts
    (a seeded run repeats).
    """

    content: Tensor | None
    styles: Sequence[StyleSource]
    content_layers: Sequence[str]
    style_layers: Sequence[str]
    style_layer_weights: Sequence[float]
    loss_weights: LossWeights
    style_loss: str
    prepare: Callable[[Tensor], Tensor]
    channels_last: bool
    relative_losses: bool = False
    generator: torch.Generator | None = None

    @property
    def uses_content(self) -> bool:
        return self.content is not None and self.loss_weights.content != 0


class Objective:
    """Σ content + Σ style + TV, each weighted, for one stage (see :class:`Terms`)."""

    def __init__(self, net: VGGFeatures, terms: Terms) -> None:
        t = terms
        content, loss_weights, relative_losses = t.content, t.loss_weights, t.relative_losses
        self.net = net
        self.prepare = t.prepare
        self.channels_last = t.channels_last
        self.loss_weights = loss_weights
        use_content = t.uses_content
        self.content_layers = tuple(t.content_layers) if use_content else ()
        self.style_layers = tuple(t.style_layers)
        layer_weight = dict(zip(t.style_layers, t.style_layer_weights, strict=True))
        self.layers = tuple(dict.fromkeys(self.content_layers + self.style_layers))
        with torch.no_grad():
            self.content_losses: dict[str, nn.Module] = {}
            if use_content:
                assert content is not None
                cf = self.features(content, self.content_layers)
                self.content_losses = {
                    n: relative(ContentLoss(cf[n]), cf[n])
                    if relative_losses
                    else ContentLoss(cf[n])
                    for n in self.content_layers
                }
            self.style_losses: list[tuple[str, float, nn.Module]] = []
            for source in t.styles:
                per_image = [self.features(img, self.style_layers) for img in source.images]
                for name in self.style_layers:
                    mask = None
                    if source.region is not None:
                        h, w = source.region.shape[-2:]
                        size = net.spec.feature_size(name, h, w)
                        mask = F.interpolate(source.region, size=size, mode="nearest")
                    feats = [f[name] for f in per_image]
                    loss = style_losses(t.style_loss, feats, source.blend, mask, t.generator)
                    if relative_losses:
                        like = feats[0]
                        if mask is not None:
                            like = like.new_zeros((1, like.shape[1], *mask.shape[-2:]))
                        loss = relative(loss, like)
                    self.style_losses.append((name, layer_weight[name] * source.share, loss))

    def features(self, x: Tensor, layers: Sequence[str]) -> dict[str, Tensor]:
        """Run the backbone on the normalized image x (b, 3, h, w)."""
        x = self.prepare(x)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        feats: dict[str, Tensor] = self.net(x, layers)
        return feats

    def __call__(self, x: Tensor) -> LossParts:
        """The weighted losses of the normalized image x, fp32."""
        feats = self.features(x, self.layers)
        zero = x.new_zeros((), dtype=torch.float32)
        c = sum((m(feats[n]) for n, m in self.content_losses.items()), zero)
        s = sum((wt * m(feats[n]) for n, wt, m in self.style_losses), zero)
        t = tv_loss(x)
        w = self.loss_weights
        c, s, t = c * w.content, s * w.style, t * w.tv
        return LossParts(c + s + t, c, s, t)
