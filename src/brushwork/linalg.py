"""Small matrix helpers shared by the losses and the colour code."""

from __future__ import annotations

import torch
from torch import Tensor


def matrix_view(x: Tensor) -> tuple[Tensor, bool]:
    """x (b, c, h, w) as a matrix without copying, and whether it is pixels × channels.

    For a channels-last tensor the free view is (b, h·w, c); for a contiguous one
    it is (b, c, h·w). Choosing the view that matches the memory layout is the
    point: the stock ``view + bmm`` Gram forces a channels-last tensor into NCHW
    and its backward returns the gradient in the other layout, which costs a copy
    per layer per iteration.
    """
    b, c, h, w = x.shape
    if c > 1 and x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
        return x.permute(0, 2, 3, 1).reshape(b, h * w, c), True
    return x.reshape(b, c, h * w), False


def sym_pow(a: Tensor, p: float) -> Tensor:
    """a^p for symmetric positive semidefinite a (…, n, n), by eigendecomposition.

    Roundoff can make eigenvalues of a PSD matrix slightly negative: they are
    taken as 0 for p >= 0, and as the dtype's smallest normal number for p < 0
    (so an inverse root stays finite). Meant for constants: the gradient of
    ``eigh`` is unstable for repeated eigenvalues.
    """
    a = 0.5 * (a + a.transpose(-1, -2))
    evals, evecs = torch.linalg.eigh(a)
    evals = evals.clamp_min(0.0 if p >= 0 else torch.finfo(a.dtype).tiny)
    return torch.matmul(evecs * evals.pow(p).unsqueeze(-2), evecs.transpose(-1, -2))
