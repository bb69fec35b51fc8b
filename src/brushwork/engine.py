"""The optimization loop: one entry point, :func:`stylize`.

The composite image is the only parameter. It lives in the book's space,
ImageNet mean/std-normalized RGB, as a contiguous float32 tensor (L-BFGS and
Adam state stay fp32); the backbone converts it to its own input and memory
layout inside the forward pass.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Unpack

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from brushwork import __version__
from brushwork.backbones import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    VGGFeatures,
    build_backbone,
    check_layers,
    get_spec,
)
from brushwork.config import Stage, StyleConfig, StyleOptions
from brushwork.errors import ConfigError
from brushwork.images import ImageInput, load_image
from brushwork.losses import ContentLoss, StyleLoss, tv_loss


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
    done: bool = False
    stopped: str | None = None  # None, "cancelled" or "nonfinite" on the final record
    image: Image.Image | None = None


ProgressCallback = Callable[[Progress], None]


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
        return torch.float16
    if name != "auto":
        raise ConfigError(f"unknown precision {name!r} (choose from auto, fp32, bf16, fp16)")
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
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
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return ((x - mean) / std).contiguous().to(device)


def to_image(x: Tensor) -> Image.Image:
    """(1, 3, h, w) normalized -> PIL RGB, clipped to the valid range (the book's postprocess)."""
    x = x.detach().to("cpu", torch.float32)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    rgb = (x * std + mean).clamp(0, 1)[0].permute(1, 2, 0).numpy()
    return Image.fromarray((rgb * 255.0 + 0.5).astype(np.uint8))


def style_size(cfg: StyleConfig, style: Image.Image, h: int, w: int) -> tuple[int, int]:
    """Size of the style image for an (h, w) output: same area, own aspect ratio
    (``area``, never upscaled beyond its own pixels), or exactly (h, w) (``stretch``)."""
    if cfg.style_fit == "stretch":
        return h, w
    sw, sh = style.size
    scale = min(1.0, math.sqrt(h * w / (sw * sh)))
    return max(16, round(sh * scale)), max(16, round(sw * scale))


class _Objective:
    """Weighted content + style + TV loss of one stage, with targets fixed at construction."""

    def __init__(
        self,
        net: VGGFeatures,
        content: Tensor,
        style: Tensor,
        *,
        content_layers: tuple[str, ...],
        style_layers: tuple[str, ...],
        weights: tuple[float, float, float],
        autocast: Callable[[], Any],
        channels_last: bool,
    ) -> None:
        self.net = net
        self.content_layers = content_layers
        self.style_layers = style_layers
        self.layers = tuple(dict.fromkeys(content_layers + style_layers))
        self.cw, self.sw, self.tw = weights
        self.autocast = autocast
        self.channels_last = channels_last
        # Targets are computed once, without grad.
        with torch.no_grad():
            cf = self.features(content, content_layers)
            sf = self.features(style, style_layers)
            self.content_losses = {n: ContentLoss(cf[n]) for n in content_layers}
            self.style_losses = {n: StyleLoss.from_features(sf[n]) for n in style_layers}

    def features(self, x: Tensor, layers: tuple[str, ...]) -> dict[str, Tensor]:
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with self.autocast():
            feats: dict[str, Tensor] = self.net(x, layers)
        return feats

    def __call__(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Return (total, content, style, tv), each weighted, as fp32 scalars."""
        feats = self.features(x, self.layers)
        c = sum((m(feats[n]) for n, m in self.content_losses.items()), x.new_zeros(()))
        s = sum((m(feats[n]) for n, m in self.style_losses.items()), x.new_zeros(()))
        c = c * self.cw
        s = s * self.sw
        t = tv_loss(x) * self.tw
        return c + s + t, c, s, t


def stylize(
    content: ImageInput,
    style: ImageInput,
    *,
    config: StyleConfig | None = None,
    callback: ProgressCallback | None = None,
    should_stop: Callable[[], bool] | None = None,
    preview_every: int = 0,
    **options: Unpack[StyleOptions],
) -> Image.Image:
    """Paint ``content`` in the style of ``style`` (Gatys et al., as the d2l book teaches it).

    Args:
        content, style: paths or PIL images.
        config: base configuration; ``options`` override its fields.
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
    content_layers = cfg.content_layers or spec.content_layers
    check_layers(spec, content_layers + cfg.style_layers)
    device = resolve_device(cfg.device)
    dtype = resolve_precision(cfg.precision, device)
    content_img = load_image(content, "content")
    style_img = load_image(style, "style")

    torch.manual_seed(cfg.seed)
    net, loaded = build_backbone(
        cfg.model,
        layers=content_layers + cfg.style_layers,
        weights=cfg.weights,
        pooling=cfg.pooling,
    )
    net = net.to(device)
    if cfg.channels_last:
        net = net.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    defaults = loaded.spec.loss_weights
    weights = (
        defaults.content if cfg.content_weight is None else cfg.content_weight,
        defaults.style if cfg.style_weight is None else cfg.style_weight,
        defaults.tv if cfg.tv_weight is None else cfg.tv_weight,
    )

    def autocast() -> Any:
        return torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32)

    stages = cfg.resolved_stages()
    total_iters = sum(st.iterations for st in stages)
    start = time.perf_counter()
    x: Tensor | None = None
    iteration = 0
    stopped: str | None = None
    last: Progress | None = None
    cw, ch = content_img.size
    for si, st in enumerate(stages):
        h, w = fit_long_side(cw, ch, st.size)
        c = to_tensor(_resize(content_img, h, w), device)
        s = to_tensor(_resize(style_img, *style_size(cfg, style_img, h, w)), device)
        objective = _Objective(
            net,
            c,
            s,
            content_layers=tuple(content_layers),
            style_layers=cfg.style_layers,
            weights=weights,
            autocast=autocast,
            channels_last=cfg.channels_last,
        )
        # Each stage starts from the previous result, upsampled bicubically.
        x = (
            c.clone()
            if x is None
            else F.interpolate(x, size=(h, w), mode="bicubic", align_corners=False)
        )
        x = x.detach().contiguous().requires_grad_(True)
        opt = torch.optim.Adam([x], lr=cfg.lr)
        for k in range(st.iterations):
            if should_stop is not None and should_stop():
                stopped = "cancelled"
                break
            lr = cfg.lr * cfg.lr_decay ** (k // st.lr_decay_every)
            for group in opt.param_groups:
                group["lr"] = lr
            opt.zero_grad(set_to_none=True)
            total, cl, sl, tl = objective(x)
            if not torch.isfinite(total):
                # x itself is still the last image whose loss was finite.
                stopped = "nonfinite"
                break
            total.backward()  # type: ignore[no-untyped-call]
            total, cl, sl, tl = total.detach(), cl.detach(), sl.detach(), tl.detach()
            opt.step()
            iteration += 1
            last = Progress(
                iteration=iteration,
                total_iterations=total_iters,
                stage=si,
                stages=len(stages),
                stage_iteration=k + 1,
                stage_iterations=st.iterations,
                height=h,
                width=w,
                content_loss=cl.item(),
                style_loss=sl.item(),
                tv_loss=tl.item(),
                total_loss=total.item(),
                lr=lr,
                elapsed=time.perf_counter() - start,
            )
            if callback is not None:
                want = preview_every > 0 and iteration % preview_every == 0
                callback(dataclasses.replace(last, image=to_image(x)) if want else last)
        if stopped:
            break
    assert x is not None
    image = to_image(x)
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
        callback(dataclasses.replace(final, done=True, stopped=stopped, image=image))
    return image


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
