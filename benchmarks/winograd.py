"""Would Winograd convolutions pay on a CPU without bf16? One layer at a time.

On an AVX2-only CPU (no AVX-512, so no bf16 path) brushwork runs VGG-16 in fp32 through
oneDNN's direct convolution, near the cores' FMA peak. Winograd's F(m×m, 3×3) does a
3×3 convolution with (m + 2)²/m² multiplies per output instead of 9 (F(2,3): 2.25×
fewer, F(4,3): 4× fewer), at the price of transforming every tile in and out. This
times forward plus input-gradient (the frozen weights need none) of each VGG-16 layer
shape at a 512×341 input: oneDNN's conv2d (NCHW and channels-last) against F(2,3) and
F(4,3) written in plain PyTorch ops (tile unfold, Kronecker transforms as GEMMs,
16 or 36 batched GEMMs), and prints the ratios and the error against conv2d.

    python benchmarks/winograd.py

A measurement, not a product path: brushwork does not use it (RESULTS.md says why).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from child import cpu_info

# Lavin & Gray (2016): Y = Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A, for PyTorch's cross-correlation.
MATRICES = {
    2: (
        [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]],
        [[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]],
        [[1, 1, 1, 0], [0, 1, -1, -1]],
    ),
    4: (
        [
            [4, 0, -5, 0, 1, 0],
            [0, -4, -4, 1, 1, 0],
            [0, 4, -4, -1, 1, 0],
            [0, -2, -1, 2, 1, 0],
            [0, 2, -1, -2, 1, 0],
            [0, 4, 0, -5, 0, 1],
        ],
        [
            [1 / 4, 0, 0],
            [-1 / 6, -1 / 6, -1 / 6],
            [-1 / 6, 1 / 6, -1 / 6],
            [1 / 24, 1 / 12, 1 / 6],
            [1 / 24, -1 / 12, 1 / 6],
            [0, 0, 1],
        ],
        [[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]],
    ),
}


def winograd(weight: Tensor, bias: Tensor, m: int) -> Callable[[Tensor], Tensor]:
    """conv2d(x, weight, bias, padding=1) as Winograd F(m×m, 3×3); x: (n, c, h, w)."""
    bt, g, at = (torch.tensor(a, dtype=torch.float64) for a in MATRICES[m])
    bk, ak = torch.kron(bt, bt).float(), torch.kron(at, at).float()
    k, c = weight.shape[:2]
    # U: the filters in the transformed domain, (a², k, c), once.
    u = (torch.kron(g, g) @ weight.double().reshape(k * c, 9).T).reshape(-1, k, c).float()
    a = m + 2

    def conv(x: Tensor) -> Tensor:
        n, _, h, w = x.shape
        th, tw = -(-h // m), -(-w // m)
        xp = F.pad(x, (1, tw * m - w + 1, 1, th * m - h + 1))
        tiles = xp.unfold(2, a, m).unfold(3, a, m)  # n c th tw a a
        d = tiles.permute(1, 0, 2, 3, 4, 5).reshape(c * n * th * tw, a * a)
        v = (bk @ d.T).view(a * a, c, n * th * tw)
        y = (ak @ torch.bmm(u, v).view(a * a, k * n * th * tw)).view(m, m, k, n, th, tw)
        y = y.permute(3, 2, 4, 0, 5, 1).reshape(n, k, th * m, tw * m)[:, :, :h, :w]
        return y + bias.view(1, k, 1, 1)

    return conv


def conv3x3(x: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
    return F.conv2d(x, weight, bias, padding=1)


def seconds(fn: Callable[[Tensor], Tensor], x: Tensor, reps: int = 3) -> float:
    """Best of ``reps`` forward + input-gradient passes, after one warm-up."""
    fn(x).sum().backward()
    best = float("inf")
    for _ in range(reps):
        x.grad = None
        t = time.perf_counter()
        y = fn(x)
        y.backward(torch.ones_like(y))
        best = min(best, time.perf_counter() - t)
    return best


def main() -> int:
    print(cpu_info(), f"torch {torch.__version__}, {torch.get_num_threads()} threads", flush=True)
    torch.manual_seed(0)
    h, w = 341, 512
    shapes = [
        ("conv1_2", 64, 64, 1),
        ("conv2_2", 128, 128, 2),
        ("conv3_2", 256, 256, 4),
        ("conv4_2", 512, 512, 8),
        ("conv5_1", 512, 512, 16),
    ]
    print("| layer | input | conv2d ms | channels-last ms | F(2,3) ms | F(4,3) ms | F(4,3) err |")
    print("|---|---|---|---|---|---|---|")
    for name, c, k, stride in shapes:
        weight, bias = torch.randn(k, c, 3, 3) * 0.05, torch.randn(k)
        x = torch.randn(1, c, h // stride, w // stride, requires_grad=True)
        direct = seconds(functools.partial(conv3x3, weight=weight, bias=bias), x)
        xcl = x.detach().contiguous(memory_format=torch.channels_last).requires_grad_(True)
        wcl = weight.contiguous(memory_format=torch.channels_last)
        cl = seconds(functools.partial(conv3x3, weight=wcl, bias=bias), xcl)
        cells = []
        for m in (2, 4):
            t = seconds(winograd(weight, bias, m), x)
            cells.append(f"{t * 1e3:.0f} ({direct / t:.2f}×)")
        with torch.no_grad():
            ref = F.conv2d(x, weight, bias, padding=1)
            err = float((winograd(weight, bias, 4)(x) - ref).abs().max() / ref.abs().max())
        print(
            f"| {name} | {c}×{x.shape[2]}×{x.shape[3]} | {direct * 1e3:.0f} | {cl * 1e3:.0f} | "
            f"{cells[0]} | {cells[1]} | {err:.1e} |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
