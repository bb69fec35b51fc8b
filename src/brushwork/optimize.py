"""The optimization loop of one stage, for any objective and any image.

:func:`optimize` knows nothing of images, styles or networks: it takes a leaf
tensor, an objective that returns :class:`~brushwork.objective.LossParts` (with
a graph to back-propagate, or detached after writing ``x.grad`` itself), and
a :class:`Schedule`, and steps until the iterations are spent, the loss
settles (``tol``), the caller asks to stop, or the loss stops being finite.
The engine calls it once per pyramid scale; a tiled or a video driver can call
it with their own objective and image.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, NamedTuple

import torch
from torch import Tensor

from brushwork.objective import LossParts

Stop = Literal["cancelled", "nonfinite"]
FirstStep = Literal["polyak", "torch"]

#: Longest first L-BFGS step, as the RMS change of the normalized image: 0.1 is about
#: 6 of 255 levels (ImageNet's std ~0.225). Only binds where Polyak's step is long
#: (a start near a stationary point, where the gradient is small but the loss is not).
FIRST_STEP_MAX_RMS = 0.1


@dataclass(frozen=True)
class Schedule:
    """How one stage optimizes: the optimizer, its step sizes and when to stop."""

    optimizer: str  # "lbfgs" or "adam"
    iterations: int
    lr: float = 0.01  # Adam only; L-BFGS steps with lr 1
    lr_decay: float = 0.1
    lr_decay_every: int = 200
    lbfgs_history: int = 100
    first_step: FirstStep = "polyak"  # L-BFGS only: see LBFGS
    tol: float = 0.0
    tol_window: int = 20

    def lr_at(self, k: int) -> float:
        """The learning rate of 0-based iteration k (L-BFGS: always 1)."""
        if self.optimizer == "lbfgs":
            return 1.0
        return self.lr * self.lr_decay ** (k // self.lr_decay_every)


class Step(NamedTuple):
    """What one iteration reports: weighted losses at the image before the step."""

    iteration: int  # 1-based within the stage
    total: float
    content: float
    style: float
    tv: float
    lr: float
    converged: bool


@dataclass(frozen=True)
class Outcome:
    iterations: int  # iterations completed
    stopped: Stop | None
    converged: bool


class _Convergence:
    """Relative loss change over a window: |L[k-w] - L[k]| / |L[k-w]| < tol."""

    def __init__(self, tol: float, window: int) -> None:
        self.tol, self.window = tol, window
        self.history: list[float] = []

    def update(self, loss: float) -> bool:
        self.history.append(loss)
        if self.tol <= 0 or len(self.history) <= self.window:
            return False
        old = self.history[-1 - self.window]
        return abs(old - loss) <= self.tol * abs(old)


Values = tuple[float, float, float, float]


def _backward(parts: LossParts) -> None:
    # An objective too large for one graph (brushwork.tiled) writes x.grad
    # itself and returns detached losses.
    if parts.total.requires_grad:
        parts.total.backward()  # type: ignore[no-untyped-call]


def _hold_active_bounds(x: Tensor, grad: Tensor, bounds: tuple[Tensor, Tensor]) -> None:
    """Zero, in place, the gradient of pixels at a bound that it pushes further out.

    L-BFGS is not a projected method: fed the full gradient, it keeps pushing
    pixels at a bound outward, the clamp undoes the step, and its curvature
    pairs no longer describe the steps taken. From an image with many pixels at
    a bound (a video frame started from the warped painted frame before it) that
    made it diverge into noise within 20 iterations. With those pixels held (the
    reduced gradient of L-BFGS-B's active set) it converges, and runs that start
    from the photo are unchanged (docs/video.md).
    """
    lo, hi = bounds
    with torch.no_grad():
        # In bands of rows: at print sizes the boolean masks of the whole image
        # would be hundreds of MB.
        for xs, gs in zip(torch.split(x, 256, -2), torch.split(grad, 256, -2), strict=True):
            gs.masked_fill_(((xs <= lo) & (gs > 0)) | ((xs >= hi) & (gs < 0)), 0.0)


class LBFGS:
    """neural-style's L-BFGS on one tensor: lr 1, no line search, one evaluation per step.

    The arithmetic of ``torch.optim.LBFGS(lr=1, max_iter=1, tolerance_grad=-1,
    tolerance_change=-1)`` called once per iteration, op for op (a test checks the
    two agree on a real objective). Written out because constructing any
    ``torch.optim`` optimizer imports ``torch._dynamo``: 1.08 s of every process's
    fixed cost on this project's 2-core CPU (benchmarks/startup.py), for machinery
    L-BFGS never uses.

    With g the gradient, s_i and y_i the last m steps and gradient changes,
    ρ_i = 1/(y_iᵀs_i) and H0 = y_kᵀs_k / y_kᵀy_k, the step is x ← x + t·d with
    d = −H g from the two-loop recursion (Nocedal & Wright, Algorithm 7.4); the
    first step is −g scaled to t = min(1, 1/‖g‖₁). Pairs with yᵀs ≤ 1e-10 are
    not stored. A direction with gᵀd > 1 is not taken (torch's behaviour with
    tolerance_change = −1).

    One departure, ``first_step="polyak"`` (:class:`Schedule`'s default): the first step, which
    has no curvature to go by, is Polyak's t = f/‖g‖² for a loss whose floor is 0,
    at most :data:`FIRST_STEP_MAX_RMS` RMS per pixel. torch's t = 1/‖g‖₁ moves a
    512×341 image by about 2e-6 per pixel value: the loss stayed where it was for
    one iteration at the 256 px scale and two at 512 px (a curvature pair measured
    over so small a step, in bf16, is presumably mostly rounding). Polyak's step
    moved the image by 0.04 RMS at the 256 px scale and by the cap, 0.1, at 512 px
    (0.12 uncapped), and the loss fell from iteration 2 (benchmarks/RESULTS.md,
    "First step"). ``"torch"`` keeps torch's step: for a start that is already near
    its answer (video frames).
    """

    def __init__(self, x: Tensor, history: int, first_step: FirstStep) -> None:
        self.x, self.history, self.first_step = x, history, first_step
        self.dirs: list[Tensor] = []  # y_i
        self.steps: list[Tensor] = []  # s_i
        self.ro: list[Tensor] = []
        self.h_diag: Tensor | float = 1.0
        self.d: Tensor | None = None
        self.t = 1.0
        self.prev_grad: Tensor | None = None
        self.skip_pair = False

    def forget_pair(self) -> None:
        """The objective changed: do not pair the gradients on either side of the change.

        Their difference would mix two objectives' gradients, not measure curvature. The
        stored pairs stay: the change is one term's weight, the curvature mostly holds.
        """
        self.skip_pair = True

    def _first_length(self, g: Tensor, loss: float | None) -> float:
        if self.first_step == "polyak" and loss is not None and 0 < loss < math.inf:
            gg = float(g.dot(g))
            if gg > 0:
                return min(loss / gg, FIRST_STEP_MAX_RMS / math.sqrt(gg / g.numel()))
        return min(1.0, float(1.0 / g.abs().sum()))

    @torch.no_grad()
    def step(self, grad: Tensor, loss: float | None = None) -> None:
        """Move ``x`` in place, given its gradient (and loss) at the current point."""
        g = grad.reshape(-1).clone()  # torch.optim.LBFGS gathers a fresh flat copy too
        if self.d is None or self.prev_grad is None:
            d = g.neg()
            t = self._first_length(g, loss)
        else:
            y = g.sub(self.prev_grad)
            s = self.d.mul(self.t)
            ys = y.dot(s)
            if self.skip_pair:
                self.skip_pair = False
            elif ys > 1e-10:
                if len(self.dirs) == self.history:
                    self.dirs.pop(0)
                    self.steps.pop(0)
                    self.ro.pop(0)
                self.dirs.append(y)
                self.steps.append(s)
                self.ro.append(1.0 / ys)
                self.h_diag = ys / y.dot(y)
            q = g.neg()
            al: list[Tensor] = [q] * len(self.dirs)  # placeholders, all overwritten
            for i in range(len(self.dirs) - 1, -1, -1):
                al[i] = self.steps[i].dot(q) * self.ro[i]
                q.add_(self.dirs[i], alpha=float(-al[i]))
            d = r = torch.mul(q, self.h_diag)
            for i in range(len(self.dirs)):
                be_i = self.dirs[i].dot(r) * self.ro[i]
                r.add_(self.steps[i], alpha=float(al[i] - be_i))
            t = 1.0
        if self.prev_grad is None:
            self.prev_grad = g.clone()
        else:
            self.prev_grad.copy_(g)
        self.d, self.t = d, t
        if g.dot(d) > 1.0:
            return
        self.x.add_(d.view_as(self.x), alpha=t)


def _make_step(
    schedule: Schedule,
    x: Tensor,
    objective: Callable[[Tensor], LossParts],
    project: Callable[[], None],
    bounds: tuple[Tensor, Tensor] | None,
) -> tuple[Callable[[float], Values], Callable[[], None]]:
    """One optimizer iteration, which returns the weighted losses at the image before the
    step, and what to call when the objective changes between iterations."""
    if schedule.optimizer == "lbfgs":
        # neural-style's L-BFGS: lr 1, no line search, one evaluation per iteration.
        # (A strong-Wolfe search stalls on bf16's noisy loss; stopping is left to tol.)
        lbfgs = LBFGS(x, schedule.lbfgs_history, schedule.first_step)

        def lbfgs_step(lr: float) -> Values:
            x.grad = None
            parts = objective(x)
            _backward(parts)
            values: Values = tuple(v.item() for v in parts)  # type: ignore[assignment]
            grad = x.grad if x.grad is not None else torch.zeros_like(x)
            if bounds is not None:
                _hold_active_bounds(x, grad, bounds)
            lbfgs.step(grad, values[0])
            project()
            return values

        return lbfgs_step, lbfgs.forget_pair

    adam = torch.optim.Adam([x], lr=schedule.lr)

    def adam_step(lr: float) -> Values:
        for group in adam.param_groups:
            group["lr"] = lr
        adam.zero_grad(set_to_none=True)
        parts = objective(x)
        values: Values = tuple(v.item() for v in parts)  # type: ignore[assignment]
        if math.isfinite(values[0]):
            _backward(parts)
            adam.step()
            project()
        return values

    return adam_step, lambda: None  # Adam's moments adapt on their own


def optimize(
    x: Tensor,
    objective: Callable[[Tensor], LossParts],
    schedule: Schedule,
    *,
    bounds: tuple[Tensor, Tensor] | None = None,
    should_stop: Callable[[], bool] | None = None,
    on_step: Callable[[Step], None] | None = None,
    retune: Callable[[int], bool] | None = None,
) -> Outcome:
    """Minimize ``objective(x)`` over the leaf tensor ``x``, in place.

    Args:
        x: the image being optimized, a leaf with ``requires_grad``.
        bounds: (lo, hi) broadcastable to x: x is clamped into them after every
            step (projected gradient), or left free when None.
        should_stop: polled before every iteration; True ends the stage as
            "cancelled".
        on_step: called after every iteration with its :class:`Step`.
        retune: called after every iteration with its number (1-based); returns True
            when it changed the objective (a loss weight), so that the optimizer does
            not take the change for curvature.

    If a step makes the loss or the image non-finite, x is restored to the last
    image whose loss was finite and the outcome says "nonfinite".
    """

    def project() -> None:
        if bounds is not None:
            with torch.no_grad():
                torch.maximum(torch.minimum(x, bounds[1], out=x), bounds[0], out=x)

    step, changed = _make_step(schedule, x, objective, project, bounds)
    convergence = _Convergence(schedule.tol, schedule.tol_window)
    for k in range(schedule.iterations):
        if should_stop is not None and should_stop():
            return Outcome(k, "cancelled", False)
        lr = schedule.lr_at(k)
        before = x.detach().clone()
        values = step(lr)
        if not all(math.isfinite(v) for v in values) or not bool(torch.isfinite(x).all()):
            with torch.no_grad():
                x.copy_(before)
            return Outcome(k, "nonfinite", False)
        converged = convergence.update(values[0])
        if on_step is not None:
            on_step(Step(k + 1, *values, lr=lr, converged=converged))
        if retune is not None and retune(k + 1):
            changed()
        if converged:
            return Outcome(k + 1, None, True)
    return Outcome(schedule.iterations, None, False)
