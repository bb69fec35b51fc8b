"""Everything checked before a run loads weights or spends time: the plan.

:func:`check_config` needs only the config (the studio calls it when a job is
submitted); :func:`plan_run` adds the content's size: each stage's pixel size,
whether the network can see it, and whether its peak memory fits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from brushwork.backbones import BackboneSpec, check_layers, get_spec
from brushwork.config import MAX_SCALES, StyleConfig
from brushwork.devices import available_memory, resolve_device, resolve_precision
from brushwork.errors import ConfigError, OutOfMemoryError
from brushwork.pixels import fit_long_side


def check_config(cfg: StyleConfig, *, n_styles: int | None = None) -> BackboneSpec:
    """Validate ``cfg`` and what it asks of the backbone and the device.

    Raises :class:`ConfigError` for: any out-of-bounds value, an unknown layer,
    a precision the device lacks, a missing device, a blend weight count that
    is not the number of style images, a pyramid of too many scales.
    """
    cfg.validate()
    spec = get_spec(cfg.model)
    check_layers(spec, content_layers(cfg, spec) + cfg.style_layers)
    resolve_precision(cfg.precision, resolve_device(cfg.device))
    if n_styles is not None and cfg.style_blend is not None and len(cfg.style_blend) != n_styles:
        raise ConfigError(f"{len(cfg.style_blend)} blend weights for {n_styles} style images")
    n = len(cfg.resolved_stages())
    if n > MAX_SCALES:
        raise ConfigError(f"{n} pyramid scales; at most {MAX_SCALES}")
    return spec


def content_layers(cfg: StyleConfig, spec: BackboneSpec) -> tuple[str, ...]:
    return tuple(cfg.content_layers or spec.content_layers)


@dataclass(frozen=True)
class StagePlan:
    height: int
    width: int
    iterations: int
    lr_decay_every: int


@dataclass(frozen=True)
class RunPlan:
    stages: tuple[StagePlan, ...]
    estimated_bytes: int  # peak memory of the largest stage
    available_bytes: int | None


def min_side(cfg: StyleConfig, spec: BackboneSpec) -> int:
    """The smallest image side the deepest layer used can see (2 ** poolings before it)."""
    names = spec.layer_names()
    deepest = max(content_layers(cfg, spec) + cfg.style_layers, key=names.index)
    return int(2 ** spec.pools_before(deepest))


def plan_run(
    cfg: StyleConfig,
    *,
    content_size: tuple[int, int],
    device: torch.device,
    dtype: torch.dtype,
    max_memory: int | None = None,
) -> RunPlan:
    """Pixel sizes of every stage and the memory gate, for a content of (w, h) pixels.

    A coarse pyramid scale too small for the network is dropped (the pyramid gets
    shallower); a last stage too small, or a run whose estimated peak memory is
    over what the device has (or ``max_memory``), is refused with one line that
    says what would work.
    """
    spec = get_spec(cfg.model)
    w0, h0 = content_size
    need = min_side(cfg, spec)
    sized = [(fit_long_side(w0, h0, st.size), st) for st in cfg.resolved_stages()]
    (h, w), _ = sized[-1]
    if min(h, w) < need:
        fit = math.ceil(need * max(w0, h0) / min(w0, h0))
        raise ConfigError(
            f"the content is {w0}x{h0}: at size {max(h, w)} its short side would be "
            f"{min(h, w)} px, and the network needs at least {need} px; "
            f"use size {fit} or more, or crop the picture"
        )
    stages = [
        StagePlan(h, w, st.iterations, st.lr_decay_every)
        for (h, w), st in sized
        if min(h, w) >= need
    ]
    available = available_memory(device) if max_memory is None else max_memory
    peak = max(
        estimate_peak_bytes(s.height, s.width, cfg, dtype, device, s.iterations) for s in stages
    )
    if available is not None and peak > available:
        raise OutOfMemoryError(
            f"a {stages[-1].width}x{stages[-1].height} run needs about {_gb(peak)} of memory "
            f"and {_gb(available)} is available; the largest size that fits is "
            f"{largest_fitting_size(cfg, content_size, dtype, device, available)} px"
        )
    return RunPlan(tuple(stages), peak, available)


def _gb(n: float) -> str:
    return f"{n / 1e9:.1f} GB"


# --- the memory model ---------------------------------------------------------
# Peak resident memory of one stage, fitted to benchmarks/memory.py (peak RSS of a
# fresh process on the book's pair, 2-core AMD EPYC, torch 2.13 CPU; RESULTS.md):
#   peak ≈ BASE + pixels · activation bytes + pixels · history entries · HISTORY.
# Activations: 3-iteration runs at 256..1536 px lie on a line of 2164 B/pixel
# (bf16) and 3232 B/pixel (fp32) above ~0.45 GB (torch, the weights, the inputs).
# L-BFGS stores 2 fp32 image-size vectors per history entry (24 B/pixel), but a
# full history measured 38 B/pixel/entry at 256 px and 62 at 512 px: the heap
# fragments as history vectors interleave with freed activations. The model
# takes the larger figure. Adam keeps two moments and the gradient.
BASE_BYTES = {"cpu": 450_000_000, "cuda": 450_000_000, "mps": 450_000_000}
ACTIVATION_BYTES_PER_PIXEL = {torch.float32: 3300.0, torch.bfloat16: 2200.0, torch.float16: 2200.0}
HISTORY_BYTES_PER_PIXEL = 64.0
ADAM_BYTES_PER_PIXEL = 3 * 12.0
#: Headroom for what the fit leaves out (allocator rounding, the output image).
SAFETY = 1.1


def estimate_peak_bytes(
    h: int, w: int, cfg: StyleConfig, dtype: torch.dtype, device: torch.device, iterations: int = 0
) -> int:
    """Estimated peak memory in bytes of optimizing an (h, w) image with ``cfg``.

    ``iterations`` (0 = the config's) bounds how many L-BFGS history entries fill.
    """
    pixels = h * w
    if cfg.optimizer == "lbfgs":
        entries = min(cfg.lbfgs_history, iterations or cfg.iterations)
        state = HISTORY_BYTES_PER_PIXEL * entries * pixels
    else:
        state = ADAM_BYTES_PER_PIXEL * pixels
    activations = ACTIVATION_BYTES_PER_PIXEL.get(dtype, 3300.0) * pixels
    base = BASE_BYTES.get(device.type, 450_000_000)
    return int(SAFETY * (base + activations + state))


def largest_fitting_size(
    cfg: StyleConfig,
    content_size: tuple[int, int],
    dtype: torch.dtype,
    device: torch.device,
    available: int,
) -> int:
    """The largest long side whose estimate fits in ``available`` bytes (binary search)."""
    w0, h0 = content_size
    lo, hi = 0, max(cfg.resolved_stages()[-1].size, 16)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        h, w = fit_long_side(w0, h0, mid)
        if estimate_peak_bytes(h, w, cfg, dtype, device) <= available:
            lo = mid
        else:
            hi = mid - 1
    return lo
