"""The optimization loop: one entry point, :func:`stylize`.

The composite image is the only parameter. It lives in the book's space,
ImageNet mean/std-normalized RGB, as a contiguous float32 tensor (L-BFGS and
Adam state stay fp32); the backbone converts it to its own input and memory
layout inside the forward pass.
"""

from __future__ import annotations

import ctypes
import dataclasses
import functools
import math
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Unpack

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps
from torch import Tensor

from brushwork import __version__, color
from brushwork.backbones import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    build_backbone,
    check_layers,
    get_spec,
)
from brushwork.config import Stage, StyleConfig, StyleOptions
from brushwork.errors import ConfigError
from brushwork.images import ImageInput, load_image
from brushwork.objective import Objective, StyleSource


@dataclass(frozen=True)
class Progress:
    """One record of the progress stream, sent after every iteration.

    Loss parts are weighted (as summed into ``total``), evaluated at the image
    *before* this iteration's step. ``image`` is set only on iterations the
    caller asked for (``preview_every``) and on the final record.
    """

    iteration: int  # 1-based, across all stages
    total_iterations: int
    stage: int  # 0-based
    stages: int
    stage_iteration: int  # 1-based within the stage
    stage_iterations: int
    height: int
    width: int
    content_loss: float
    style_loss: float
    tv_loss: float
    total_loss: float
    lr: float
    elapsed: float  # seconds since the run started (after setup)
    converged: bool = False  # this record ended its stage by the --tol test
    done: bool = False
    stopped: str | None = None  # None, "cancelled" or "nonfinite" on the final record
    image: Image.Image | None = None


ProgressCallback = Callable[[Progress], None]


@functools.cache
def tune_cpu_allocator() -> bool:
    """Keep freed tensor memory in glibc's heap instead of returning it to the OS.

    Every iteration allocates and frees the same large activations; glibc serves
    blocks over 32 MB-ish with mmap and unmaps them on free, so each iteration
    page-faults them in again (measured: 5x fewer page faults and 18% less time per
    iteration at 512 px). Raising the mmap and trim thresholds is process-wide but
    harmless; it runs once, and only where glibc is there.
    """
    if sys.platform != "linux":
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3
        ok = libc.mallopt(m_mmap_threshold, 1 << 30) and libc.mallopt(m_trim_threshold, 1 << 30)
    except (OSError, AttributeError):
        return False
    return bool(ok)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda was asked for, but no CUDA GPU is available")
    if name == "mps" and not (
        getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()
    ):
        raise ConfigError("--device mps was asked for, but Apple's MPS backend is not available")
    if name not in ("cpu", "cuda", "mps"):
        raise ConfigError(f"unknown device {name!r} (choose from auto, cpu, cuda, mps)")
    return torch.device(name)


def cpu_has_bf16() -> bool:
    """True where the CPU has native bf16 dot products (AVX512-BF16 or AMX)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def resolve_precision(name: str, device: torch.device) -> torch.dtype:
    """The network's compute dtype. Losses, Grams and the optimizer stay fp32."""
    if name == "fp32":
        return torch.float32
    if name == "bf16":
        return torch.bfloat16
    if name == "fp16":
        if device.type == "cpu":
            raise ConfigError("fp16 is for GPUs; on the CPU use --precision bf16 or fp32")
        return torch.float16
    if name != "auto":
        raise ConfigError(f"unknown precision {name!r} (choose from auto, fp32, bf16, fp16)")
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "mps":
        return torch.float16
    if device.type == "cpu" and cpu_has_bf16():
        return torch.bfloat16
    return torch.float32


def fit_long_side(width: int, height: int, long_side: int) -> tuple[int, int]:
    """(h, w) with the given long side and the input's aspect ratio (each >= 1)."""
    scale = long_side / max(width, height)
    return max(1, round(height * scale)), max(1, round(width * scale))


def _resize(img: Image.Image, h: int, w: int) -> Image.Image:
    if img.size == (w, h):
        return img
    return img.resize((w, h), Image.Resampling.LANCZOS)


def to_tensor(img: Image.Image, device: torch.device) -> Tensor:
    """PIL RGB -> (1, 3, h, w) float32, ImageNet-normalized."""
    arr = np.asarray(img, dtype=np.float32) / 255.0
    x = torch.from_numpy(arr).permute(2, 0, 1).unsqueeze(0)
    return _normalize(x).contiguous().to(device)


def to_image(x: Tensor) -> Image.Image:
    """(1, 3, h, w) normalized -> PIL RGB, clipped to the valid range (the book's postprocess)."""
    rgb = _rgb01(x.detach().to("cpu", torch.float32)).clamp(0, 1)[0].permute(1, 2, 0).numpy()
    return Image.fromarray((rgb * 255.0 + 0.5).astype(np.uint8))


def style_size(cfg: StyleConfig, style: Image.Image, h: int, w: int) -> tuple[int, int]:
    """Size of a style image for an (h, w) output.

    ``area``: the style's own aspect ratio, with ``style_scale``² times the output's
    area, never upscaled beyond its own pixels. ``stretch``: exactly (h, w) scaled by
    ``style_scale`` (the book's way at scale 1).
    """
    if cfg.style_fit == "stretch":
        return max(16, round(h * cfg.style_scale)), max(16, round(w * cfg.style_scale))
    sw, sh = style.size
    scale = min(1.0, cfg.style_scale * math.sqrt(h * w / (sw * sh)))
    return max(16, round(sh * scale)), max(16, round(sw * scale))


def _rgb01(x: Tensor) -> Tensor:
    """ImageNet-normalized -> RGB in 0..1 (not clipped)."""
    mean = torch.tensor(IMAGENET_MEAN, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=x.device).view(1, 3, 1, 1)
    return x * std + mean


def _normalize(rgb: Tensor) -> Tensor:
    """RGB in 0..1 -> ImageNet-normalized, the space the composite image lives in."""
    mean = torch.tensor(IMAGENET_MEAN, device=rgb.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=rgb.device).view(1, 3, 1, 1)
    return (rgb - mean) / std


def _luminance_view(x: Tensor) -> Tensor:
    """What the network sees in luminance-only transfer: Y copied into R, G and B."""
    return _normalize(color.luminance_as_rgb(_rgb01(x)))


def _init_image(
    init: str, content: Tensor, style: Tensor, generator: torch.Generator, device: torch.device
) -> Tensor:
    h, w = content.shape[-2:]
    if init == "content":
        return content.clone()
    if init == "noise":
        # White noise in RGB 0..1, as Gatys's texture model starts.
        rgb = torch.rand((1, 3, h, w), generator=generator).to(device)
        return _normalize(rgb)
    if init == "style-stats":
        mean = style.mean(dim=(2, 3), keepdim=True)
        std = style.std(dim=(2, 3), keepdim=True)
        return torch.randn((1, 3, h, w), generator=generator).to(device) * std + mean
    img = load_image(init, "init")
    return to_tensor(_resize(img, h, w), device)


def _check_init(init: str) -> None:
    if init in ("content", "noise", "style-stats"):
        return
    if not Path(init).exists():
        raise ConfigError(
            f"--init must be content, noise, style-stats or an existing image file; "
            f"'{init}' does not exist"
        )


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

    Returns:
        The result as an RGB PIL image. ``image.info["brushwork"]`` holds the run
        record (parameters, weights fingerprint, timings, stop reason).
    """
    cfg = dataclasses.replace(config or StyleConfig(), **options)
    cfg.validate()
    spec = get_spec(cfg.model)
    content_layers = tuple(cfg.content_layers or spec.content_layers)
    check_layers(spec, content_layers + cfg.style_layers)
    _check_init(cfg.init)
    device = resolve_device(cfg.device)
    dtype = resolve_precision(cfg.precision, device)
    if device.type == "cpu":
        tune_cpu_allocator()
    styles = [style] if isinstance(style, (str, os.PathLike, Image.Image)) else list(style)
    if not styles:
        raise ConfigError("at least one style image is needed")
    if cfg.style_blend is not None and len(cfg.style_blend) != len(styles):
        raise ConfigError(f"{len(cfg.style_blend)} blend weights for {len(styles)} style images")
    style_imgs = [load_image(s, "style") for s in styles]
    if content is None:
        if canvas is None:
            raise ConfigError("texture synthesis needs a canvas size (width, height)")
        content_img = Image.new("RGB", canvas, (128, 128, 128))
    else:
        content_img = load_image(content, "content")
    regions = _load_regions(mask, region_styles, content_img)
    init = "noise" if content is None and cfg.init == "content" else cfg.init

    generator = torch.Generator().manual_seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    net, loaded = build_backbone(
        cfg.model,
        layers=content_layers + cfg.style_layers,
        weights=cfg.weights,
        pooling=cfg.pooling,
    )
    net = net.to(device=device, dtype=dtype)
    if cfg.channels_last:
        net = net.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    defaults = loaded.spec.loss_weights
    weights = (
        0.0
        if content is None
        else defaults.content * CONVERGED_CONTENT_FACTOR[cfg.optimizer]
        if cfg.content_weight is None
        else cfg.content_weight,
        (defaults.style * MEANCOV_STYLE_FACTOR if cfg.style_loss == "meancov" else defaults.style)
        if cfg.style_weight is None
        else cfg.style_weight,
        defaults.tv if cfg.tv_weight is None else cfg.tv_weight,
    )
    layer_weights = cfg.style_layer_weights or (1.0,) * len(cfg.style_layers)
    blend = cfg.style_blend or (1.0,) * len(styles)
    prepare = _luminance_view if cfg.preserve_color == "luminance" else (lambda t: t)

    stages = cfg.resolved_stages()
    total_iters = sum(st.iterations for st in stages)
    start = time.perf_counter()
    x: Tensor | None = None
    content_t: Tensor | None = None
    iteration = 0
    stopped: str | None = None
    last: Progress | None = None
    cw, ch = content_img.size
    for si, st in enumerate(stages):
        h, w = fit_long_side(cw, ch, st.size)
        content_t = to_tensor(_resize(content_img, h, w), device)
        sources = _style_sources(cfg, style_imgs, blend, regions, content_t, h, w, device)
        objective = Objective(
            net,
            content=None if content is None else content_t,
            styles=sources,
            content_layers=content_layers,
            style_layers=cfg.style_layers,
            style_layer_weights=layer_weights,
            weights=weights,
            style_loss=cfg.style_loss,
            prepare=prepare,
            dtype=dtype,
            channels_last=cfg.channels_last,
        )
        if x is None:
            x = _init_image(init, content_t, sources[0].images[0], generator, device)
        else:
            # Each stage starts from the previous result, upsampled bicubically.
            x = F.interpolate(x, size=(h, w), mode="bicubic", align_corners=False)
        x = x.detach().contiguous().requires_grad_(True)
        step = _make_step(cfg, x, objective)
        conv = _Convergence(cfg.tol, cfg.tol_window)
        for k in range(st.iterations):
            if should_stop is not None and should_stop():
                stopped = "cancelled"
                break
            lr = (
                1.0
                if cfg.optimizer == "lbfgs"
                else cfg.lr * cfg.lr_decay ** (k // st.lr_decay_every)
            )
            before = x.detach().clone()
            total, cl, sl, tl = step(lr)
            if not all(math.isfinite(v) for v in (total, cl, sl, tl)) or not bool(
                torch.isfinite(x).all()
            ):
                with torch.no_grad():
                    x.copy_(before)  # the last image whose loss was finite
                stopped = "nonfinite"
                break
            iteration += 1
            converged = conv.update(total)
            last = Progress(
                iteration=iteration,
                total_iterations=total_iters,
                stage=si,
                stages=len(stages),
                stage_iteration=k + 1,
                stage_iterations=st.iterations,
                height=h,
                width=w,
                content_loss=cl,
                style_loss=sl,
                tv_loss=tl,
                total_loss=total,
                lr=lr,
                elapsed=time.perf_counter() - start,
                converged=converged,
            )
            if callback is not None:
                want = preview_every > 0 and iteration % preview_every == 0
                callback(
                    dataclasses.replace(last, image=_output(x, cfg, content_t)) if want else last
                )
            if converged:
                # Later stages still run in full; the totals no longer add up, say so.
                total_iters -= st.iterations - (k + 1)
                break
        if stopped:
            break
    assert x is not None and content_t is not None
    image = _output(x, cfg, content_t)
    record = run_record(
        cfg,
        loaded.fingerprint,
        loaded.origin,
        weights,
        dtype,
        device,
        iteration,
        time.perf_counter() - start,
        stopped,
    )
    image.info["brushwork"] = record
    if callback is not None:
        h, w = x.shape[-2:]
        final = last or Progress(
            iteration=0,
            total_iterations=total_iters,
            stage=0,
            stages=len(stages),
            stage_iteration=0,
            stage_iterations=stages[0].iterations,
            height=h,
            width=w,
            content_loss=math.nan,
            style_loss=math.nan,
            tv_loss=math.nan,
            total_loss=math.nan,
            lr=cfg.lr,
            elapsed=time.perf_counter() - start,
        )
        callback(
            dataclasses.replace(
                final, done=True, stopped=stopped, image=image, total_iterations=total_iters
            )
        )
    return image


#: The backbones' loss weights give the book's balance under the book's optimizer:
#: 500 Adam steps of lr 0.01, which stop far from the optimum. L-BFGS gets close to
#: it, and there the same weights paint over the content (measured on the book's pair
#: at 512 px: the mountains dissolve). Its default content weight is 5x higher: of 1x,
#: 5x and 20x, 5x kept the subject recognizable on the book's pair while still clearly
#: painted; 20x left photos such as the astronaut almost untouched.
CONVERGED_CONTENT_FACTOR = {"adam": 1.0, "lbfgs": 5.0}


#: The meancov loss (squared errors of means and covariances) is about 1.2e4 times the
#: Gram MSE on the same VGG-16 features (measured on the book's pair at 384x256,
#: summed over the default style layers): covariances are not divided by c·h·w
#: as Gram entries are. This factor on the backbone's style weight starts both at the
#: same magnitude. Both scale with the 4th power of the features, so it carries over.
MEANCOV_STYLE_FACTOR = 8e-5


def _output(x: Tensor, cfg: StyleConfig, content: Tensor) -> Image.Image:
    """The image to show: with luminance-only transfer, the result's Y on the content's CbCr."""
    if cfg.preserve_color == "luminance":
        with torch.no_grad():
            rgb = color.combine_luminance_chroma(
                color.luminance(_rgb01(x.detach()).clamp(0, 1)), _rgb01(content).clamp(0, 1)
            )
            return to_image(_normalize(rgb))
    return to_image(x)


def _projector(cfg: StyleConfig, x: Tensor) -> Callable[[], None]:
    """Clamp x to the valid pixel range (0..1 in RGB) in place, if ``cfg.clamp``.

    Without it, L-BFGS's unit steps push pixels far outside 0..1: the optimizer then
    scores an image nobody sees, and the clipped output is much worse (measured on the
    book's pair at 512 px: objective 5.2 unclipped, 44.5 once clipped).
    """
    if not cfg.clamp:
        return lambda: None
    lo = _normalize(torch.zeros(1, 3, 1, 1, device=x.device))
    hi = _normalize(torch.ones(1, 3, 1, 1, device=x.device))

    def project() -> None:
        with torch.no_grad():
            torch.maximum(torch.minimum(x, hi, out=x), lo, out=x)

    return project


def _make_step(
    cfg: StyleConfig, x: Tensor, objective: Objective
) -> Callable[[float], tuple[float, float, float, float]]:
    """One optimizer iteration; returns the weighted losses at the image before the step."""
    project = _projector(cfg, x)
    if cfg.optimizer == "lbfgs":
        # neural-style's L-BFGS: lr 1, no line search, one evaluation per iteration.
        # (A strong-Wolfe search stalls on bf16's noisy loss; stopping is left to --tol.)
        lbfgs = torch.optim.LBFGS(
            [x],
            lr=1.0,
            max_iter=1,
            history_size=cfg.lbfgs_history,
            tolerance_grad=-1.0,
            tolerance_change=-1.0,
        )
        first: list[tuple[float, float, float, float]] = []

        def closure() -> Tensor:
            lbfgs.zero_grad(set_to_none=True)
            total, c, s, t = objective(x)
            total.backward()  # type: ignore[no-untyped-call]
            first.append((total.item(), c.item(), s.item(), t.item()))
            return total

        def lbfgs_step(lr: float) -> tuple[float, float, float, float]:
            first.clear()
            lbfgs.step(closure)  # type: ignore[no-untyped-call]
            project()
            return first[0]

        return lbfgs_step

    adam = torch.optim.Adam([x], lr=cfg.lr)

    def adam_step(lr: float) -> tuple[float, float, float, float]:
        for group in adam.param_groups:
            group["lr"] = lr
        adam.zero_grad(set_to_none=True)
        total, c, s, t = objective(x)
        values = (total.item(), c.item(), s.item(), t.item())
        if math.isfinite(values[0]):
            total.backward()  # type: ignore[no-untyped-call]
            adam.step()
            project()
        return values

    return adam_step


def _load_regions(
    mask: ImageInput | None,
    region_styles: Mapping[int, ImageInput | Sequence[ImageInput]] | None,
    content: Image.Image,
) -> list[tuple[np.ndarray, list[Image.Image]]]:
    """Label masks (bool arrays at the content's size) with their style images."""
    if mask is None:
        if region_styles:
            raise ConfigError("region styles need a --mask image")
        return []
    if not region_styles:
        raise ConfigError("a --mask needs at least one --region-style LABEL=STYLE")
    labels = _label_array(mask)
    if labels.shape != (content.height, content.width):
        raise ConfigError(
            f"the mask is {labels.shape[1]}x{labels.shape[0]} but the content image is "
            f"{content.width}x{content.height}; they must be the same size"
        )
    out = []
    for label, imgs in sorted(region_styles.items()):
        region = labels == label
        if not region.any():
            raise ConfigError(f"the mask has no pixels with label {label}")
        seq = [imgs] if isinstance(imgs, (str, os.PathLike, Image.Image)) else list(imgs)
        out.append((region, [load_image(i, "region style") for i in seq]))
    return out


def _label_array(mask: ImageInput) -> np.ndarray:
    """Region labels: palette indices, or gray values, of the mask image."""
    if isinstance(mask, Image.Image):
        img = mask
    else:
        path = Path(mask)
        load_image(path, "mask")  # validates: exists, decodes, size limit
        img = Image.open(path)
    img = ImageOps.exif_transpose(img) or img
    if img.mode not in ("P", "L", "1", "I", "I;16"):
        img = img.convert("L")
    return np.asarray(img).astype(np.int64)


def _style_sources(
    cfg: StyleConfig,
    style_imgs: Sequence[Image.Image],
    blend: Sequence[float],
    regions: Sequence[tuple[np.ndarray, list[Image.Image]]],
    content: Tensor,
    h: int,
    w: int,
    device: torch.device,
) -> list[StyleSource]:
    def prep(img: Image.Image) -> Tensor:
        t = to_tensor(_resize(img, *style_size(cfg, img, h, w)), device)
        if cfg.preserve_color == "histogram":
            # Recolour the style to the content's colour mean and covariance first.
            t = _normalize(
                color.transfer_mean_cov(_rgb01(t).clamp(0, 1), _rgb01(content).clamp(0, 1))
            )
        elif cfg.preserve_color == "luminance":
            # The paper matches the style's luminance statistics to the content's.
            y = color.match_luminance(
                color.luminance(_rgb01(t).clamp(0, 1)), color.luminance(_rgb01(content).clamp(0, 1))
            )
            t = _normalize(y.clamp(0, 1).expand(-1, 3, -1, -1))
        return t

    if not regions:
        return [StyleSource([prep(i) for i in style_imgs], list(blend))]
    sources = []
    rest = np.ones((content.shape[-2], content.shape[-1]), dtype=bool)
    for region, imgs in regions:
        r = _resize_mask(region, h, w)
        rest &= ~r
        sources.append(
            StyleSource([prep(i) for i in imgs], [1.0] * len(imgs), region=_mask_tensor(r, device))
        )
    if rest.any():
        sources.append(
            StyleSource(
                [prep(i) for i in style_imgs], list(blend), region=_mask_tensor(rest, device)
            )
        )
    # Each region's loss counts in proportion to its area, so the total stays comparable.
    return sources


def _resize_mask(region: np.ndarray, h: int, w: int) -> np.ndarray:
    img = Image.fromarray(region.astype(np.uint8) * 255).resize((w, h), Image.Resampling.NEAREST)
    return np.asarray(img) > 127


def _mask_tensor(region: np.ndarray, device: torch.device) -> Tensor:
    return torch.from_numpy(region.astype(np.float32))[None, None].to(device)


def run_record(
    cfg: StyleConfig,
    fingerprint: str,
    origin: str,
    weights: tuple[float, float, float],
    dtype: torch.dtype,
    device: torch.device,
    iterations: int,
    seconds: float,
    stopped: str | None,
) -> dict[str, Any]:
    """Everything needed to reproduce a result, as JSON-ready data."""
    return {
        "brushwork": __version__,
        "config": cfg.to_dict(),
        "resolved": {
            "content_weight": weights[0],
            "style_weight": weights[1],
            "tv_weight": weights[2],
            "precision": str(dtype).removeprefix("torch."),
            "device": device.type,
        },
        "weights_sha256": fingerprint,
        "weights_origin": origin,
        "torch": torch.__version__,
        "iterations_run": iterations,
        "seconds": round(seconds, 3),
        "stopped": stopped,
    }


__all__ = ["Progress", "ProgressCallback", "Stage", "stylize"]
