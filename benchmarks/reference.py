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
import statistics
import time
from collections.abc import Callable

import torch

from common import CACHE, FixedObjective, machine, save_json


def classic_lbfgs(
    obj: FixedObjective, evaluations: int, before_eval: Callable[[torch.Tensor, int], None]
) -> tuple[torch.Tensor, list[float], list[float]]:
    """The classic recipe: L-BFGS from the content image, one evaluation per iteration.

    Calls ``before_eval(x, done)`` (``done`` = evaluations so far) before each
    evaluation, without counting its time. Returns the final image, the objective
    after each evaluation and the seconds spent so far after each evaluation.
    """
    x = obj.content.clone().requires_grad_(True)
    opt = torch.optim.LBFGS(
        [x],
        lr=1.0,
        max_iter=evaluations,
        max_eval=evaluations,
        history_size=100,
        tolerance_grad=-1,
        tolerance_change=-1,
    )
    curve: list[float] = []
    stamps: list[float] = []
    start = time.perf_counter()
    spent = 0.0

    def closure() -> torch.Tensor:
        nonlocal spent
        t = time.perf_counter()
        before_eval(x, len(curve))
        spent += time.perf_counter() - t
        opt.zero_grad()
        loss = obj.loss(x)
        loss.backward()
        curve.append(loss.item())
        stamps.append(time.perf_counter() - start - spent)
        return loss

    opt.step(closure)
    return x, curve, stamps


def seconds_per_iteration(obj: FixedObjective, evaluations: int = 6) -> float:
    """Median seconds of one classic iteration here, without checkpoints (the first
    evaluation, which warms the allocator, is left out)."""
    _, _, stamps = classic_lbfgs(obj, evaluations, lambda x, done: None)
    return statistics.median(b - a for a, b in zip(stamps[1:], stamps[2:], strict=False))


def run(size: int, iterations: int) -> dict:
    obj = FixedObjective(size)
    clipped: list[tuple[int, float]] = []

    def checkpoint(x: torch.Tensor, done: int) -> None:
        # What the user would get at this point: the clipped 8-bit image.
        if done % 5 == 0:
            clipped.append((done, obj.value(x)))

    x, curve, stamps = classic_lbfgs(obj, iterations, checkpoint)
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
