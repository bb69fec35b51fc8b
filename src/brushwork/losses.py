"""Losses of Gatys et al. as the d2l chapter defines them.

Pure functions first, then thin modules that hold their targets in buffers.
All reductions happen in float32 even when the network runs in bf16/fp16:
Gram entries of deep layers overflow fp16 and lose the loss signal in bf16.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from brushwork.linalg import matrix_view


class _Gram(torch.autograd.Function):
    """G = X Xᵀ / (c·h·w) with a hand-written backward that keeps the layout.

    Backward: dX = (dG + dGᵀ) X / (c·h·w), one matmul in the layout X came in.
    """

    @staticmethod
    def forward(ctx: Any, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        ctx.in_dtype = x.dtype
        if x.dtype == torch.float16:
            # fp16 Gram entries overflow (sums of h*w products of activations in the
            # hundreds); bf16 has fp32's range and stays on the fast path.
            x = x.float()
        m, pixels_by_channels = matrix_view(x)
        n = c * h * w
        if pixels_by_channels:
            g = torch.bmm(m.transpose(1, 2), m)
        else:
            g = torch.bmm(m, m.transpose(1, 2))
        ctx.save_for_backward(x)
        ctx.n = n
        # The product ran in x's dtype (bf16 on the fast path) with fp32
        # accumulation inside the kernel; the Gram itself is returned in fp32.
        return g.to(torch.promote_types(g.dtype, torch.float32)) / n

    @staticmethod
    def backward(ctx: Any, grad_g: Tensor) -> Tensor:
        (x,) = ctx.saved_tensors
        b, c, h, w = x.shape
        m, pixels_by_channels = matrix_view(x)
        sym = ((grad_g + grad_g.transpose(1, 2)) / ctx.n).to(x.dtype)
        if pixels_by_channels:
            dm = torch.bmm(m, sym)  # (b, hw, c)
            return dm.reshape(b, h, w, c).permute(0, 3, 1, 2).to(ctx.in_dtype)
        dm = torch.bmm(sym, m)  # (b, c, hw)
        return dm.reshape(b, c, h, w).to(ctx.in_dtype)


def gram_matrix(x: Tensor) -> Tensor:
    """Gram matrix of features.

    Args:
        x: features, shape (b, c, h, w), any float dtype and memory layout.

    Returns:
        float32 (float64 for float64 input) tensor (b, c, c) with
        G[k, l] = Σ_p x[k, p]·x[l, p] / (c·h·w), the d2l chapter's normalization.
    """
    out: Tensor = _Gram.apply(x)  # type: ignore[no-untyped-call]
    return out


def content_loss(features: Tensor, target: Tensor) -> Tensor:
    """Content loss: mean((F - T)²) over all elements, computed in float32."""
    dtype = torch.promote_types(features.dtype, torch.float32)
    return F.mse_loss(features.to(dtype), target.to(dtype))


def style_loss(features: Tensor, target_gram: Tensor) -> Tensor:
    """Style loss: mean((gram(F) - G_target)²) over the c×c Gram entries."""
    return F.mse_loss(gram_matrix(features), target_gram)


def tv_loss(image: Tensor) -> Tensor:
    """Total variation: 0.5·(mean|x[i+1,j] − x[i,j]| + mean|x[i,j+1] − x[i,j]|).

    Args:
        image: (b, c, h, w). Means run over every element of each difference map.
    """
    dy = (image[:, :, 1:, :] - image[:, :, :-1, :]).abs().mean()
    dx = (image[:, :, :, 1:] - image[:, :, :, :-1]).abs().mean()
    return 0.5 * (dy + dx)


class ContentLoss(nn.Module):
    """Content loss against fixed target features held in a buffer."""

    target: Tensor

    def __init__(self, target: Tensor) -> None:
        super().__init__()
        self.register_buffer("target", target.detach().float())

    def forward(self, features: Tensor) -> Tensor:
        return content_loss(features, self.target)


class StyleLoss(nn.Module):
    """Gram style loss against a fixed target Gram matrix held in a buffer."""

    target: Tensor

    def __init__(self, target_gram: Tensor) -> None:
        super().__init__()
        self.register_buffer("target", target_gram.detach().float())

    @classmethod
    def from_features(cls, features: Tensor) -> StyleLoss:
        """Build the loss whose target is the Gram matrix of ``features``."""
        with torch.no_grad():
            return cls(gram_matrix(features))

    def forward(self, features: Tensor) -> Tensor:
        return style_loss(features, self.target)


class TVLoss(nn.Module):
    """Total-variation loss (no target)."""

    def forward(self, image: Tensor) -> Tensor:
        return tv_loss(image)
