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
    tile: int = 0  # interior tile side of the exact tiled objective; 0 = untiled
    lbfgs_history: int = 100  # L-BFGS history entries this stage keeps
    estimated_bytes: int = 0


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
    if max_memory is None and cfg.max_memory is not None:
        max_memory = int(cfg.max_memory * 1e9)
    available = available_memory(device) if max_memory is None else max_memory
    halo, align = tiling_geometry(cfg, spec)
    stages = []
    for (h, w), st in sized:
        if min(h, w) < need:
            continue
        fitted = fit_stage(h, w, st.iterations, cfg, dtype, device, available, halo, align)
        if fitted is None:
            # Name the size asked for (the last scale), whichever scale ran out first.
            (h, w), last = sized[-1]
            fits = largest_fitting_size(cfg, content_size, dtype, device, available or 0)
            peak = estimate_peak_bytes(h, w, cfg, dtype, device, last.iterations)
            raise OutOfMemoryError(
                f"a {w}x{h} run needs about {_gb(peak)} of memory untiled and "
                f"{_gb(available or 0)} is available, too little even for {MIN_TILE} px "
                f"tiles; the largest size that fits is {fits} px"
            )
        tile, history, peak = fitted
        if tile and cfg.style_loss == "sliced":
            # Sorting is not additive over tiles: the sliced loss has no exact tiled form.
            fits = largest_fitting_size(
                cfg, content_size, dtype, device, available or 0, tiled=False
            )
            raise ConfigError(
                f"the sliced style loss needs the whole {w}x{h} image in one graph, about "
                f"{_gb(estimate_peak_bytes(h, w, cfg, dtype, device, st.iterations))} of "
                f"memory, and {_gb(available or 0)} is available; use size {fits} or "
                "less, or style loss gram or meancov, which run tiled"
            )
        stages.append(StagePlan(h, w, st.iterations, st.lr_decay_every, tile, history, peak))
    return RunPlan(tuple(stages), max(s.estimated_bytes for s in stages), available)


def tiling_geometry(cfg: StyleConfig, spec: BackboneSpec) -> tuple[int, int]:
    """(halo, align) of the tiled objective for the layers ``cfg`` uses."""
    from brushwork.tiled import receptive_halo

    names = spec.layer_names()
    return receptive_halo(spec, max(content_layers(cfg, spec) + cfg.style_layers, key=names.index))


def fit_stage(
    h: int,
    w: int,
    iterations: int,
    cfg: StyleConfig,
    dtype: torch.dtype,
    device: torch.device,
    available: int | None,
    halo: int,
    align: int,
) -> tuple[int, int, int] | None:
    """(tile, L-BFGS history, estimated peak bytes) of one stage, or None if nothing fits.

    Untiled when it fits (or no budget is known) and no ``cfg.tile`` asks
    otherwise. Tiled, the whole-image buffers and the optimizer state come
    first: the L-BFGS history shrinks (to no fewer than
    :data:`MIN_TILED_HISTORY` entries) until the tiles left are at least
    :data:`MIN_TILE` px; the tiles take the rest.
    """
    entries = min(cfg.lbfgs_history, iterations)
    untiled = estimate_peak_bytes(h, w, cfg, dtype, device, iterations)
    if cfg.tile == 0 and (available is None or untiled <= available):
        return 0, entries, untiled
    if cfg.tile:
        tile = max(align, cfg.tile // align * align)
        if tile >= max(h, w):
            return 0, entries, untiled
        peak = estimate_tiled_bytes(h, w, tile + 2 * halo, cfg, dtype, device, entries)
        return (tile, entries, peak) if available is None or peak <= available else None
    assert available is not None
    floor = min(entries, MIN_TILED_HISTORY) if cfg.optimizer == "lbfgs" else entries
    # Tiles below EFFICIENT_TILE spend more on their halos than on themselves
    # ((512 + 160)² / 512² = 1.7x the work); a shorter history costs less, so it
    # gives way first. Below the floor of history, the tiles shrink to MIN_TILE.
    best: tuple[int, int] | None = None
    for history in range(entries, floor - 1, -1):
        tile = _largest_tile(h, w, cfg, dtype, device, available, halo, align, history)
        if tile >= EFFICIENT_TILE or (history == floor and tile >= MIN_TILE):
            best = tile, history
            break
    if best is None:
        return None
    tile, history = best
    return tile, history, estimate_tiled_bytes(h, w, tile + 2 * halo, cfg, dtype, device, history)


def _largest_tile(
    h: int,
    w: int,
    cfg: StyleConfig,
    dtype: torch.dtype,
    device: torch.device,
    available: int,
    halo: int,
    align: int,
    history: int,
) -> int:
    """The largest aligned interior tile side whose estimate fits in ``available``."""
    fixed = estimate_tiled_bytes(h, w, 0, cfg, dtype, device, history)
    spare = (available - fixed) / SAFETY
    box = math.isqrt(max(0, int(spare / ACTIVATION_BYTES_PER_PIXEL.get(dtype, 3300.0))))
    return min((box - 2 * halo) // align * align, _ceil_to(max(h, w), align))


def _ceil_to(n: int, k: int) -> int:
    return -(-n // k) * k


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
#: The sliced style loss's extra bytes per output pixel (untiled only: it has no
#: tiled form). Every style layer's features are projected on as many directions
#: as it has channels, in fp32, then sorted (values and int64 indices), and the
#: target's quantiles are held at the layer's pixel count: about 20 B per
#: projected value and 4 more per target value. Summed over conv1_1..conv5_1
#: (64, 128/4, 256/16, 512/64, 512/256 values per output pixel) that is ~2900 B;
#: measured over the Gram loss's peak, 2870 B at 512 px and 2740 B at 1024 px
#: (benchmarks/memory.py --style-loss sliced; RESULTS.md "Memory model").
SLICED_BYTES_PER_PIXEL = 2900.0
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
        entries = min(cfg.lbfgs_history, iterations or cfg.resolved_stages()[-1].iterations)
        state = HISTORY_BYTES_PER_PIXEL * entries * pixels
    else:
        state = ADAM_BYTES_PER_PIXEL * pixels
    activations = ACTIVATION_BYTES_PER_PIXEL.get(dtype, 3300.0) * pixels
    if cfg.style_loss == "sliced":
        activations += SLICED_BYTES_PER_PIXEL * pixels
    base = BASE_BYTES.get(device.type, 450_000_000)
    return int(SAFETY * (base + activations + state))


#: Tiles at least this large keep the halo's overhead under 1.7x (conv5_1).
EFFICIENT_TILE = 512
#: The smallest automatic tile: below it the halo (80 px a side for conv5_1)
#: costs more than the tile's own pixels.
MIN_TILE = 128
#: The shortest L-BFGS history a tiled stage is cut to before it is refused.
MIN_TILED_HISTORY = 4
#: Whole-image buffers of a tiled stage, bytes per output pixel beyond the
#: optimizer state: the image, its gradient and the loop's backup copy (fp32,
#: 3 channels: 12 B each), the content image twice (RGB and normalized), the
#: content layer's target map (conv4_2: 512 channels at 1/64 of the pixels, in
#: the compute dtype), the style image at the output's area and its copy, and
#: the output image with its colour-mode temporaries.
TILED_FULL_BYTES_PER_PIXEL = 160.0
#: L-BFGS state beyond its history: the flat gradient, the previous one and the
#: direction (fp32, 12 B each); each history entry holds 2 more (24 B).
LBFGS_BASE_BYTES_PER_PIXEL = 36.0
LBFGS_ENTRY_BYTES_PER_PIXEL = 24.0
#: Measured beyond base + activations + whole-image buffers in single-scale
#: tiled runs (1024 and 1536 px, 256 and 512 px tiles; benchmarks/RESULTS.md):
#: about 0.5 GB whatever the size, likely oneDNN's kernels and weight layouts
#: cached for each distinct tile shape.
TILED_EXTRA_BYTES = 500_000_000


def estimate_tiled_bytes(
    h: int,
    w: int,
    box: int,
    cfg: StyleConfig,
    dtype: torch.dtype,
    device: torch.device,
    history: int,
) -> int:
    """Estimated peak bytes of a tiled stage: tile boxes of ``box``² px and ``history``.

    The activation term is the untiled fit's (two single-scale runs differing only
    in tile size measured 2256 B per box pixel); the rest is counted, plus
    :data:`TILED_EXTRA_BYTES`. Fitted on single-scale runs (10–23 % above their
    peaks with the safety factor); whole pyramids to 2048 and 3072 px peaked 9–14 %
    under it once the tile grid kept to four layouts (benchmarks/RESULTS.md "Print").
    """
    pixels = h * w
    if cfg.optimizer == "lbfgs":
        state = (LBFGS_BASE_BYTES_PER_PIXEL + LBFGS_ENTRY_BYTES_PER_PIXEL * history) * pixels
    else:
        state = ADAM_BYTES_PER_PIXEL * pixels
    activations = ACTIVATION_BYTES_PER_PIXEL.get(dtype, 3300.0) * box * box
    base = BASE_BYTES.get(device.type, 450_000_000)
    full = TILED_FULL_BYTES_PER_PIXEL * pixels
    return int(SAFETY * (base + TILED_EXTRA_BYTES + activations + state + full))


def largest_fitting_size(
    cfg: StyleConfig,
    content_size: tuple[int, int],
    dtype: torch.dtype,
    device: torch.device,
    available: int,
    *,
    tiled: bool = True,
) -> int:
    """The largest long side that fits in ``available`` bytes (binary search).

    Tiled if need be, unless ``tiled`` is False (a loss with no tiled form).
    """
    w0, h0 = content_size
    halo, align = tiling_geometry(cfg, get_spec(cfg.model))
    last = cfg.resolved_stages()[-1]
    iterations = last.iterations
    lo, hi = 0, max(last.size, 16)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        h, w = fit_long_side(w0, h0, mid)
        if tiled:
            ok = fit_stage(h, w, iterations, cfg, dtype, device, available, halo, align) is not None
        else:
            ok = estimate_peak_bytes(h, w, cfg, dtype, device, iterations) <= available
        if ok:
            lo = mid
        else:
            hi = mid - 1
    return lo
