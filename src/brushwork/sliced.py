"""Sliced Wasserstein style loss (Heitz et al., CVPR 2021), an independent implementation.

The Gram matrix matches only second moments of a layer's features; the sliced
Wasserstein distance matches their whole distribution, one direction at a time.
A layer's c-channel features are projected on k unit directions; along each
direction the n projected values, sorted, are the empirical quantile function,
and the squared 1-D Wasserstein-2 distance between two such distributions is
the mean squared difference of their quantile functions:

    L = mean over k directions and n quantiles of (sort(Vᵀ F)_j − Q_t((j + ½)/n))²

where V (c, k) holds the directions and Q_t is the target's quantile function,
read off its m sorted projections by linear interpolation at the n quantile
levels (the target may have another pixel count than the image).

Where this departs from the paper: Heitz et al. draw new directions at every
Adam step, so that over the run every direction is matched. brushwork's
default optimizer is L-BFGS, whose curvature pairs assume one fixed objective,
so the directions are drawn once per stage (from the run's seeded generator:
a run is reproducible) and each pyramid scale draws new ones.

Several style images blend as their quantile functions do: the average of
quantile functions is the 1-D Wasserstein barycenter, so Σᵢ bᵢ Qᵢ is the
target that sits between the paintings in the metric the loss uses.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from brushwork.linalg import matrix_view


def random_directions(channels: int, count: int, generator: torch.Generator) -> Tensor:
    """``count`` directions drawn uniformly on the unit sphere of R^channels: (count, channels).

    Normalized Gaussian vectors are uniform on the sphere; drawn in float64 on
    the CPU so the same seed gives the same directions on every device.
    """
    v = torch.randn(count, channels, generator=generator, dtype=torch.float64)
    unit: Tensor = v / v.norm(dim=1, keepdim=True)
    return unit.float()


def sorted_projections(features: Tensor, directions: Tensor) -> Tensor:
    """The features' projections on each direction, sorted: (b, k, n).

    Args:
        features: (b, c, h, w), any float dtype and memory layout; n = h·w.
        directions: (k, c).

    The projection runs in float32 (float64 for float64 input): bf16 rounding
    of the projected values (~0.4 %) would bury the differences the loss is
    made of near its optimum.
    """
    dtype = torch.promote_types(features.dtype, torch.float32)
    m, pixels_by_channels = matrix_view(features)
    m, d = m.to(dtype), directions.to(device=m.device, dtype=dtype)
    # Multiply in the layout the features come in, so channels-last needs no copy.
    p = torch.matmul(m, d.T).transpose(1, 2) if pixels_by_channels else torch.matmul(d, m)
    return p.sort(dim=-1).values


def resample_quantiles(values: Tensor, n: int) -> Tensor:
    """Sorted values (b, k, m) as n quantiles: Q((j + ½)/n) for j < n, shape (b, k, n).

    Value i of m sorted samples is the quantile at level (i + ½)/m; between two
    levels Q is linear, beyond the outermost it is constant. This is exactly
    linear interpolation with ``align_corners=False``.
    """
    if values.shape[-1] == n:
        return values
    return F.interpolate(values, size=n, mode="linear", align_corners=False)


def sliced_wasserstein_loss(features: Tensor, directions: Tensor, target: Tensor) -> Tensor:
    """Mean squared difference of sorted projections and the target's quantiles.

    Args:
        features: (b, c, h, w).
        directions: (k, c) unit vectors.
        target: (1 or b, k, m) the style's sorted projections on the same directions.

    Returns:
        a float32 (float64 for float64 input) scalar: the mean over the k
        directions of the squared 1-D W2 distance between the projected
        distributions.
    """
    p = sorted_projections(features, directions)
    return F.mse_loss(p, resample_quantiles(target.to(p.dtype), p.shape[-1]).expand_as(p))


def blended_quantiles(
    features: Sequence[Tensor], directions: Tensor, blend: Sequence[float]
) -> Tensor:
    """Σᵢ bᵢ Qᵢ of several style images' features (the 1-D W2 barycenter): (1, k, m).

    Each image's quantiles are read at the levels of the largest one's pixel count.
    """
    sorted_ = [sorted_projections(f, directions) for f in features]
    m = max(s.shape[-1] for s in sorted_)
    total = float(sum(blend))
    out = torch.zeros_like(resample_quantiles(sorted_[0], m))
    for s, b in zip(sorted_, blend, strict=True):
        out = out + resample_quantiles(s, m) * (b / total)
    return out


class SlicedLoss(nn.Module):
    """Sliced Wasserstein loss against fixed target quantiles held in buffers.

    With ``mask`` (1, 1, h, w) in {0, 1} at the layer's size, only the feature
    vectors of the pixels inside the region are compared with the target.
    """

    directions: Tensor
    target: Tensor
    index: Tensor | None

    def __init__(self, directions: Tensor, target: Tensor, mask: Tensor | None = None) -> None:
        super().__init__()
        self.register_buffer("directions", directions.detach().float())
        self.register_buffer("target", target.detach().float())
        index = None if mask is None else mask.flatten().nonzero().squeeze(1)
        self.register_buffer("index", index)
        # The target read at the image's pixel count: the same every evaluation of a
        # stage, so resampled once, not in every forward.
        self._quantiles: Tensor | None = None

    def forward(self, features: Tensor) -> Tensor:
        if self.index is not None:
            b, c = features.shape[:2]
            features = features.reshape(b, c, -1).index_select(2, self.index).unsqueeze(3)
        n = features.shape[-2] * features.shape[-1]
        dtype = torch.promote_types(features.dtype, torch.float32)
        q = self._quantiles
        if q is None or q.shape[-1] != n or (q.dtype, q.device) != (dtype, features.device):
            # Read at n levels already, the target passes through the loss unresampled.
            q = self._quantiles = resample_quantiles(
                self.target.to(device=features.device, dtype=dtype), n
            )
        return sliced_wasserstein_loss(features, self.directions, q)
