"""Shared pieces of the benchmark suite: machine facts, the fixed objective, FLOP counts."""

from __future__ import annotations

import json
import platform
import resource
from pathlib import Path

import torch
from PIL import Image

from brushwork.backbones import SPECS, build_backbone
from brushwork.balance import calibrated_weights
from brushwork.devices import tune_cpu_allocator
from brushwork.images import atomic_write, load_image
from brushwork.losses import content_loss, gram_matrix, tv_loss
from brushwork.pixels import fit_long_side, resize, style_size, to_image, to_tensor

ROOT = Path(__file__).resolve().parent
SHARED = ROOT.parents[1] / "shared" / "images"
CACHE = ROOT / "cache"
STYLE_LAYERS = ("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1")
CONTENT_LAYER = "conv4_3"
CPU = torch.device("cpu")


def machine() -> dict[str, str]:
    flags = ""
    family = ""
    model = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and not model:
                model = line.split(":", 1)[1].strip()
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
            if line.startswith("cpu family"):
                family = line.split(":", 1)[1].strip()
            if line.startswith("flags"):
                wanted = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile", "avx512_vnni")
                have = set(line.split(":", 1)[1].split())
                flags = " ".join(f for f in wanted if f in have)
                break
    except OSError:
        pass
    return {
        "cpu": model,
        "family": family,
        "flags": flags,
        "threads": str(torch.get_num_threads()),
        "torch": torch.__version__,
        "python": platform.python_version(),
    }


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
