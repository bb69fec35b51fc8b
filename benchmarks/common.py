"""Shared pieces of the benchmark suite: machine facts, the fixed objective, FLOP counts."""

from __future__ import annotations

import json
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image

from brushwork import Progress
from brushwork.backbones import SPECS, build_backbone
from brushwork.balance import calibrated_weights
from brushwork.devices import tune_cpu_allocator
from brushwork.images import atomic_write, load_image
from brushwork.losses import content_loss, gram_matrix, tv_loss
from brushwork.pixels import fit_long_side, resize, style_size, to_image, to_tensor
from child import ROOT, SHARED, cpu_info

CACHE = ROOT / "cache"
STYLE_LAYERS = ("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1")
CONTENT_LAYER = "conv4_3"
CPU = torch.device("cpu")


def machine() -> dict[str, str]:
    return {**cpu_info(), "threads": str(torch.get_num_threads()), "torch": torch.__version__}


@dataclass(frozen=True)
class Scored:
    """One scored preview of a run."""

    iteration: int
    seconds: float  # the run's clock at this iteration, the scoring before it taken off
    values: tuple[float, ...]


def scoring_callback(
    score: Callable[[Image.Image], tuple[float, ...]], points: list[Scored]
) -> Callable[[Progress], None]:
    """A progress callback that scores each preview image into ``points``.

    The time spent scoring is taken off the run's clock: a record's ``elapsed``
    holds the scoring of every earlier preview, not its own. The final record,
    which repeats the last preview's iteration, is not scored twice.
    """
    spent = 0.0

    def on(p: Progress) -> None:
        nonlocal spent
        if p.image is None or (points and points[-1].iteration == p.iteration):
            return
        t = time.perf_counter()
        values = score(p.image)
        points.append(Scored(p.iteration, p.elapsed - spent, values))
        spent += time.perf_counter() - t

    return on


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def vgg16_flops(h: int, w: int, last: str = "conv5_1") -> float:
    """Forward FLOPs (2 per multiply-add) of VGG-16's convolutions up to ``last``.

    Each 3x3 conv costs 2·9·c_in·c_out·h·w at its resolution; a 2x2 pool halves
    h and w (floor). One iteration = forward + input-gradient backward (the same
    count again; weight gradients are never computed), so ~2x this.
    """
    spec = SPECS["vgg16"]
    total, c_in = 0.0, 3
    for name in spec.layer_names():
        if name.startswith("conv"):
            c_out = spec.channels[int(name[4]) - 1]
            total += 2 * 9 * c_in * c_out * h * w
            c_in = c_out
        elif name.startswith("pool"):
            h, w = h // 2, w // 2
        if name == last:
            break
    return total


BOOK_CONTENT = SHARED / "d2l" / "rainier.jpg"
BOOK_STYLE = SHARED / "d2l" / "autumn_oak.jpg"


def book_pair(
    size: int, content_path: Path = BOOK_CONTENT, style_path: Path = BOOK_STYLE
) -> tuple[torch.Tensor, torch.Tensor]:
    """The content and style (default: the book's rainier and autumn_oak) at ``size``.

    Normalized; the style is sized as the engine's defaults size it (same area, own
    aspect ratio).
    """
    content = load_image(content_path)
    style = load_image(style_path)
    h, w = fit_long_side(*content.size, size)
    sh, sw = style_size(style, h, w, fit="area", scale=1.0, min_side=16)
    return to_tensor(resize(content, h, w), CPU), to_tensor(resize(style, sh, sw), CPU)


class FixedObjective:
    """The book's Gram objective with vgg16's default weights, always in fp32 NCHW."""

    def __init__(
        self, size: int, content_path: Path = BOOK_CONTENT, style_path: Path = BOOK_STYLE
    ) -> None:
        self.net, loaded = build_backbone("vgg16", layers=(CONTENT_LAYER, *STYLE_LAYERS))
        w = calibrated_weights(loaded.spec.input_space)
        self.cw, self.sw, self.tw = w.content, w.style, w.tv
        self.content, style = book_pair(size, content_path, style_path)
        with torch.no_grad():
            self.target = self.net(self.content, (CONTENT_LAYER,))[CONTENT_LAYER]
            feats = self.net(style, STYLE_LAYERS)
            self.grams = {n: gram_matrix(feats[n]) for n in STYLE_LAYERS}

    def loss(self, x: torch.Tensor) -> torch.Tensor:
        f = self.net(x, (CONTENT_LAYER, *STYLE_LAYERS))
        c = content_loss(f[CONTENT_LAYER], self.target)
        s = sum(torch.mean((gram_matrix(f[n]) - self.grams[n]) ** 2) for n in STYLE_LAYERS)
        return self.cw * c + self.sw * s + self.tw * tv_loss(x)

    def value(self, x: torch.Tensor) -> float:
        """Objective of the image a user gets from x: clipped to the valid range, 8-bit.

        Resized to this objective's size first if needed.
        """
        x = to_tensor(to_image(x), CPU)
        if x.shape[-2:] != self.content.shape[-2:]:
            x = torch.nn.functional.interpolate(
                x, size=self.content.shape[-2:], mode="bicubic", align_corners=False
            )
        with torch.no_grad():
            return float(self.loss(x))


def tune_allocator() -> None:
    """The engine's allocator setting (brushwork.devices.tune_cpu_allocator)."""
    tune_cpu_allocator()


def load_json(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.is_file() else None


def save_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, json.dumps(data, indent=1).encode())


__all__ = ["Image"]
