"""The content budget: its formulas against direct arithmetic, and real runs that the
correction moves toward the budget (the real VGG-16, the d2l book's images)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from brushwork import Progress, stylize
from brushwork.budget import (
    COARSE_ELASTICITY,
    COARSE_OFFSET,
    COARSE_SLOPE,
    CPU_CONTENT_BUDGET,
    ELASTICITY,
    FALL_POWER,
    MAX_CORRECTION,
    MIN_CORRECTION,
    REFERENCE_FALL,
    coarse_correction,
    content_distance,
    correction,
    expected_fall,
    late_iteration,
    switch_iteration,
    target_distance,
)
from brushwork.config import StyleConfig
from brushwork.images import load_image
from brushwork.objective import Objective
from brushwork.quality import QualityMeter

# --- formulas ------------------------------------------------------------------------


def test_content_distance_is_the_relative_frobenius_norm() -> None:
    rng = np.random.default_rng(0)
    f, t = rng.normal(size=(1, 8, 5, 7)), rng.normal(size=(1, 8, 5, 7))
    direct = np.sqrt(((f - t) ** 2).sum()) / np.sqrt((t**2).sum())
    got = content_distance(torch.tensor(f, dtype=torch.bfloat16), torch.tensor(t))
    assert got == pytest.approx(direct, rel=1e-2)  # bf16 features, as the engine has them
    assert content_distance(torch.tensor(t), torch.tensor(t)) == 0.0


def test_switch_comes_after_two_fifths_of_the_stage() -> None:
    assert [switch_iteration(n) for n in (30, 20, 27, 300, 1)] == [12, 8, 11, 120, 1]


def test_the_late_look_comes_after_seven_tenths_between_the_switch_and_the_end() -> None:
    got = [late_iteration(n) for n in (60, 30, 20, 10, 3, 2, 1)]
    assert got == [42, 21, 14, 7, 2, None, None]


def test_expected_fall_is_the_power_law_through_the_reference_fall() -> None:
    """fall(k → N) = b·(k^-p − N^-p) with b set by the reference fall from 12 to 30."""
    p = FALL_POWER
    b = REFERENCE_FALL / (12**-p - 30**-p)
    assert expected_fall(12, 30) == pytest.approx(REFERENCE_FALL) == pytest.approx(0.0964)
    for k, n in ((24, 60), (36, 90), (8, 20), (1, 5)):
        assert expected_fall(k, n) == pytest.approx(b * (k**-p - n**-p), rel=1e-12)
    # The 2026-12-03 measurements it was fitted to (benchmarks/budget_fall.py, 512 px):
    # a switch at 24 of 60 has 0.068-0.085 left, at 36 of 90 0.052-0.074.
    assert 0.068 < expected_fall(24, 60) < 0.085 and 0.052 < expected_fall(36, 90) < 0.074
    # Later switches of the same stage have less left; a stage past its end has none.
    falls = [expected_fall(k, 60) for k in (6, 12, 24, 48, 59, 60)]
    assert falls == sorted(falls, reverse=True) and falls[-1] == 0.0
    assert expected_fall(30, 30) == expected_fall(40, 30) == 0.0


def test_correction_moves_the_predicted_end_onto_the_target() -> None:
    # Predicted end 0.979 - 0.0964 = 0.8826, 0.0626 over the budget: exp(-0.0626/0.09).
    got = correction(0.979, 0.82, 12, 30)
    assert got == pytest.approx(math.exp((0.82 - (0.979 - 0.0964)) / 0.09))
    assert got == pytest.approx(0.4989, abs=1e-3)
    # The same distance measured at 24 of 60 has less fall ahead: a deeper cut.
    assert correction(0.979, 0.82, 24, 60) == pytest.approx(
        math.exp((0.82 - (0.979 - expected_fall(24, 60))) / 0.09)
    )
    assert correction(0.979, 0.82, 24, 60) < got
    # On budget: no change. Far off: clamped to a third and to three times.
    on = 0.82 + expected_fall(12, 30)
    assert correction(on, 0.82, 12, 30) == pytest.approx(1.0)
    assert correction(2.0, 0.82, 12, 30) == MIN_CORRECTION == pytest.approx(1 / 3)
    assert correction(0.1, 0.82, 12, 30) == MAX_CORRECTION == 3.0


def test_the_last_scales_correction_keeps_the_whole_inside_the_range() -> None:
    """After a coarse factor f1 the last scale's factor f2 is clamped so that f1·f2 stays
    in [MIN_CORRECTION, MAX_CORRECTION]; unclamped, it is the same formula as before."""
    alone = correction(0.979, 0.82, 12, 30)
    assert correction(0.979, 0.82, 12, 30, earlier=0.8) == pytest.approx(alone)
    assert correction(2.0, 0.82, 12, 30, earlier=0.5) == pytest.approx((1 / 3) / 0.5)
    assert correction(0.1, 0.82, 12, 30, earlier=2.0) == pytest.approx(3.0 / 2.0)
    assert correction(0.1, 0.82, 12, 30, earlier=1 / 3) == pytest.approx(9.0)


def test_coarse_correction_is_the_linear_prediction_and_the_whole_run_elasticity() -> None:
    # Look-ahead 1.3194 (rocket + autumn oak, measured): predicted 0.563·1.3194 + 0.234 =
    # 0.977, 0.157 over the budget: exp(-0.157/0.11) = 0.24, clamped to a third.
    predicted = COARSE_SLOPE * 1.3194 + COARSE_OFFSET
    assert predicted == pytest.approx(0.9768, abs=1e-3)
    assert coarse_correction(1.3194, 0.82) == MIN_CORRECTION
    # Look-ahead 1.1794 (rainier + autumn oak): 0.8980 predicted, factor 0.492.
    direct = math.exp((0.82 - (0.563 * 1.1794 + 0.234)) / 0.11)
    assert coarse_correction(1.1794, 0.82) == pytest.approx(direct) == pytest.approx(0.492, 1e-2)
    # On budget, no change; strength k moves the factor by k, as at the last scale.
    on = (0.82 - COARSE_OFFSET) / COARSE_SLOPE
    assert coarse_correction(on, 0.82) == pytest.approx(1.0)
    assert coarse_correction(on, 0.82, strength=1.5) == pytest.approx(
        math.exp(ELASTICITY * math.log(1.5) / COARSE_ELASTICITY)
    )
    assert coarse_correction(0.0, 0.82) == MAX_CORRECTION


def test_strength_moves_the_target_by_the_elasticity() -> None:
    """×k on the strength aims ELASTICITY·ln(k) further from the photo, so the factor
    for a pair is the same at every strength: k times the strength-1 factor."""
    assert target_distance(0.82, 1.0) == 0.82
    assert target_distance(0.82, 2.0) == pytest.approx(0.82 + ELASTICITY * math.log(2))
    base = correction(0.95, 0.82, 12, 30)
    assert correction(0.95, 0.82, 12, 30, strength=1.5) == pytest.approx(1.5 * base)
    targets = [target_distance(0.82, s) for s in (0.1, 0.3, 1, 3, 10)]
    assert targets == sorted(targets)


def test_budget_is_the_cpus_default_and_off_on_cuda() -> None:
    assert StyleConfig().content_budget is None
    assert StyleConfig().for_device("cpu").content_budget == CPU_CONTENT_BUDGET == 0.82
    assert StyleConfig().for_device("cuda").content_budget == 0.0
    assert StyleConfig(content_budget=0.7).for_device("cuda").content_budget == 0.7


# --- real runs -----------------------------------------------------------------------

RUN = dict(size=128, iterations=20, scales=1)


def test_the_run_measures_the_metrics_distance_and_corrects_by_it(
    rainier: Path, autumn_oak: Path
) -> None:
    content, style = load_image(rainier), load_image(autumn_oak)
    records: list[Progress] = []
    img = stylize(content, style, callback=records.append, preview_every=1, **RUN)
    resolved = img.info["brushwork"]["resolved"]
    b = resolved["content_budget"]
    assert b["budget"] == 0.82 and b["at_iteration"] == switch_iteration(20) == 8
    # What the engine measured (bf16 features of the float image) is the quality
    # metric's content distance (fp32, the 8-bit image) of the image it measured.
    at_switch = next(r.image for r in records if r.iteration == 8 and r.image is not None)
    metric = QualityMeter().score(at_switch, content, style).content_distance
    assert b["measured"] == pytest.approx(metric, abs=0.01)
    # The correction is the formula's, and the recorded style weight is after it
    # (auto balance: style weight 1 x strength 1 before it).
    assert b["correction"] == pytest.approx(correction(b["measured"], 0.82, 8, 20), rel=1e-3)
    # The late look at 14 of 20 corrects again, from where the first factor left the
    # weight; the recorded weight is both factors' product.
    assert b["late_at_iteration"] == 14
    late = correction(b["late_measured"], 0.82, 14, 20, earlier=b["correction"])
    assert b["late_correction"] == pytest.approx(late, rel=1e-3)
    total = b["correction"] * b["late_correction"]
    assert resolved["style_weight"] == pytest.approx(total, rel=1e-3)
    # And it lands: measured 0.850 (Intel Xeon with AMX, bf16); with the first look
    # alone the same run ended at 0.912, since the 512 px fall model over-predicts
    # what falls at 128 px (RESULTS.md).
    final = QualityMeter().score(img, content, style).content_distance
    assert abs(final - 0.82) < 0.05, final


PYRAMID = dict(size=128, min_size=64, scales=2, iterations=10)


def test_the_coarse_scale_looks_ahead_to_the_last_scale_and_corrects_by_it(
    rainier: Path, autumn_oak: Path
) -> None:
    """On a pyramid the budget acts twice: at the coarse scale's switch it carries the
    image to the last scale's size as that scale would start (result plus the photo's
    detail band), measures the metric's content distance there, and corrects; the last
    scale then corrects what is left. The record holds both, and the weight is their
    product."""
    from brushwork.color import color_mode
    from brushwork.engine import next_start, recolor_to_styles
    from brushwork.pixels import normalize, resize, rgb01, rgb_image, rgb_tensor, to_tensor
    from brushwork.sources import config_style_inputs

    content, style = load_image(rainier), load_image(autumn_oak)
    records: list[Progress] = []
    img = stylize(content, style, callback=records.append, preview_every=1, **PYRAMID)
    record = img.info["brushwork"]
    b, resolved = record["resolved"]["content_budget"], record["resolved"]
    sizes = [(r["height"], r["width"]) for r in record["stages_run"]]
    assert sizes == [(43, 64), (85, 128)]
    assert b["coarse_at_iteration"] == switch_iteration(10) == 4
    assert b["coarse_correction"] == pytest.approx(
        coarse_correction(b["coarse_measured"], 0.82), rel=1e-3
    )
    # The whole correction is the product of the three, and stays in the range.
    assert b["late_at_iteration"] == 7
    total = b["coarse_correction"] * b["correction"] * b["late_correction"]
    assert resolved["style_weight"] == pytest.approx(total, rel=1e-3)
    assert MIN_CORRECTION * 0.999 <= total <= MAX_CORRECTION * 1.001  # factors kept to 4 places
    # The look-ahead, rebuilt from the image at the coarse switch and scored by the fp32
    # metric at the last scale's size, is what the engine measured.
    at = next(r.image for r in records if r.stage == 0 and r.stage_iteration == 4)
    assert at is not None
    cfg = StyleConfig(**PYRAMID)  # type: ignore[arg-type]
    inputs = config_style_inputs(cfg, style, content_size=content.size)
    cpu, none = torch.device("cpu"), color_mode("none")

    def base(h: int, w: int) -> torch.Tensor:
        rgb = rgb_tensor(resize(content, h, w), cpu)
        return normalize(recolor_to_styles(rgb, inputs.sources(h, w, rgb, none, cpu)))

    ahead = next_start(to_tensor(at, cpu), base_prev=base(43, 64), base=base(85, 128))
    ahead_img = rgb_image(rgb01(ahead))
    metric = QualityMeter().score(ahead_img, content, style).content_distance
    assert b["coarse_measured"] == pytest.approx(metric, abs=0.01)


def test_a_tighter_budget_keeps_more_of_the_photo_on_a_pyramid(
    rainier: Path, autumn_oak: Path
) -> None:
    content, style = load_image(rainier), load_image(autumn_oak)
    meter = QualityMeter()

    def run(**kw: float) -> tuple[float, dict[str, float] | None]:
        img = stylize(content, style, **PYRAMID, **kw)  # type: ignore[arg-type]
        budget = img.info["brushwork"]["resolved"]["content_budget"]
        return meter.score(img, content, style).content_distance, budget

    (off, _), (tight, tb), (loose, lb) = (
        run(content_budget=0),
        run(content_budget=0.5),
        run(content_budget=1.2),
    )
    assert tb is not None and lb is not None
    # A budget far under the pair's path cuts the style at the coarse scale already, and a
    # budget far over it raises it there.
    assert tb["coarse_correction"] < 0.5 and lb["coarse_correction"] > 2.0, (tb, lb)
    assert tight < off - 0.06 and loose > off + 0.05, (tight, off, loose)


def test_a_tighter_budget_keeps_more_of_the_photo(rainier: Path, autumn_oak: Path) -> None:
    content, style = load_image(rainier), load_image(autumn_oak)
    meter = QualityMeter()

    def moved(**kw: float) -> float:
        img = stylize(content, style, **RUN, **kw)  # type: ignore[arg-type]
        return meter.score(img, content, style).content_distance

    off, tight, loose = moved(content_budget=0), moved(content_budget=0.5), moved(content_budget=1)
    # Measured 0.879 (off), 0.757 (0.5: the style weight cut to a third), 0.985 (1.0: x3).
    assert tight < off - 0.06 and loose > off + 0.05, (tight, off, loose)


def test_users_weights_and_a_given_start_are_not_corrected(
    rainier: Path, autumn_oak: Path, tmp_path: Path
) -> None:
    kw = dict(size=48, iterations=6, scales=1)
    assert stylize(rainier, autumn_oak, **kw).info["brushwork"]["resolved"]["content_budget"]
    others = ({"style_loss": "sliced"}, {"optimizer": "adam"}, {"tile": 32})
    for extra in ({"style_weight": 2.0}, {"content_weight": 2.0}, {"balance": "book"}, *others):
        record = stylize(rainier, autumn_oak, **kw, **extra).info["brushwork"]  # type: ignore[arg-type]
        assert record["resolved"]["content_budget"] is None, extra
    assert stylize(rainier, autumn_oak, **kw, style_weight=2.0).info["brushwork"]["resolved"][
        "style_weight"
    ] == pytest.approx(2.0)
    # A start image (video's later frames) keeps the balance it was given.
    Image.open(rainier).convert("RGB").resize((48, 32)).save(tmp_path / "start.png")
    record = stylize(rainier, autumn_oak, **kw, start=tmp_path / "start.png").info["brushwork"]
    assert record["resolved"]["content_budget"] is None
    assert record["resolved"]["style_weight"] == pytest.approx(1.0)


def test_prints_correct_the_last_full_scale_and_carry_it_up() -> None:
    """A print climbs 256, 512, 1024, 2048: the budget corrects at 1024 (the last scale
    that runs full iterations) and 2048 keeps the weights it ends with."""
    from brushwork.config import FULL_ITERATIONS_SIZE
    from brushwork.engine import _budget_stage
    from brushwork.plan import plan_run

    cfg = StyleConfig(size=2048).for_device("cpu", (2048, 1365))
    plan = plan_run(cfg, content_size=(2048, 1365), device=torch.device("cpu"), dtype=torch.float32)
    sides = [max(st.height, st.width) for st in plan.stages]
    assert sides == [256, 512, 1024, 2048] and FULL_ITERATIONS_SIZE == 1024
    assert _budget_stage(plan) == 2
    one = StyleConfig(size=2048, scales=1).for_device("cpu", (2048, 1365))
    single = plan_run(
        one, content_size=(2048, 1365), device=torch.device("cpu"), dtype=torch.float32
    )
    assert _budget_stage(single) is None


def _small_objective(
    rainier: Path, autumn_oak: Path
) -> tuple[Objective, torch.Tensor, torch.Tensor]:
    """(objective at style weight 2 on a 43×64 rainier + autumn oak, a start far from the
    photo: the painting itself, the normalized photo)."""
    from brushwork.backbones import build_backbone
    from brushwork.balance import LossWeights
    from brushwork.objective import StyleSource, Terms
    from brushwork.pixels import normalize, resize, rgb_tensor

    cpu = torch.device("cpu")
    layers = ("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1")
    net, _ = build_backbone("vgg16", layers=("conv4_3", "relu4_2", *layers))
    photo = normalize(rgb_tensor(resize(load_image(rainier), 43, 64), cpu))
    style = normalize(rgb_tensor(resize(load_image(autumn_oak), 43, 64), cpu))
    terms = Terms(
        content=photo,
        styles=[StyleSource([style], [1.0])],
        content_layers=("conv4_3",),
        style_layers=layers,
        style_layer_weights=(1.0,) * 5,
        loss_weights=LossWeights(1.0, 2.0, 0.001),
        style_loss="gram",
        prepare=lambda t: t,
        channels_last=False,
        relative_losses=True,
    )
    return Objective(net, terms), style.clone(), photo


def test_a_look_that_leaves_the_weight_tells_the_optimizer_nothing_changed(
    rainier: Path, autumn_oak: Path
) -> None:
    """At the range's end a look's factor is 1: it is recorded, but the hook reports no
    change, so L-BFGS keeps the curvature pair a real change would cost."""
    from brushwork.engine import _budget_retune, _reference

    obj, x, photo = _small_objective(rainier, autumn_oak)
    for factor, changed, weight in ((1.0, False, 2.0), (0.5, True, 1.0)):
        log: dict[str, float] = {}
        ref = _reference(obj, photo)
        hook = _budget_retune(obj, x, ref, 3, lambda d, f=factor: f, log, iterations=10)
        assert hook is not None
        assert hook(2) is False and log == {}  # only at its own iteration
        assert hook(3) is changed
        assert obj.loss_weights.style == pytest.approx(weight)
        assert log["at_iteration"] == 3 and log["correction"] == factor
        assert log["measured"] > 0.3  # the painting's features are far from the photo's
    # No iteration left after it: no hook at all.
    assert _budget_retune(obj, x, ref, 10, lambda d: 0.5, {}, iterations=10) is None


def test_a_look_at_the_clamp_after_a_clamped_one_is_exactly_no_change(
    rainier: Path, autumn_oak: Path
) -> None:
    """The stage's looks read the factors so far from the style weight itself, unrounded:
    after a look clamped at ⅓, a second that wants less style still gets exactly 1 and
    reports no change. (Built from the record's 4-place factors, the second got
    (1/3) / 0.3333 = 1.0001 and cost L-BFGS a curvature pair, as the demo's did.)"""
    from brushwork.engine import _budget_retune, _reference, _stage_correction

    obj, x, photo = _small_objective(rainier, autumn_oak)
    ref = _reference(obj, photo)
    logs: list[dict[str, float]] = [{}, {}]
    hooks = [
        _budget_retune(
            obj,
            x,
            ref,
            at,
            lambda d, at=at: _stage_correction(0.82, at, 10, 1.0, obj, 2.0, d),
            log,
            iterations=10,
        )
        for at, log in zip((3, 6), logs, strict=True)
    ]
    assert hooks[0] is not None and hooks[1] is not None
    assert hooks[0](3) is True  # the painting is far from the photo: cut to the clamp
    assert logs[0]["correction"] == round(MIN_CORRECTION, 4)
    assert obj.loss_weights.style == 2.0 * MIN_CORRECTION
    assert hooks[1](6) is False
    assert logs[1]["correction"] == 1.0 and obj.loss_weights.style == 2.0 * MIN_CORRECTION
