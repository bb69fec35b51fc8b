"""The objective of one stage: weighted content, style and TV losses with fixed targets.

Targets are computed once per stage, without grad. Several style images are
combined by blending their *targets* (Gram matrices, or means and
covariances) with the normalized blend weights:
Σᵢ bᵢ‖G − Tᵢ‖² = ‖G − Σᵢ bᵢTᵢ‖² + const, so the gradient is the same as
weighting the per-style losses, at the cost of one loss per layer.
With a region mask (Gatys et al. 2017, spatial control) each region gets its
own targets, matched by Gram matrices of the masked features normalized by the
region's area.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from brushwork.backbones import VGGFeatures
from brushwork.losses import ContentLoss, StyleLoss, gram_matrix, tv_loss
from brushwork.meancov import MeanCovLoss, feature_mean_cov


@dataclass(frozen=True)
class StyleSource:
    """Style images (normalized tensors) with blend weights, optionally confined to a region."""

    images: Sequence[Tensor]
    weights: Sequence[float]
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


class Objective:
    """Σ content + Σ style + TV, each weighted, for one stage."""

    def __init__(
        self,
        net: VGGFeatures,
        *,
        content: Tensor | None,
        styles: Sequence[StyleSource],
        content_layers: Sequence[str],
        style_layers: Sequence[str],
        style_layer_weights: Sequence[float],
        weights: tuple[float, float, float],
        style_loss: str,
        prepare: Callable[[Tensor], Tensor],
        dtype: torch.dtype,
        channels_last: bool,
    ) -> None:
        self.net = net
        self.prepare = prepare
        self.dtype = dtype
        self.channels_last = channels_last
        self.cw, self.sw, self.tw = weights
        use_content = content is not None and self.cw != 0
        self.content_layers = tuple(content_layers) if use_content else ()
        self.style_layers = tuple(style_layers)
        self.layer_weights = dict(zip(style_layers, style_layer_weights, strict=True))
        self.layers = tuple(dict.fromkeys(self.content_layers + self.style_layers))
        with torch.no_grad():
            self.content_losses: dict[str, nn.Module] = {}
            if use_content:
                assert content is not None
                cf = self.features(content, self.content_layers)
                self.content_losses = {n: ContentLoss(cf[n]) for n in self.content_layers}
            self.style_losses: list[tuple[str, float, nn.Module]] = []
            for source in styles:
                self.style_losses += [
                    (name, self.layer_weights[name] * source.share, loss)
                    for name, loss in self._style_targets(source, style_loss)
                ]

    def features(self, x: Tensor, layers: Sequence[str]) -> dict[str, Tensor]:
        """Run the backbone on the normalized image x (b, 3, h, w)."""
        x = self.prepare(x)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        feats: dict[str, Tensor] = self.net(x, layers)
        return feats

    def _style_targets(self, source: StyleSource, kind: str) -> list[tuple[str, nn.Module]]:
        total = float(sum(source.weights))
        blend = [w / total for w in source.weights]
        per_image = [self.features(img, self.style_layers) for img in source.images]
        out: list[tuple[str, nn.Module]] = []
        for name in self.style_layers:
            feats = [f[name] for f in per_image]
            if kind == "meancov" and source.region is None:
                stats = [feature_mean_cov(f) for f in feats]
                mean = sum((b * m for b, (m, _) in zip(blend, stats, strict=True)), torch.zeros(()))
                cov = sum((b * c for b, (_, c) in zip(blend, stats, strict=True)), torch.zeros(()))
                out.append((name, MeanCovLoss(mean, cov)))
                continue
            target = sum(
                (b * gram_matrix(f) for b, f in zip(blend, feats, strict=True)), torch.zeros(())
            )
            if source.region is None:
                out.append((name, StyleLoss(target)))
            else:
                h, w = source.region.shape[-2:]
                mask = F.interpolate(
                    source.region, size=self.net.spec.feature_size(name, h, w), mode="nearest"
                )
                out.append((name, MaskedStyleLoss(target, mask)))
        return out

    def __call__(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """(total, content, style, tv) for the normalized image x, each weighted, fp32."""
        feats = self.features(x, self.layers)
        zero = x.new_zeros((), dtype=torch.float32)
        c = sum((m(feats[n]) for n, m in self.content_losses.items()), zero)
        s = sum((wt * m(feats[n]) for n, wt, m in self.style_losses), zero)
        t = tv_loss(x)
        c, s, t = c * self.cw, s * self.sw, t * self.tw
        return c + s + t, c, s, t
