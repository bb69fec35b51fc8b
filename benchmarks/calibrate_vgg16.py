"""Calibrate the Caffe VGG-16's default loss weights against the d2l book's result.

The book's weights (content 1, style 1e3, TV 10) were tuned on torchvision's
VGG-19, whose input is mean/std-normalized. The Caffe VGG-16 sees 0..255 input,
so its features are about k times larger: content loss scales with k², Gram
style loss with k⁴. Weights (1/k², 1e3/k⁴, 10) restore the book's balance.

k is found empirically: run the book's first stage (150x225, 500 Adam
iterations) on the book's own pair for several k, and measure the raw
(unweighted) content and style losses of each result with VGG-16. The book's
published result (downsampled to the same size) is measured the same way; the k
whose result lands closest to it (in log space) is the calibration.

Needs ../shared/images/d2l (not shipped with brushwork). Run:
    python benchmarks/calibrate_vgg16.py
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

import torch

from brushwork.backbones import build_backbone
from brushwork.engine import stylize
from brushwork.images import load_image
from brushwork.losses import content_loss, gram_matrix, style_loss, tv_loss
from brushwork.pixels import resize, to_tensor

SHARED = Path(__file__).resolve().parents[2] / "shared" / "images" / "d2l"
H, W = 150, 225
STYLE_LAYERS = ("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1")


def raw_losses(net, x, content_feats, style_grams) -> tuple[float, float, float]:
    with torch.no_grad():
        f = net(x, ("conv4_3",) + STYLE_LAYERS)
        c = float(content_loss(f["conv4_3"], content_feats))
        s = sum(float(style_loss(f[n], style_grams[n])) for n in STYLE_LAYERS)
        return c, s, float(tv_loss(x))


def main() -> int:
    rainier = load_image(SHARED / "rainier.jpg")
    oak = load_image(SHARED / "autumn_oak.jpg")
    book = load_image(SHARED / "neural-style.jpg")
    net, _ = build_backbone("vgg16", layers=("conv4_3",) + STYLE_LAYERS)
    c = to_tensor(resize(rainier, H, W), torch.device("cpu"))
    s = to_tensor(resize(oak, H, W), torch.device("cpu"))
    with torch.no_grad():
        cf = net(c, ("conv4_3",))["conv4_3"]
        sg = {n: gram_matrix(v) for n, v in net(s, STYLE_LAYERS).items()}
    ref = raw_losses(net, to_tensor(resize(book, H, W), torch.device("cpu")), cf, sg)
    start = raw_losses(net, c, cf, sg)
    print(f"content image : content {start[0]:.4g}  style {start[1]:.4g}  tv {start[2]:.4g}")
    print(f"book's result : content {ref[0]:.4g}  style {ref[1]:.4g}  tv {ref[2]:.4g}")
    best = None
    for k in [float(a) for a in sys.argv[1:]] or [20.0, 30.0, 45.0, 60.0, 90.0]:
        t = time.perf_counter()
        img = stylize(
            rainier,
            oak,
            size=W,
            iterations=500,
            lr_decay_every=200,
            style_fit="stretch",
            content_weight=1 / k**2,
            style_weight=1e3 / k**4,
            tv_weight=10.0,
            precision="fp32",
        )
        got = raw_losses(net, to_tensor(img, torch.device("cpu")), cf, sg)
        dist = math.hypot(math.log(got[0] / ref[0]), math.log(got[1] / ref[1]))
        print(
            f"k={k:5.1f}: content {got[0]:.4g}  style {got[1]:.4g}  tv {got[2]:.4g}  "
            f"log-distance to book {dist:.3f}  ({time.perf_counter() - t:.0f} s)"
        )
        img.save(f"/tmp/calib_k{k:g}.png")
        if best is None or dist < best[0]:
            best = (dist, k)
    assert best is not None
    k = best[1]
    print(f"best k = {k:g}: content_weight {1 / k**2:.3g}, style_weight {1e3 / k**4:.3g}, tv 10")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
