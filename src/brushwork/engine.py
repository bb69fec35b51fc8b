"""The library's entry point, :func:`stylize`: plan, load, then optimize stage by stage.

A run goes: check the config and the sizes (:mod:`brushwork.plan`), decode
every input (:mod:`brushwork.sources`), build the frozen backbone, resolve the
loss weights (:mod:`brushwork.balance`), then for each pyramid stage build the
objective (:mod:`brushwork.objective`) and hand it to the loop
(:mod:`brushwork.optimize`), reporting through the progress stream
(:mod:`brushwork.progress`). The composite image is the only parameter, kept
in the book's normalized space as a float32 tensor.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Unpack

import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from brushwork import __version__
from brushwork.backbones import LoadedWeights, VGGFeatures, build_backbone, get_spec
from brushwork.balance import LossWeights, resolve_loss_weights
from brushwork.budget import (
    BUDGET_LAYER,
    UNCHANGED,
    coarse_correction,
    content_distance,
    correction,
    late_iteration,
    switch_iteration,
)
from brushwork.color import ColorMode, color_mode, match_mean_cov, pooled_mean_cov
from brushwork.config import FULL_ITERATIONS_SIZE, StyleConfig, StyleOptions
from brushwork.devices import (
    cpu_runs_amx_bf16,
    release_free_memory,
    resolve_device,
    resolve_precision,
    tune_cpu_allocator,
)
from brushwork.errors import ConfigError
from brushwork.images import ImageInput, load_image
from brushwork.objective import LossParts, Objective, StyleSource, Terms
from brushwork.optimize import Schedule, Step, optimize
from brushwork.pixels import (
    normalize,
    pixel_bounds,
    resize,
    rgb01,
    rgb_image,
    rgb_tensor,
    to_tensor,
)
from brushwork.plan import RunPlan, StagePlan, check_config, content_layers, plan_run
from brushwork.progress import Progress, ProgressCallback
from brushwork.sources import StyleInputs, as_list, config_style_inputs
from brushwork.tiled import TiledObjective


@dataclass(frozen=True)
class Network:
    """A loaded, frozen backbone that several runs can share (batch, video).

    Build it with :func:`load_network`; :func:`stylize` uses it when it
    :meth:`fits` the run's config and builds its own otherwise.
    """

    net: VGGFeatures
    loaded: LoadedWeights
    key: tuple[Any, ...]
    layers: frozenset[str]

    def fits(self, config: StyleConfig) -> bool:
        """True when a run with ``config`` can use this network as it is."""
        # The caller has validated ``config``; only its layers and device matter here.
        layers = content_layers(config, get_spec(config.model)) + config.style_layers
        return _network_key(config) == self.key and set(layers) <= self.layers


def _network_key(cfg: StyleConfig) -> tuple[Any, ...]:
    device = resolve_device(cfg.device)
    dtype = resolve_precision(cfg.precision, device)
    weights = None if cfg.model_weights is None else str(cfg.model_weights)
    return (cfg.model, weights, cfg.pooling, str(device), str(dtype), cfg.channels_last)


def load_network(config: StyleConfig | None = None, **options: Unpack[StyleOptions]) -> Network:
    """Load the backbone a run with this config needs, once, for many runs.

    Raises:
        BrushworkError: for a bad config or missing weights.
    """
    cfg = dataclasses.replace(config or StyleConfig(), **options)
    spec = check_config(cfg)
    device = resolve_device(cfg.device)
    dtype = resolve_precision(cfg.precision, device)
    layers = content_layers(cfg, spec) + cfg.style_layers
    net, loaded = build_backbone(
        cfg.model, layers=layers, weights=cfg.model_weights, pooling=cfg.pooling
    )
    net = net.to(device=device, dtype=dtype)
    if cfg.channels_last:
        net = net.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    return Network(net, loaded, _network_key(cfg), frozenset(layers))


#: An extra loss term: the normalized composite image (1, 3, h, w) at the
#: stage's size -> a weighted fp32 scalar added to the total (video's temporal loss).
ExtraLoss = Callable[[Tensor], Tensor]


def stylize(
    content: ImageInput | None,
    style: ImageInput | Sequence[ImageInput],
    *,
    config: StyleConfig | None = None,
    mask: ImageInput | None = None,
    region_styles: Mapping[int, ImageInput | Sequence[ImageInput]] | None = None,
    canvas: tuple[int, int] | None = None,
    callback: ProgressCallback | None = None,
    should_stop: Callable[[], bool] | None = None,
    preview_every: int = 0,
    network: Network | None = None,
    start: ImageInput | None = None,
    extra_loss: ExtraLoss | None = None,
    **options: Unpack[StyleOptions],
) -> Image.Image:
    """Paint ``content`` in the style of ``style`` (Gatys et al., as the d2l book teaches it).

    Args:
        content: path or PIL image; ``None`` synthesizes a texture (style and TV
            losses only) on a ``canvas`` of (width, height) pixels.
        style: one style image, or several blended with ``style_blend``.
        config: base configuration; ``options`` override its fields.
        mask: a label image the size of ``content``; each label in
            ``region_styles`` gets its own style there (spatial control, Gatys et
            al. 2017). Unlisted labels take ``style``.
        callback: receives a :class:`Progress` after every iteration.
        should_stop: polled every iteration; returning True ends the run early
            (the current image is returned, the final record says "cancelled").
        preview_every: attach the current image to every N-th progress record.
        network: a backbone from :func:`load_network`, reused when it fits the
            config (batch and video runs load the weights once).
        start: start from this image (resized to the first stage) instead of
            ``config.init``; it is not recorded in the config (video frames
            start from the previous output, warped).
        extra_loss: an extra term added to every stage's total loss, e.g.
            video's temporal consistency; it sees the image at each stage's size.

    Returns:
        The result as an RGB PIL image. ``image.info["brushwork"]`` holds the run
        record (parameters, weights fingerprint, timings, stop reason).

    Raises:
        BrushworkError: for anything the caller can fix, before the weights load
        wherever the config or the inputs tell.
    """
    cfg = dataclasses.replace(config or StyleConfig(), **options)
    spec = check_config(cfg, n_styles=len(as_list(style)))
    device = resolve_device(cfg.device)
    if content is None:
        if canvas is None:
            raise ConfigError("texture synthesis needs a canvas size (width, height)")
        content_img = Image.new("RGB", canvas, (128, 128, 128))
    else:
        content_img = load_image(content, "content")
    dtype = resolve_precision(cfg.precision, device)
    cfg = cfg.for_device(device.type, content_img.size, fast_cpu=cpu_runs_amx_bf16(device, dtype))
    plan = plan_run(cfg, content_size=content_img.size, device=device, dtype=dtype)
    inputs = config_style_inputs(
        cfg, style, content_size=content_img.size, mask=mask, region_styles=region_styles
    )
    init_img = load_image(cfg.init_image, "init") if cfg.init_image is not None else None
    # Without a content image, the content-based starts fall back to noise.
    init = "noise" if content is None and cfg.init in ("content", "recolored") else cfg.init
    if start is not None:
        init_img, init = load_image(start, "start"), "image"

    if device.type == "cpu":
        tune_cpu_allocator()
    generator = torch.Generator().manual_seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    c_layers = content_layers(cfg, spec)
    if network is None or not network.fits(cfg):
        network = load_network(cfg)
    net, loaded = network.net, network.loaded
    loss_weights = resolve_loss_weights(
        loaded.spec.input_space,
        optimizer=cfg.optimizer,
        style_loss=cfg.style_loss,
        content_weight=cfg.content_weight,
        style_weight=cfg.style_weight,
        tv_weight=cfg.tv_weight,
        has_content=content is not None,
        balance=cfg.balance,
        strength=cfg.strength,
    )
    resolved_style = loss_weights.style  # what the budget's factors multiply
    mode = color_mode(cfg.preserve_color)
    bounds = pixel_bounds(device) if cfg.clamp else None

    report = _Reporter(plan, callback, preview_every, mode)
    stopped: str | None = None
    x: Tensor | None = None
    base_prev: Tensor | None = None  # the last scale's photo-made start (PHOTO_STARTS)
    content_rgb: Tensor | None = None
    ran: list[dict[str, int]] = []
    budget: dict[str, float] = {}  # the content budget's corrections, when they ran
    budget_stage = _budget_stage(plan)
    budget_on = budget_stage is not None and _budget_applies(
        cfg, content is not None, start is not None, net
    )
    for si, st in enumerate(plan.stages):
        h, w = st.height, st.width
        content_rgb = rgb_tensor(resize(content_img, h, w), device)
        sources = inputs.sources(h, w, content_rgb, mode, device)
        terms = Terms(
            content=None if content is None else normalize(content_rgb),
            styles=sources,
            content_layers=c_layers,
            style_layers=cfg.style_layers,
            style_layer_weights=cfg.style_layer_weights or (1.0,) * len(cfg.style_layers),
            loss_weights=loss_weights,
            style_loss=cfg.style_loss,
            prepare=mode.network_view,
            channels_last=cfg.channels_last,
            relative_losses=cfg.balance == "auto",
            generator=generator,
        )
        # Too large for one graph: the same objective, tile by tile (brushwork.tiled).
        objective = TiledObjective(net, terms, tile=st.tile) if st.tile else Objective(net, terms)
        del terms
        if device.type == "cpu" and (st.tile or si > 0):
            release_free_memory()  # the last scale's heap holes do not fit this one's buffers
        if init in PHOTO_STARTS:
            base = _init_image(init, content_rgb, sources, init_img, generator)
            # clone: x is optimized in place and base_prev must stay the photo's.
            x = base.clone() if x is None else next_start(x, base_prev=base_prev, base=base)
            base_prev = base if si + 1 < len(plan.stages) else None
        elif x is None:
            x = _init_image(init, content_rgb, sources, init_img, generator)
        else:
            x = next_start(x, size=(h, w))
        x = x.detach().contiguous().requires_grad_(True)
        schedule = Schedule(
            optimizer=cfg.optimizer,
            iterations=st.iterations,
            lr=cfg.lr,
            lr_decay=cfg.lr_decay,
            lr_decay_every=st.lr_decay_every,
            lbfgs_history=st.lbfgs_history,
            # A given start (a video frame's warped previous output) is near its answer:
            # Polyak's first step, sized for a start far from it, would kick it away.
            first_step="torch" if start is not None else "polyak",
            tol=cfg.tol,
            tol_window=cfg.tol_window,
        )
        retune = None
        if budget_on and isinstance(objective, Objective):
            assert cfg.content_budget is not None and budget_stage is not None
            if si == budget_stage:
                # One photo reference for both looks of the stage: its features once.
                reference = _reference(objective, normalize(content_rgb))
                looks = [(switch_iteration(st.iterations), "")]
                late = late_iteration(st.iterations)
                if late is not None:
                    looks.append((late, "late_"))
                retune = _either(
                    _budget_retune(
                        objective,
                        x,
                        reference,
                        at,
                        functools.partial(
                            _stage_correction,
                            cfg.content_budget,
                            at,
                            st.iterations,
                            cfg.strength,
                            objective,
                            resolved_style,
                        ),
                        budget,
                        prefix=prefix,
                        also={"budget": cfg.content_budget},
                        iterations=st.iterations,
                    )
                    for at, prefix in looks
                )
            elif si == 0:
                fine_photo, ahead = _lookahead(
                    content_img,
                    plan.stages[budget_stage],
                    init,
                    inputs,
                    mode,
                    init_img,
                    generator,
                    base_prev,
                    device,
                )
                retune = _budget_retune(
                    objective,
                    x,
                    _reference(objective, fine_photo),
                    switch_iteration(st.iterations),
                    functools.partial(
                        coarse_correction, budget=cfg.content_budget, strength=cfg.strength
                    ),
                    budget,
                    prefix="coarse_",
                    view=ahead,
                    iterations=st.iterations,
                )
        outcome = optimize(
            x,
            objective if extra_loss is None else _with_extra(objective, extra_loss),
            schedule,
            bounds=bounds,
            should_stop=should_stop,
            on_step=report.stage(
                si,
                x,
                content_rgb,
                objective.tiles(h, w) if isinstance(objective, TiledObjective) else 1,
            ),
            retune=retune,
        )
        loss_weights = objective.loss_weights  # the budget may have corrected the style's
        report.stage_done(st.iterations, outcome.iterations)
        ran.append({"height": h, "width": w, "iterations": outcome.iterations, "tile": st.tile})
        if outcome.stopped:
            stopped = outcome.stopped
            break
    assert x is not None and content_rgb is not None
    image = _output(x, mode, content_rgb)
    image.info["brushwork"] = run_record(
        cfg,
        plan,
        ran,
        loaded.fingerprint,
        loaded.origin,
        loss_weights,
        dtype,
        device,
        report.elapsed(),
        stopped,
        budget or None,
    )
    report.finish(x, image, stopped, cfg.lr)
    return image


def _budget_stage(plan: RunPlan) -> int | None:
    """The stage whose style weight the content budget corrects: the last one of at most
    FULL_ITERATIONS_SIZE px. Larger print scales refine what it painted with few
    iterations each, and keep its corrected weights. None when every stage is larger."""
    small = [
        i for i, st in enumerate(plan.stages) if max(st.height, st.width) <= FULL_ITERATIONS_SIZE
    ]
    return small[-1] if small else None


def _budget_applies(cfg: StyleConfig, has_content: bool, has_start: bool, net: VGGFeatures) -> bool:
    """Whether the content budget corrects this run (at :func:`_budget_stage`).

    Only the auto balance's own weights are corrected: weights the user set win, and
    a given start (a video frame after the first) keeps the balance it was given. The
    budget's constants were measured with the Gram loss under L-BFGS; other style
    losses and Adam keep their resolved weights.
    """
    return bool(
        cfg.content_budget
        and has_content
        and not has_start
        and cfg.balance == "auto"
        and cfg.style_loss == "gram"
        and cfg.optimizer == "lbfgs"
        and cfg.content_weight is None
        and cfg.style_weight is None
        and BUDGET_LAYER in net.names
    )


def _reference(objective: Objective, photo: Tensor) -> Callable[[], Tensor]:
    """The budget's reference: ``photo``'s (normalized, (1, 3, h, w)) BUDGET_LAYER
    features, computed on first use and kept."""

    @functools.cache
    def features() -> Tensor:
        with torch.no_grad():
            return objective.features(photo, (BUDGET_LAYER,))[BUDGET_LAYER]

    return features


def _budget_retune(
    objective: Objective,
    x: Tensor,
    reference: Callable[[], Tensor],
    at: int,
    decide: Callable[[float], float],
    log: dict[str, float],
    *,
    iterations: int,
    prefix: str = "",
    view: Callable[[Tensor], Tensor] | None = None,
    also: Mapping[str, float] | None = None,
) -> Callable[[int], bool] | None:
    """A content-budget retune hook (:func:`~brushwork.optimize.optimize`): after
    iteration ``at``, measure the content distance of ``view(x)`` (x itself when None)
    from the photo's features ``reference()`` (:func:`_reference`, at the size ``view``
    gives), multiply the style weight by ``decide(distance)`` (:mod:`brushwork.budget`),
    and put the iteration, the distance and the factor into ``log`` under ``prefix``
    (with ``also``). None when the stage of ``iterations`` has none left after ``at``."""
    if at >= iterations:
        return None

    def retune(k: int) -> bool:
        if k != at:
            return False
        with torch.no_grad():
            seen = x.detach() if view is None else view(x.detach())
            now = objective.features(seen, (BUDGET_LAYER,))[BUDGET_LAYER]
        measured = content_distance(now, reference())
        # At the range's end the clamp gives limit / (the factors so far), a few ulps off 1
        # in floating point. That is no change: the objective stays as it was, and L-BFGS
        # keeps the curvature pair a change would cost.
        factor = decide(measured)
        if abs(factor - 1.0) <= UNCHANGED:
            factor = 1.0
        w = objective.loss_weights
        objective.loss_weights = dataclasses.replace(w, style=w.style * factor)
        log.update(
            {
                **(also or {}),
                f"{prefix}at_iteration": at,
                f"{prefix}measured": round(measured, 4),
                f"{prefix}correction": round(factor, 4),
            }
        )
        return factor != 1.0

    return retune


def _either(hooks: Iterable[Callable[[int], bool] | None]) -> Callable[[int], bool] | None:
    """One retune hook that calls each of ``hooks`` that is not None (each fires at its
    own iteration); None when there are none."""
    every = [hook for hook in hooks if hook is not None]
    if not every:
        return None
    return lambda k: any([hook(k) for hook in every])


def _stage_correction(
    limit: float,
    done: int,
    total: int,
    strength: float,
    objective: Objective,
    resolved_style: float,
    measured: float,
) -> float:
    """The budget stage's factor at iteration ``done``, clamped with the factors applied
    before it: the objective's style weight over the one the run resolved. Read from the
    weight itself, unrounded, so that a look at the range's end gets exactly 1 (the
    record keeps 4 places)."""
    applied = objective.loss_weights.style / resolved_style
    return correction(measured, limit, done, total, strength, applied)


def _lookahead(
    content_img: Image.Image,
    fine: StagePlan,
    init: str,
    inputs: StyleInputs,
    mode: ColorMode,
    init_img: Image.Image | None,
    generator: torch.Generator,
    base_prev: Tensor | None,
    device: torch.device,
) -> tuple[Tensor, Callable[[Tensor], Tensor]]:
    """The budget stage's normalized photo, and the map that carries a coarse image to
    that stage's size as the stage would start from it (:func:`next_start`: with the
    photo's detail band for the photo-made starts, else upsampled)."""
    fine_rgb = rgb_tensor(resize(content_img, fine.height, fine.width), device)
    size = (fine.height, fine.width)
    if init not in PHOTO_STARTS:
        return normalize(fine_rgb), functools.partial(next_start, size=size)
    sources = inputs.sources(fine.height, fine.width, fine_rgb, mode, device)
    base = _init_image(init, fine_rgb, sources, init_img, generator)
    return normalize(fine_rgb), functools.partial(next_start, base_prev=base_prev, base=base)


def _with_extra(
    objective: Callable[[Tensor], LossParts], extra: ExtraLoss
) -> Callable[[Tensor], LossParts]:
    def total(x: Tensor) -> LossParts:
        parts = objective(x)
        if not parts.total.requires_grad:  # a tiled objective wrote x.grad itself
            with torch.enable_grad():
                xt = x.detach().requires_grad_(True)
                e = extra(xt).float()
                (g,) = torch.autograd.grad(e, xt)
            assert x.grad is not None
            x.grad += g
            return parts._replace(total=parts.total + e.detach())
        return parts._replace(total=parts.total + extra(x).float())

    return total


class _Reporter:
    """Turns the loop's steps into the run's :class:`Progress` stream."""

    def __init__(
        self,
        plan: RunPlan,
        callback: ProgressCallback | None,
        preview_every: int,
        mode: ColorMode,
    ) -> None:
        self.plan = plan
        self.callback = callback
        self.preview_every = preview_every
        self.mode = mode
        self.start = time.perf_counter()
        self.total = sum(s.iterations for s in plan.stages)
        self.done = 0  # iterations completed in finished stages
        self.last: Progress | None = None

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def stage(
        self, index: int, x: Tensor, content_rgb: Tensor, tiles: int = 1
    ) -> Callable[[Step], None]:
        """The ``on_step`` of stage ``index``, optimizing ``x``."""
        h, w = x.shape[-2:]
        stage_iterations = self.plan.stages[index].iterations
        started = time.perf_counter()

        def eta(done: int) -> float:
            # An iteration's cost grows with its pixels: this stage's seconds per
            # pixel-iteration, times what is left here and in the larger stages.
            rate = (time.perf_counter() - started) / (done * h * w)
            left = (stage_iterations - done) * h * w + sum(
                s.iterations * s.height * s.width for s in self.plan.stages[index + 1 :]
            )
            return rate * left

        def on_step(step: Step) -> None:
            self.last = Progress(
                iteration=self.done + step.iteration,
                total_iterations=self.total,
                stage=index,
                stages=len(self.plan.stages),
                stage_iteration=step.iteration,
                stage_iterations=stage_iterations,
                height=h,
                width=w,
                content_loss=step.content,
                style_loss=step.style,
                tv_loss=step.tv,
                total_loss=step.total,
                lr=step.lr,
                elapsed=self.elapsed(),
                converged=step.converged,
                tiles=tiles,
                eta=eta(step.iteration),
            )
            if self.callback is not None:
                every = self.preview_every
                if every > 0 and self.last.iteration % every == 0:
                    image = _output(x, self.mode, content_rgb)
                    self.callback(dataclasses.replace(self.last, image=image))
                else:
                    self.callback(self.last)

        return on_step

    def stage_done(self, planned: int, ran: int) -> None:
        self.done += ran
        # A stage that converged early ends the totals' promise; say so.
        self.total -= planned - ran

    def finish(self, x: Tensor, image: Image.Image, stopped: str | None, lr: float) -> None:
        """The final record: done, the stop reason and the result image."""
        if self.callback is None:
            return
        final = self.last or _empty_progress(self.plan, x, self.total, lr, self.elapsed())
        self.callback(
            dataclasses.replace(
                final, done=True, stopped=stopped, image=image, total_iterations=self.total
            )
        )


def _output(x: Tensor, mode: ColorMode, content_rgb: Tensor) -> Image.Image:
    with torch.no_grad():
        return rgb_image(mode.output(rgb01(x.detach()).clamp(0, 1), content_rgb))


#: Starts made from the photo at every scale's own size: the next scale can take the
#: photo's detail from them (:func:`next_start`).
PHOTO_STARTS = ("content", "recolored")


def next_start(
    x: Tensor,
    *,
    size: tuple[int, int] | None = None,
    base_prev: Tensor | None = None,
    base: Tensor | None = None,
) -> Tensor:
    """The next scale's start from the last scale's result ``x`` (1, 3, h', w').

    Without bases: x upsampled bicubically to ``size`` (h, w). With the photo-made
    starts of both scales (``base_prev`` at x's size, ``base`` at the new one):

        up(x) + (base − up(base_prev))

    i.e. the result plus the photo's detail band that the coarse scale could not
    hold. Why: a bicubic upsampling blurs the photo's edges along with the paint,
    and the fine scale's iterations (30 on the CPU) then spend themselves bringing
    the content layer back (content distance of the upsampled 256 px result at
    512 px: about 1.2; at the end: about 0.8). Where x still equals ``base_prev``
    the start is ``base`` exactly.
    """
    if base is not None:
        if base_prev is None:
            raise ValueError("base needs base_prev")
        size = (base.shape[-2], base.shape[-1])
    if size is None:
        raise ValueError("give size or the bases")

    def up(t: Tensor) -> Tensor:
        return F.interpolate(t, size=size, mode="bicubic", align_corners=False)

    if base is None or base_prev is None:
        return up(x)
    # One interpolation of the difference: up is linear.
    return up(x - base_prev) + base


def _init_image(
    init: str,
    content_rgb: Tensor,
    sources: Sequence[StyleSource],
    init_img: Image.Image | None,
    generator: torch.Generator,
) -> Tensor:
    """The starting image at ``content_rgb``'s size (1, 3, h, w), normalized."""
    h, w = content_rgb.shape[-2:]
    device = content_rgb.device
    if init == "content":
        return normalize(content_rgb)
    if init == "recolored":
        return normalize(recolor_to_styles(content_rgb, sources))
    if init == "noise":
        # White noise in RGB 0..1, as Gatys's texture model starts.
        return normalize(torch.rand((1, 3, h, w), generator=generator).to(device))
    if init == "style-stats":
        # Gaussian noise with the paintings' per-channel colour mean and spread.
        def noise(mean: Tensor, cov: Tensor, region: Tensor | None) -> Tensor:
            std = cov.diagonal(dim1=-2, dim2=-1).clamp_min(0).sqrt()
            z = torch.randn((1, 3, h, w), generator=generator).to(device)
            return z * std.view(1, 3, 1, 1) + mean.view(1, 3, 1, 1)

        return normalize(_by_palette(content_rgb, sources, noise))
    assert init_img is not None
    return to_tensor(resize(init_img, h, w), device)


def recolor_to_styles(content_rgb: Tensor, sources: Sequence[StyleSource]) -> Tensor:
    """The content (1, 3, h, w) in 0..1 recoloured to the paintings' palette: each
    source's style images pooled by their blend weights (as the style loss sees
    them, so after colour preservation), matched in colour mean and covariance
    (:func:`brushwork.color.match_mean_cov`), region by region under a mask.

    Why start here and not from the photo, as the book does: the shallow style
    layers (conv1_1, conv2_1) carry much of a painting's palette, and the
    optimizer, moving pixels a little per step, spends its iterations on a global
    colour shift that this closed-form map makes at once; the content layer
    (conv4_3) hardly moves with a smooth colour map, so the photo's structure stays.
    """
    return _by_palette(
        content_rgb,
        sources,
        lambda mean, cov, region: match_mean_cov(content_rgb, mean, cov, mask=region),
    )


def _by_palette(
    like: Tensor,
    sources: Sequence[StyleSource],
    paint: Callable[[Tensor, Tensor, Tensor | None], Tensor],
) -> Tensor:
    """Σ over sources of ``paint(mean, cov, region)``, each kept to its region: an
    image shaped like ``like`` (1, 3, h, w) from every source's palette, its style
    images' colour mean (1, 3) and covariance (1, 3, 3) pooled by blend weight (as
    the style loss sees them)."""
    out = torch.zeros_like(like)
    for src in sources:
        mean, cov = pooled_mean_cov([rgb01(i) for i in src.images], src.blend)
        part = paint(mean, cov, src.region)
        out = out + (part if src.region is None else part * src.region)
    return out


def _empty_progress(plan: RunPlan, x: Tensor, total: int, lr: float, elapsed: float) -> Progress:
    """The final record of a run that was stopped before its first iteration."""
    h, w = x.shape[-2:]
    return Progress(
        iteration=0,
        total_iterations=total,
        stage=0,
        stages=len(plan.stages),
        stage_iteration=0,
        stage_iterations=plan.stages[0].iterations,
        height=h,
        width=w,
        content_loss=math.nan,
        style_loss=math.nan,
        tv_loss=math.nan,
        total_loss=math.nan,
        lr=lr,
        elapsed=elapsed,
    )


def run_record(
    cfg: StyleConfig,
    plan: RunPlan,
    ran: list[dict[str, int]],
    fingerprint: str,
    origin: str,
    loss_weights: LossWeights,
    dtype: torch.dtype,
    device: torch.device,
    seconds: float,
    stopped: str | None,
    budget: dict[str, float] | None = None,
) -> dict[str, Any]:
    """Everything needed to reproduce a result, as JSON-ready data.

    ``config`` is what was asked; ``resolved`` and ``stages_run`` are what ran
    (``resolved`` holds the weights the run ended with, after any budget correction).
    """
    return {
        "brushwork": __version__,
        "config": cfg.to_dict(),
        "resolved": {
            "content_weight": loss_weights.content,
            "style_weight": loss_weights.style,
            "tv_weight": loss_weights.tv,
            "precision": str(dtype).removeprefix("torch."),
            "device": device.type,
            "estimated_peak_bytes": plan.estimated_bytes,
            # The content budget's correction of the style weight (brushwork.budget):
            # style_weight above is after it. None when it did not run.
            "content_budget": budget,
        },
        "stages_run": ran,
        "weights_sha256": fingerprint,
        "weights_origin": origin,
        "torch": torch.__version__,
        "iterations_run": sum(r["iterations"] for r in ran),
        "seconds": round(seconds, 3),
        "stopped": stopped,
    }


__all__ = [
    "ExtraLoss",
    "Network",
    "Progress",
    "ProgressCallback",
    "load_network",
    "run_record",
    "stylize",
]
