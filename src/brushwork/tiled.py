"""The exact tiled objective: the untiled loss and gradient, in bounded memory.

Print sizes do not fit one autograd graph (2200 B/pixel of activations in bf16:
45 Mpx would need 100 GB). Tiled *stylization* (Neural-Tile) re-stylizes
tiles with their own Gram targets, so the style drifts from tile to tile and
seams show. Here the *objective* is tiled instead, and it is the same
objective as the untiled run, so nothing drifts and the optimizer is unchanged:

* Every loss term is a function of **additive statistics** of its layer's
  features: Σ FFᵀ (Gram), Σ F and Σ FFᵀ (mean/covariance), Σ (F − F_c)²
  (content). Summing a statistic over tile interiors gives the whole image's.
* **Pass 1**, without grad, walks the tiles and sums the statistics. Each tile
  is run with a halo as wide as the deepest layer's receptive field and its
  borders aligned to the network's pooling grid, so its interior features
  equal the untiled ones. The loss L(S) and dL/dS follow from the sums.
* **Pass 2** runs each tile again with grad and back-propagates the surrogate
  ⟨dL/dS, s_tile⟩ (dL/dS held fixed). Since S = Σ s_tile, the tile gradients
  sum to ∇L exactly (for the Gram loss this is the "(G − A) detached" term).
  The gradient of a whole halo box is added, halo included: interior features
  depend on pixels in the neighbours' interiors too.
* The tile grid moves every evaluation, as crowsonkb's style_transfer does,
  so no border stays put; with an exact objective this only moves
  floating-point rounding around. It moves between four layouts (shifted by
  0 or half a tile on each axis), not to any random offset: every distinct
  layout left memory behind (not free heap, only partly oneDNN's primitive
  cache; the rest is not pinned down), and with random
  offsets the peak grew by 1 GB over 24 iterations at 1024 px, with four it
  levels off after a few (benchmarks/RESULTS.md "Print").

TV is cheap on 3 channels and is computed on the whole image.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from brushwork.backbones import BackboneSpec, VGGFeatures
from brushwork.devices import release_free_memory
from brushwork.errors import ConfigError
from brushwork.losses import gram_matrix, tv_loss
from brushwork.objective import LossParts, StyleSource, Terms


@dataclass(frozen=True)
class Box:
    """A tile: its interior [y0, y1) × [x0, x1) and the halo box around it, in pixels."""

    y0: int
    y1: int
    x0: int
    x1: int
    hy0: int
    hy1: int
    hx0: int
    hx1: int

    def interior(self, factor: int) -> tuple[slice, slice]:
        """The interior's rows and columns in a feature map of the halo box at 1/factor."""
        return (
            slice((self.y0 - self.hy0) // factor, _ceil_div(self.y1 - self.hy0, factor)),
            slice((self.x0 - self.hx0) // factor, _ceil_div(self.x1 - self.hx0, factor)),
        )

    def in_full(self, factor: int) -> tuple[slice, slice]:
        """The interior's rows and columns in the whole image's feature map at 1/factor."""
        return (
            slice(self.y0 // factor, _ceil_div(self.y1, factor)),
            slice(self.x0 // factor, _ceil_div(self.x1, factor)),
        )


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def receptive_halo(spec: BackboneSpec, deepest: str) -> tuple[int, int]:
    """(halo, align) in pixels for features up to layer ``deepest``.

    ``align`` = 2^poolings before it: tile borders on multiples of it keep every
    pooling window of a tile where it is in the whole image. ``halo`` is the
    receptive field's radius rounded up to ``align``: interior features then see
    no tile-border padding. (VGG-16 conv5_1: field 132 px, halo 80 px.)
    """
    field, jump = 1, 1
    for name in spec.layer_names():
        if name.startswith("conv"):
            field += 2 * jump  # 3×3, stride 1
        elif name.startswith("pool"):
            field += jump  # 2×2, stride 2
            jump *= 2
        if name == deepest:
            break
    align = 2 ** spec.pools_before(deepest)
    radius = field // 2 + 1
    return _ceil_div(radius, align) * align, align


def tile_boxes(
    height: int, width: int, tile: int, halo: int, offset: tuple[int, int] = (0, 0)
) -> list[Box]:
    """Tiles of interior side ``tile`` covering an image, the grid shifted by ``offset``.

    Cuts fall on offset + k·tile; ``tile``, ``halo`` and the offsets are
    multiples of the pooling alignment, so every cut is too (the image's own
    end is the only other edge).
    """

    def cuts(n: int, off: int) -> list[int]:
        inner = [c for c in range(off % tile, n, tile) if 0 < c < n]
        return [0, *inner, n]

    boxes = []
    ys, xs = cuts(height, offset[0]), cuts(width, offset[1])
    for y0, y1 in zip(ys, ys[1:], strict=False):
        for x0, x1 in zip(xs, xs[1:], strict=False):
            boxes.append(
                Box(
                    y0,
                    y1,
                    x0,
                    x1,
                    max(0, y0 - halo),
                    min(height, y1 + halo),
                    max(0, x0 - halo),
                    min(width, x1 + halo),
                )
            )
    return boxes


# --- loss terms as functions of additive statistics ----------------------------


class Term:
    """One loss term on one layer, written as L(S) of additive statistics S."""

    layer: str

    def stats(self, f: Tensor, box: Box) -> list[Tensor]:
        """This tile's statistics from its interior features f (1, c, h, w), fp32 sums."""
        raise NotImplementedError

    def loss(self, totals: Sequence[Tensor]) -> Tensor:
        """The weighted loss from the whole image's summed statistics."""
        raise NotImplementedError


class ContentTerm(Term):
    """weight · Σ(F − F_c)² / (c·N): the content MSE, with F_c the whole target map."""

    def __init__(self, layer: str, target: Tensor, factor: int, weight: float) -> None:
        self.layer, self.target, self.factor, self.weight = layer, target, factor, weight
        self.n = target.numel()

    def stats(self, f: Tensor, box: Box) -> list[Tensor]:
        rows, cols = box.in_full(self.factor)
        return [(f.float() - self.target[:, :, rows, cols].float()).pow(2).sum()]

    def loss(self, totals: Sequence[Tensor]) -> Tensor:
        return self.weight * totals[0] / self.n


class GramTerm(Term):
    """weight · mean((Σ (F∘m)(F∘m)ᵀ / (c·Σm) − T)²): the (masked) Gram MSE."""

    def __init__(
        self, layer: str, target: Tensor, factor: int, weight: float, mask: Tensor | None, n: float
    ) -> None:
        self.layer, self.target, self.factor, self.weight = layer, target, factor, weight
        self.mask, self.n = mask, n  # n: pixels (or mask area) of the whole layer

    def stats(self, f: Tensor, box: Box) -> list[Tensor]:
        if self.mask is not None:
            rows, cols = box.in_full(self.factor)
            f = f * self.mask[:, :, rows, cols].to(f.dtype)
        b, c, h, w = f.shape
        if h * w == 0:  # a sliver past the last whole pooling cell: no features here
            return [f.new_zeros((b, c, c), dtype=torch.float32)]
        return [gram_matrix(f) * float(c * h * w)]  # Σ over the tile, fp32 (b, c, c)

    def loss(self, totals: Sequence[Tensor]) -> Tensor:
        c = self.target.shape[-1]
        return self.weight * F.mse_loss(totals[0] / (c * self.n), self.target)


class MeanCovTerm(Term):
    """weight · (mean((μ − μ_t)²) + mean((Σ − Σ_t)²)) of the (masked) features.

    Sums are taken around the target mean, S1 = Σ(F − μ_t), S2 = Σ(F − μ_t)(F − μ_t)ᵀ,
    so that Σ = S2/n − (S1/n)(S1/n)ᵀ does not cancel catastrophically as the raw
    E[FFᵀ] − μμᵀ does for features whose mean is large next to their spread.
    """

    def __init__(
        self,
        layer: str,
        mean: Tensor,
        cov: Tensor,
        factor: int,
        weight: float,
        mask: Tensor | None,
        n: float,
    ) -> None:
        self.layer, self.mean, self.cov, self.factor = layer, mean, cov, factor
        self.weight, self.mask, self.n = weight, mask, n

    def stats(self, f: Tensor, box: Box) -> list[Tensor]:
        b, c = f.shape[:2]
        d = f.float().reshape(b, c, -1) - self.mean[:, :, None]
        if self.mask is not None:
            rows, cols = box.in_full(self.factor)
            d = d * self.mask[:, :, rows, cols].reshape(1, 1, -1)
        return [d.sum(2), d @ d.transpose(1, 2)]

    def loss(self, totals: Sequence[Tensor]) -> Tensor:
        dm = totals[0] / self.n
        cov = totals[1] / self.n - dm[:, :, None] * dm[:, None, :]
        return self.weight * (dm.pow(2).mean() + (cov - self.cov).pow(2).mean())


# --- the objective ---------------------------------------------------------------


class TiledObjective:
    """The stage objective of :class:`~brushwork.objective.Objective`, tile by tile.

    ``__call__(x)`` returns the weighted losses (detached) and *writes the
    gradient into* ``x.grad`` itself: the optimizer must not call backward
    (:func:`brushwork.optimize.optimize` checks ``total.requires_grad``).
    The same :class:`~brushwork.objective.Terms` as the untiled objective, plus the
    interior tile side.
    """

    def __init__(self, net: VGGFeatures, terms: Terms, *, tile: int) -> None:
        t = terms
        if t.style_loss == "sliced":
            # plan_run refuses this first; a direct caller gets the same reason.
            raise ConfigError("the sliced style loss has no exact tiled form (sorting is global)")
        self.net, self.prepare, self.channels_last = net, t.prepare, t.channels_last
        self.loss_weights = loss_weights = t.loss_weights
        spec = net.spec
        names = spec.layer_names()
        c_layers = tuple(t.content_layers) if t.uses_content else ()
        self.layers = tuple(dict.fromkeys(c_layers + tuple(t.style_layers)))
        deepest = max(self.layers, key=names.index)
        self.halo, self.align = receptive_halo(spec, deepest)
        if tile % self.align:
            raise ValueError(f"tile {tile} is not a multiple of {self.align}")
        self.tile = tile
        self.generator = t.generator
        self.factors = {n: 2 ** spec.pools_before(n) for n in self.layers}
        self.terms: list[Term] = []
        layer_weight = dict(zip(t.style_layers, t.style_layer_weights, strict=True))
        if t.content is not None and c_layers:
            maps = self._feature_maps(t.content, c_layers)
            for n in c_layers:
                energy = float(maps[n].float().pow(2).mean()) if t.relative_losses else 1.0
                scale = 1.0 / energy if energy > 0 else 1.0
                self.terms.append(
                    ContentTerm(n, maps[n], self.factors[n], loss_weights.content * scale)
                )
        for source in t.styles:
            self._add_style_terms(
                source, tuple(t.style_layers), layer_weight, t.style_loss, t.relative_losses
            )

    # -- building --

    def _feature_maps(self, image: Tensor, layers: Sequence[str]) -> dict[str, Tensor]:
        """The whole image's feature maps at ``layers``, assembled from tile interiors."""
        h, w = image.shape[-2:]
        out: dict[str, Tensor] = {}
        with torch.no_grad():
            for box, feats in self._walk(image, layers, (0, 0)):
                for n in layers:
                    f = feats[n]
                    if n not in out:
                        fh, fw = self.net.spec.feature_size(n, h, w)
                        out[n] = f.new_empty((1, f.shape[1], fh, fw))
                    out[n][(slice(None), slice(None), *box.in_full(self.factors[n]))] = f
        return out

    def _add_style_terms(
        self,
        source: StyleSource,
        layers: tuple[str, ...],
        layer_weight: dict[str, float],
        kind: str,
        relative_losses: bool,
    ) -> None:
        total_blend = float(sum(source.blend))
        # Targets of a blend: each statistic (Gram, or mean and covariance) averaged
        # with the blend weights, as objective.style_losses does.
        targets: dict[str, list[Tensor]] = {}
        for img, b in zip(source.images, source.blend, strict=True):
            share = b / total_blend
            for n, stats in self._style_stats(img, layers, kind).items():
                blended = [share * t for t in stats]
                targets[n] = (
                    [a + t for a, t in zip(targets[n], blended, strict=True)]
                    if n in targets
                    else blended
                )
        h, w = None, None
        if source.region is not None:
            h, w = source.region.shape[-2:]
        for n in layers:
            mask = None
            if source.region is not None:
                assert h is not None and w is not None
                size = self.net.spec.feature_size(n, h, w)
                mask = F.interpolate(source.region, size=size, mode="nearest")
            weight = self.loss_weights.style * layer_weight[n] * source.share
            count = float(mask.sum()) if mask is not None else math.nan  # set per stage below
            # relative(): the loss at zero features is the targets' mean square.
            energy = sum(float(t.pow(2).mean()) for t in targets[n])
            scale = 1.0 / energy if relative_losses and energy > 0 else 1.0
            if kind == "meancov":
                mean, cov = targets[n]
                term: Term = MeanCovTerm(n, mean, cov, self.factors[n], weight * scale, mask, count)
            else:
                term = GramTerm(n, targets[n][0], self.factors[n], weight * scale, mask, count)
            self.terms.append(term)

    def _style_stats(
        self, image: Tensor, layers: Sequence[str], kind: str
    ) -> dict[str, list[Tensor]]:
        """A whole style image's target statistics per layer, tile by tile.

        ``kind`` "gram": [G] with G = FFᵀ/(c·n); "meancov": [μ, Σ], the sums
        taken around the first tile's mean (see :class:`MeanCovTerm`).
        """
        h, w = image.shape[-2:]
        sums: dict[str, list[Tensor]] = {}
        shift: dict[str, Tensor] = {}
        with torch.no_grad():
            for _, feats in self._walk(image, layers, (0, 0)):
                for n in layers:
                    f = feats[n].float()
                    flat = f.reshape(*f.shape[:2], -1)
                    if kind == "meancov":
                        if n not in shift:
                            shift[n] = flat.mean(2)
                        d = flat - shift[n][:, :, None]
                        parts = [d.sum(2), d @ d.transpose(1, 2)]
                    else:
                        parts = [flat @ flat.transpose(1, 2)]
                    sums[n] = (
                        [a + p for a, p in zip(sums[n], parts, strict=True)] if n in sums else parts
                    )
        out = {}
        for n in layers:
            fh, fw = self.net.spec.feature_size(n, h, w)
            count = fh * fw
            if kind == "meancov":
                s1, s2 = sums[n]
                dm = s1 / count
                out[n] = [shift[n] + dm, s2 / count - dm[:, :, None] * dm[:, None, :]]
            else:
                (raw,) = sums[n]
                out[n] = [raw / (raw.shape[-1] * count)]
        return out

    # -- running --

    def _walk(
        self, image: Tensor, layers: Sequence[str], offset: tuple[int, int]
    ) -> Iterator[tuple[Box, dict[str, Tensor]]]:
        """Each tile's box and its interior features at ``layers`` (grad as the caller's)."""
        h, w = image.shape[-2:]
        for box in tile_boxes(h, w, self.tile, self.halo, offset):
            feats = self._features(image[:, :, box.hy0 : box.hy1, box.hx0 : box.hx1], layers)
            yield box, {n: _crop(feats[n], box.interior(self.factors[n])) for n in layers}

    def _features(self, x: Tensor, layers: Sequence[str]) -> dict[str, Tensor]:
        x = self.prepare(x)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        feats: dict[str, Tensor] = self.net(x, layers)
        return feats

    def tiles(self, height: int, width: int) -> int:
        """How many tiles one pass over an image of this size walks (unshifted grid)."""
        return len(tile_boxes(height, width, self.tile, self.halo))

    def _offset(self) -> tuple[int, int]:
        """The grid's shift this evaluation: 0 or half a tile (in pooling cells) per axis."""
        half = self.tile // self.align // 2 * self.align
        r = torch.randint(0, 2, (2,), generator=self.generator)
        return int(r[0]) * half, int(r[1]) * half

    def _count(self, height: int, width: int) -> None:
        """Fill in each unmasked term's pixel count for this image size."""
        for t in self.terms:
            if isinstance(t, GramTerm | MeanCovTerm) and t.mask is None:
                fh, fw = self.net.spec.feature_size(t.layer, height, width)
                t.n = float(fh * fw)

    def __call__(self, x: Tensor) -> LossParts:
        """Weighted losses of x (detached, fp32); adds ∇ of the total to ``x.grad``."""
        h, w = x.shape[-2:]
        self._count(h, w)
        offset = self._offset()
        by_layer: dict[str, list[int]] = {}
        for i, t in enumerate(self.terms):
            by_layer.setdefault(t.layer, []).append(i)
        # Pass 1: the whole image's statistics, no graph.
        totals: list[list[Tensor] | None] = [None] * len(self.terms)
        with torch.no_grad():
            for box, feats in self._walk(x.detach(), self.layers, offset):
                for n, idx in by_layer.items():
                    for i in idx:
                        s = self.terms[i].stats(feats[n], box)
                        prev = totals[i]
                        totals[i] = (
                            s if prev is None else [a + b for a, b in zip(prev, s, strict=True)]
                        )
        # L(S) and dL/dS on the sums.
        leaves = [[s.detach().requires_grad_(True) for s in tot or []] for tot in totals]
        content = x.new_zeros((), dtype=torch.float32)
        style = x.new_zeros((), dtype=torch.float32)
        with torch.enable_grad():
            for term, sums in zip(self.terms, leaves, strict=True):
                value = term.loss(sums)
                if isinstance(term, ContentTerm):
                    content = content + value
                else:
                    style = style + value
            grads = torch.autograd.grad(
                content + style, [s for ss in leaves for s in ss], allow_unused=True
            )
        slopes: list[list[Tensor]] = []
        k = 0
        for ss in leaves:
            slopes.append(
                [
                    g if g is not None else torch.zeros_like(s)
                    for s, g in zip(ss, grads[k : k + len(ss)], strict=True)
                ]
            )
            k += len(ss)
        # Pass 2: each tile back-propagates ⟨dL/dS, s_tile⟩.
        if x.grad is None:
            x.grad = torch.zeros_like(x)
        for box in tile_boxes(h, w, self.tile, self.halo, offset):
            part = x.detach()[:, :, box.hy0 : box.hy1, box.hx0 : box.hx1].requires_grad_(True)
            feats = self._features(part, self.layers)
            surrogate = x.new_zeros((), dtype=torch.float32)
            for n, idx in by_layer.items():
                f = _crop(feats[n], box.interior(self.factors[n]))
                for i in idx:
                    for g, stat in zip(slopes[i], self.terms[i].stats(f, box), strict=True):
                        surrogate = surrogate + (g * stat).sum()
            (g_part,) = torch.autograd.grad(surrogate, part)
            x.grad[:, :, box.hy0 : box.hy1, box.hx0 : box.hx1] += g_part
        # TV on the whole image: 3 channels, cheap.
        with torch.enable_grad():
            xt = x.detach().requires_grad_(True)
            tv = tv_loss(xt) * self.loss_weights.tv
            (g_tv,) = torch.autograd.grad(tv, xt)
        x.grad += g_tv
        if x.device.type == "cpu":
            # Tile activations are freed between the optimizer's long-lived full-size
            # vectors; without this the heap keeps their pages (devices.release_free_memory).
            release_free_memory()
        c_val, s_val, t_val = content.detach(), style.detach(), tv.detach().float()
        return LossParts(c_val + s_val + t_val, c_val, s_val, t_val)


def _crop(f: Tensor, rows_cols: tuple[slice, slice]) -> Tensor:
    return f[:, :, rows_cols[0], rows_cols[1]]
