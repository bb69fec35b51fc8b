"""The plan: what is refused before weights load, pyramid sizes, and the memory gate."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from brushwork.config import CPU_ITERATIONS, StyleConfig, print_iterations
from brushwork.devices import resolve_precision
from brushwork.errors import ConfigError, OutOfMemoryError
from brushwork.plan import (
    check_config,
    estimate_peak_bytes,
    largest_fitting_size,
    min_side,
    plan_run,
)

CPU = torch.device("cpu")


@pytest.mark.parametrize(
    ("cfg", "n_styles", "needle"),
    [
        (StyleConfig(style_layers=("conv6_1",)), 1, "unknown layer"),
        (StyleConfig(precision="fp16", device="cpu"), 1, "fp16 is for GPUs"),
        (StyleConfig(style_blend=(1.0, 2.0)), 3, "2 blend weights for 3 style images"),
        (StyleConfig(lr=float("inf")), 1, "lr must be a finite number"),
    ],
)
def test_check_config_refuses(cfg: StyleConfig, n_styles: int, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        check_config(cfg, n_styles=n_styles)


def test_min_side_follows_the_deepest_layer() -> None:
    spec = check_config(StyleConfig())
    assert min_side(StyleConfig(), spec) == 16  # conv5_1: four 2x2 poolings before it
    shallow = StyleConfig(style_layers=("conv1_1", "conv2_1"), content_layers=("conv2_2",))
    assert min_side(shallow, spec) == 2


def test_a_strip_too_thin_for_the_network_is_refused_with_what_works() -> None:
    with pytest.raises(ConfigError) as e:
        plan_run(StyleConfig(size=64), content_size=(4000, 10), device=CPU, dtype=torch.float32)
    msg = str(e.value)
    assert "short side would be 1 px" in msg and "use size 6400 or more" in msg
    # ...and the size it names does run.
    plan = plan_run(
        StyleConfig(size=6400, iterations=1), content_size=(4000, 10), device=CPU,
        dtype=torch.bfloat16, max_memory=10**12,
    )  # fmt: skip
    assert (plan.stages[-1].height, plan.stages[-1].width) == (16, 6400)


def test_pyramid_scales_too_small_for_the_network_are_dropped() -> None:
    cfg = StyleConfig(size=400, min_size=64, scales=3, iterations=2)
    plan = plan_run(cfg, content_size=(400, 40), device=CPU, dtype=torch.float32)
    # 3 scales 64..400 would step 2.5x; the pyramid gets a fourth (64, 118, 217,
    # 400: steps of 1.84x). 64x6 and 118x12 cannot pass four poolings; the rest can.
    assert [(s.width, s.height) for s in plan.stages] == [(217, 22), (400, 40)]


def test_memory_gate_names_the_estimate_and_the_largest_size_that_fits() -> None:
    cfg = StyleConfig(size=4096)
    budget = 3 * 10**9
    with pytest.raises(OutOfMemoryError) as e:
        plan_run(cfg, content_size=(2048, 1365), device=CPU, dtype=torch.bfloat16,
                 max_memory=budget)  # fmt: skip
    msg = str(e.value)
    its = print_iterations(CPU_ITERATIONS, 4096)  # the top scale's iterations (8 at 30)
    assert cfg.resolved_stages()[-1].iterations == its
    need = estimate_peak_bytes(2730, 4096, cfg, torch.bfloat16, CPU, its)
    assert f"needs about {need / 1e9:.1f} GB" in msg and "3.0 GB is available" in msg
    fits = largest_fitting_size(cfg, (2048, 1365), torch.bfloat16, CPU, budget)
    assert f"the largest size that fits is {fits} px" in msg
    # It is the largest: that size passes the gate and one pixel more does not.
    plan_run(StyleConfig(size=fits), content_size=(2048, 1365), device=CPU,
             dtype=torch.bfloat16, max_memory=budget)  # fmt: skip
    with pytest.raises(OutOfMemoryError):
        plan_run(StyleConfig(size=fits + 1), content_size=(2048, 1365), device=CPU,
                 dtype=torch.bfloat16, max_memory=budget)  # fmt: skip


def test_estimate_grows_with_pixels_precision_and_history() -> None:
    cfg = StyleConfig()
    small = estimate_peak_bytes(341, 512, cfg, torch.bfloat16, CPU)
    assert estimate_peak_bytes(682, 1024, cfg, torch.bfloat16, CPU) > 2.5 * small - 1e9
    assert estimate_peak_bytes(341, 512, cfg, torch.float32, CPU) > small
    short = StyleConfig(lbfgs_history=10)
    assert estimate_peak_bytes(341, 512, short, torch.bfloat16, CPU) < small


@pytest.mark.parametrize(
    "options",
    [
        {"size": 256, "iterations": 40, "lbfgs_history": 30},
        # The sliced loss's sorts add ~2.8 kB per pixel: at 512 px, uncounted, the
        # estimate was 0.95 GB for a 1.28 GB peak.
        {"size": 512, "iterations": 3, "style_loss": "sliced"},
    ],
    ids=["gram", "sliced"],
)
def test_estimate_covers_a_real_run_without_overshooting(
    rainier: Path, autumn_oak: Path, options: dict[str, object]
) -> None:
    """A real default run's peak RSS (its own process) is under the estimate, and the
    estimate is not wildly pessimistic (it would refuse sizes that fit)."""
    from brushwork.backbones import load_weights

    # The first use converts the weights from the ONNX file, a one-time cost that is
    # not the run's: have the cache written first (the child shares BRUSHWORK_HOME).
    load_weights("vgg16")
    child = (
        "import json, sys; from brushwork import stylize;"
        "img = stylize(sys.argv[1], sys.argv[2], **json.loads(sys.argv[3]));"
        # VmHWM, not ru_maxrss: Linux carries ru_maxrss over exec from the forking
        # parent, so it would report this test process's own size.
        "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0];"
        "print(json.dumps([img.height, img.width, int(hwm.split()[1]) * 1024]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", child, str(rainier), str(autumn_oak), json.dumps(options)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    h, w, rss = json.loads(out.stdout.strip().splitlines()[-1])
    cfg = StyleConfig(**options)  # type: ignore[arg-type]
    dtype = resolve_precision("auto", CPU)
    estimate = estimate_peak_bytes(h, w, cfg, dtype, CPU)
    assert rss <= estimate, (rss, estimate)
    assert estimate <= 2.0 * rss, (rss, estimate)
