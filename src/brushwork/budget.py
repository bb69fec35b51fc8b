"""The content budget: the default balance, corrected for the pair during the run.

The auto balance (:mod:`brushwork.balance`) makes every loss term relative to its own
target, yet one style weight still lands each pair at a different point of its
gap-against-content curve: autumn oak's fine leaf texture moves every photo's
relu4_2 features further than Starry Night does (issue 9's strength curves,
benchmarks/RESULTS.md). The budget fixes the *content distance* instead, the
quality metric's ‖relu4_2(x) − relu4_2(photo)‖ / ‖relu4_2(photo)‖
(:mod:`brushwork.quality`), and lets the style weight follow the pair.

How: up to three times, each time with one multiplication of the style weight.

1. **At the coarse scale** (the first of a pyramid whose budget stage comes later), after
   :func:`switch_iteration` of its iterations: the run carries the image to the budget
   stage's size as that stage would start from it, measures the content distance
   there, predicts where the budget stage would end at these weights (a line fitted
   over the 20 quality pairs, :data:`COARSE_SLOPE`, :data:`COARSE_OFFSET`) and corrects
   by :func:`coarse_correction`. Why so early: the same weight cut late buys less
   style per unit of content than from the start (rocket + autumn oak, RESULTS.md).
2. **At the budget stage**, the last of at most 1024 px (the last one, below print
   sizes; larger print scales keep the weights it ends with), after
   :func:`switch_iteration` of its iterations: it measures the content distance c,
   predicts where it will end (c − :func:`expected_fall`, since it keeps falling while
   the style holds, README "Quality"), and multiplies the style weight by
   :func:`correction`, the factor that moves the predicted end onto the budget at the
   measured elasticity of the content distance in the log of the style weight. This
   mends what the coarse prediction missed (its residual over the 20 pairs: 0.040).
3. **Once more at the budget stage**, after :func:`late_iteration` (seven tenths), the
   same measurement and :func:`correction` from where the second left the weight. The
   second look's prediction of 60 % of the stage ahead lands within about ±0.03; this
   one has 30 % left to predict. The 10 quality pairs that the range does not clamp
   then ended at 0.820-0.830 for a budget of 0.82 at 60 iterations per scale
   (0.809-0.853 without it) and at 0.817-0.836 at 30 (RESULTS.md, 2026-12-03).

The factors together stay within ⅓..3. Not a feedback loop at every iteration: every
change costs L-BFGS one curvature pair, and the stage's gap is mostly made by its
first half (within 0.01 of its end by iteration 15 of 30).

The constants were measured on the CPU's 30 iterations per scale (2026-12-02); the
fall after the switch was measured on stages of 20 to 90 iterations (2026-12-03,
:data:`FALL_POWER`). The coarse prediction was fitted at 30 iterations per scale
only; the budget stage's correction mends its error at other counts. CUDA's
300-iteration default was not measured with it and runs without it
(:data:`AUTO_CONTENT_BUDGET`).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

#: The default budget on the CPU: the content distance the last stage aims to end at.
#: 0.82 keeps the subject of every quality photo recognizable (astronaut + autumn oak at
#: 0.836 keeps face and flag; README "Quality"); issue 9's mark is 0.85, and the
#: budget stage's two looks land within about +0.015 of the budget. A budget of 0.83
#: gained 0.003-0.007 of gap and landed at 0.828-0.844 (2026-12-03): too near the
#: mark for pairs nobody has measured.
CPU_CONTENT_BUDGET = 0.82
#: Budget by device type when none is given (0 = off); any other type: the CPU's.
AUTO_CONTENT_BUDGET: dict[str, float] = {"cuda": 0.0}
#: The layer the distance is measured on: the quality metric's content layer.
BUDGET_LAYER = "relu4_2"

#: The correction comes after this fraction of the last stage's iterations: by then the
#: stage's gap has mostly been made and the content distance falls smoothly.
SWITCH_FRACTION = 0.4
#: After the switch the content distance keeps falling along its stage's trajectory,
#: c(t) ≈ a + b·t^(−FALL_POWER) (t the stage's iteration), so the fall from iteration k
#: to the stage's end N is b·(k^(−p) − N^(−p)). Measured 2026-12-03 (Intel Xeon with AMX,
#: bf16, benchmarks/budget_fall.py, no budget): the trajectory of a stage hardly depends
#: on how long the stage is, so a switch at 24 of 60 sits where a 30-iteration stage's
#: iteration 24 sits and has less fall left than a switch at 12 of 30 (0.068-0.085 on
#: four pairs, against 0.093-0.102). An earlier fit in the iterations left alone,
#: 0.16·(1 − 0.95^n), matched 30 iterations but predicted 0.135 at 60 and 0.150 at 90
#: (measured 0.052-0.074): longer runs then ended well over the budget. The power is
#: the least-squares fit over 16 falls (6 pairs; stages of 20, 30, 40, 60 and 90) with
#: b held to REFERENCE_FALL at 12 of 30, so 30-iteration runs correct as before: rms
#: error 0.011, at most 0.022 (0.018 at 90, 0.02 on the square at 8 of 20).
FALL_POWER = 0.35
#: The fall from iteration 12 to the end of a 30-iteration stage (fitted 2026-11-28 on
#: rainier + autumn oak; measured 0.093-0.102 on four pairs, 2026-12-03).
REFERENCE_FALL = 0.0964
REFERENCE_STAGE = (12, 30)

#: d(content distance) / d(ln style weight) when the weight changes at the switch:
#: ×0.5 and ×2 moved it by −0.062 / +0.062 on rainier + autumn oak and −0.063 / +0.062
#: on rainier + Starry Night.
ELASTICITY = 0.09
#: The correction's range: a third to three times the resolved style weight (the
#: strength curves' range, 0.3-3). A pair that cannot meet the budget inside it keeps
#: at least a third of its paint rather than turning into the photo with a tint.
MIN_CORRECTION, MAX_CORRECTION = 1.0 / 3.0, 3.0
#: A factor this close to 1 is no change: what the clamp leaves at the range's end once
#: floating point has multiplied the earlier factors (a change would cost L-BFGS a
#: curvature pair for nothing).
UNCHANGED = 1e-9


def content_distance(features: Tensor, target: Tensor) -> float:
    """‖features − target‖_F / ‖target‖_F, in fp32 (shapes (1, c, h, w))."""
    f, t = features.float(), target.float()
    return float(torch.linalg.vector_norm(f - t) / torch.linalg.vector_norm(t))


def switch_iteration(iterations: int) -> int:
    """The iteration of a stage of ``iterations`` after which the correction applies."""
    return max(1, round(SWITCH_FRACTION * iterations))


#: The budget stage looks a second time after this fraction of its iterations and mends
#: what the first correction's prediction missed (its landing spread about ±0.03). Late
#: enough that little fall is left to predict (0.027 from 42 to 60), early enough that a
#: change still moves the end: one at 42 of 60 moved it by 0.059-0.100 per unit of ln
#: weight, about the switch's ELASTICITY (RESULTS.md, "A third, late budget correction").
LATE_FRACTION = 0.7


def late_iteration(iterations: int) -> int | None:
    """The iteration of the budget stage's second look, or None when the stage is too
    short to have one between its switch and its end."""
    at = round(LATE_FRACTION * iterations)
    return at if switch_iteration(iterations) < at < iterations else None


def expected_fall(done: int, total: int) -> float:
    """How far the content distance is expected to fall from iteration ``done`` of a
    stage to its end at ``total``: b·(done^(−p) − total^(−p)), p = FALL_POWER, b set so
    that the fall from 12 to 30 is REFERENCE_FALL."""
    if total <= done:
        return 0.0
    k, n = REFERENCE_STAGE
    b = REFERENCE_FALL / (math.pow(k, -FALL_POWER) - math.pow(n, -FALL_POWER))
    return b * (math.pow(max(1, done), -FALL_POWER) - math.pow(total, -FALL_POWER))


def target_distance(budget: float, strength: float) -> float:
    """Where a run of ``strength`` aims: budget + ELASTICITY·ln(strength).

    ``--strength`` keeps its meaning under the budget: ×k on the style weight moves the
    content distance by ELASTICITY·ln(k), so the target moves by as much and the
    correction, pair by pair, is the same at every strength.
    """
    return budget + ELASTICITY * math.log(strength)


def correction(
    measured: float,
    budget: float,
    done: int,
    total: int,
    strength: float = 1.0,
    earlier: float = 1.0,
) -> float:
    """The style-weight factor that moves the predicted final distance onto the target,
    for a distance ``measured`` after iteration ``done`` of a stage of ``total``.

    factor = exp((target_distance(budget, strength) − (measured −
    expected_fall(done, total))) / ELASTICITY), clamped so that it times ``earlier`` (the
    coarse scale's factor, :func:`coarse_correction`) stays in [MIN_CORRECTION,
    MAX_CORRECTION].
    """
    predicted = measured - expected_fall(done, total)
    factor = math.exp((target_distance(budget, strength) - predicted) / ELASTICITY)
    return min(MAX_CORRECTION / earlier, max(MIN_CORRECTION / earlier, factor))


#: The coarse scale's look ahead. At the coarse scale's switch iteration the run takes
#: the image it has, carries it to the budget stage's size as that stage would start
#: from it (the photo's detail band added, engine.next_start), and measures the content
#: distance there. Why there and not at the coarse size: relu4_2 at 256 px misses what a
#: photo's fine detail does at 512 px (chelsea's fur distance rises by up to 0.10 from
#: the coarse scale to the fine one, rocket's falls by up to 0.16; benchmarks/
#: budget_coarse.py). COARSE_SLOPE and COARSE_OFFSET map that look-ahead distance to
#: where the budget stage would end at the same weights: a least-squares line over the
#: 20 quality pairs (look-aheads 0.74-1.56 measured 2026-12-02 with
#: ``benchmarks/budget_coarse.py --lookahead``; ends from the 2026-11-28 run without the
#: budget, RESULTS.md). Residual sd 0.040, 0.044 leaving each pair out in turn; the
#: coarse distance itself foretold the end with sd 0.064.
COARSE_SLOPE = 0.563
COARSE_OFFSET = 0.234
#: d(final content distance) / d(ln style weight) for a change at the coarse scale's
#: switch: nearly the whole run's, whose strength curves give 0.076-0.139, mean 0.111,
#: over the 20 quality pairs (RESULTS.md, 2026-11-28 strengths 0.3 and 3).
COARSE_ELASTICITY = 0.11


def coarse_correction(lookahead: float, budget: float, strength: float = 1.0) -> float:
    """The style-weight factor applied at the coarse scale's switch.

    predicted = COARSE_SLOPE·lookahead + COARSE_OFFSET, factor = exp((target_distance −
    predicted) / COARSE_ELASTICITY), clamped to [MIN_CORRECTION, MAX_CORRECTION]. Why a
    correction this early: cutting or raising the style once the fine scale has run 12
    of its 30 iterations buys less gap per unit of content than the same weight from
    the start (rocket + autumn oak, RESULTS.md); the budget stage's own correction then
    mends what this prediction missed.
    """
    predicted = COARSE_SLOPE * lookahead + COARSE_OFFSET
    factor = math.exp((target_distance(budget, strength) - predicted) / COARSE_ELASTICITY)
    return min(MAX_CORRECTION, max(MIN_CORRECTION, factor))
