"""The classic neural-style recipe, written plainly: fp32, NCHW, single scale, L-BFGS.

500 iterations from the content image on the fixed objective (benchmarks/common.py).
The quality mark is taken on what a user gets, the clipped 8-bit image (the unclipped
optimum lies partly outside the valid pixel range), evaluated every 5 iterations.
One L-BFGS iteration = one function evaluation here (lr 1, no line search, history
100: neural-style's defaults). Writes the objective after every iteration to
benchmarks/cache/reference-<size>.json; the suite reads that curve and re-times a few
iterations in its own run.

    python benchmarks/reference.py [--size 512] [--iterations 500]
"""

from __future__ import annotations

import argparse
import time

import torch

from common import CACHE, FixedObjective, machine, save_json


def run(size: int, iterations: int) -> dict:
    obj = FixedObjective(size)
    x = obj.content.clone().requires_grad_(True)
    opt = torch.optim.LBFGS(
        [x],
        lr=1.0,
        max_iter=iterations,
        max_eval=iterations,
        history_size=100,
        tolerance_grad=-1,
        tolerance_change=-1,
    )
    curve: list[float] = []
    clipped: list[tuple[int, float]] = []
    stamps: list[float] = []
    start = time.perf_counter()
    spent = 0.0

    def closure() -> torch.Tensor:
        nonlocal spent
        if len(curve) % 5 == 0:
            # What the user would get at this point: the clipped 8-bit image.
            t = time.perf_counter()
            clipped.append((len(curve), obj.value(x)))
            spent += time.perf_counter() - t
        opt.zero_grad()
        loss = obj.loss(x)
        loss.backward()
        curve.append(loss.item())
        stamps.append(time.perf_counter() - start - spent)
        return loss

    opt.step(closure)
    clipped.append((len(curve), obj.value(x)))
    return {
        "size": size,
        "iterations": iterations,
        "curve": curve,
        "seconds": stamps,
        "clipped": clipped,
        "final": clipped[-1][1],
        "final_unclipped": curve[-1],
        "machine": machine(),
    }


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--iterations", type=int, default=500)
    a = ap.parse_args()
    data = run(a.size, a.iterations)
    save_json(CACHE / f"reference-{a.size}.json", data)
    print(
        f"reference: {len(data['curve'])} evaluations, final objective {data['final']:.6g}, "
        f"{data['seconds'][-1]:.0f} s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
