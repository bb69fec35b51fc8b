"""Video benchmark: flicker, style kept, and time per frame, with and without the temporal loss.

A pan over a real photo (rainier; the frames are a moving window, so the true
motion is known) is stylized with ``brushwork.video`` at each temporal weight
given, and each result is measured:

* flicker: mean over frames t ≥ 2 of the masked mean |out_t − warp(out_{t−1})|,
  in 8-bit levels, with the DIS flow and Ruder's consistency mask of the
  content frames (what a viewer sees as flicker: change not explained by motion);
* style gap closed per frame (brushwork.quality), relative to the weight-0 run,
  whose frames are each a single-image run at the same settings;
* seconds of frame 1 and of the later frames (after a warm-up run).

    python benchmarks/video.py                      # 512 px, 16 frames (the real run)
    python benchmarks/video.py --size 96 --frames 4 --iterations 8   # a smoke test
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from brushwork.config import StyleConfig
from brushwork.engine import load_network, stylize
from brushwork.quality import QualityMeter
from brushwork.video import DEFAULT_TEMPORAL_WEIGHT
from brushwork.video.flow import pair_flow, to_gray, warp
from brushwork.video.run import stylize_video
from brushwork.video.synth import pan
from common import SHARED, machine


def flicker(frames: list[np.ndarray], outputs: list[np.ndarray]) -> float:
    """Mean over t ≥ 2 of Σ c |out_t − warp(out_{t−1})| / (3 Σ c), in 0..255 levels."""
    values = []
    for t in range(1, len(frames)):
        pair = pair_flow(to_gray(frames[t]), to_gray(frames[t - 1]))
        prev = warp(outputs[t - 1].astype(np.float32), pair.backward)
        diff = np.abs(outputs[t].astype(np.float32) - prev).mean(axis=2)
        values.append(float((diff * pair.mask).sum() / max(pair.mask.sum(), 1.0)))
    return float(np.mean(values))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=512, help="long side of the frames")
    ap.add_argument("--frames", type=int, default=16)
    ap.add_argument("--iterations", type=int, default=None, help="per scale (default: config)")
    ap.add_argument(
        "--weights",
        default=f"0,{DEFAULT_TEMPORAL_WEIGHT:g}",
        help="comma-separated temporal weights; 0 (per-frame) must be first",
    )
    ap.add_argument(
        "--long-term", action="store_true", help="also run the default weight long-term"
    )
    ap.add_argument(
        "--frame-iterations", type=int, default=None, help="later frames (default: the driver's)"
    )
    ap.add_argument("--style", default="styles/starry_night.jpg", help="under ../shared/images")
    args = ap.parse_args()
    weights = [float(w) for w in args.weights.split(",")]
    if weights[0] != 0:
        raise SystemExit("the first weight must be 0: the per-frame baseline")

    photo = Image.open(SHARED / "d2l" / "rainier.jpg").convert("RGB")
    size = (args.size, round(args.size * 2 / 3))
    # A window a third larger than the frame, panned right and down by about
    # 1 % of the width per frame, a typical slow camera pan.
    scale = 1.4 * args.size / photo.width
    photo = photo.resize((round(photo.width * scale), round(photo.height * scale)))
    step = (args.size / 100, args.size / 300)
    frames = pan(photo, args.frames, size, step, origin=(photo.width * 0.05, photo.height * 0.1))
    style = Image.open(SHARED / args.style).convert("RGB")
    overrides = {} if args.iterations is None else {"iterations": args.iterations}
    cfg = StyleConfig(size=args.size, **overrides)

    network = load_network(cfg)
    # Warm-up: the first call pays one-time costs (allocator, kernels) that are not frame 1's.
    stylize(Image.fromarray(frames[0]), style, config=cfg, network=network, size=64, scales=1,
            iterations=2)  # fmt: skip
    meter = QualityMeter()
    rows = []
    with tempfile.TemporaryDirectory(prefix="brushwork-video-bench-") as tmp:
        src = Path(tmp) / "pan"
        src.mkdir()
        for i, f in enumerate(frames):
            Image.fromarray(f).save(src / f"{i:04d}.png")
        runs = [(w, False) for w in weights]
        if args.long_term:
            runs.append((DEFAULT_TEMPORAL_WEIGHT, True))
        for w, long_term in runs:
            out = Path(tmp) / f"out-{w:g}-{int(long_term)}/"
            t0 = time.perf_counter()
            result = stylize_video(
                src, style, str(out) + "/", config=cfg, temporal_weight=w, long_term=long_term,
                network=network, frame_iterations=args.frame_iterations,
            )  # fmt: skip
            wall = time.perf_counter() - t0
            outs = [np.asarray(Image.open(out / f"{i:06d}.png")) for i in range(1, args.frames + 1)]
            size_out = Image.fromarray(outs[0]).size
            content = [np.asarray(Image.fromarray(f).resize(size_out)) for f in frames]
            gaps = [
                meter.score(Image.fromarray(o), Image.fromarray(c), style).gap_closed
                for o, c in zip(outs, content, strict=True)
            ]
            seconds = [result.first_seconds or 0.0, *result.later_seconds]
            if w == 0:
                # Per-frame runs: every frame is a "first" frame; report their mean.
                seconds = [wall / args.frames]
            rows.append((w, long_term, flicker(content, outs), float(np.mean(gaps)), seconds))

    base_flicker, base_gap = rows[0][2], rows[0][3]
    print(f"machine: {machine()}")
    print(f"pan: {args.frames} frames of {size[0]}x{size[1]}, step {step[0]:.2f},{step[1]:.2f} px; "
          f"style {args.style}; iterations per scale {cfg.iterations}, "
          f"later frames {args.frame_iterations or 'default'}")  # fmt: skip
    print()
    print("| temporal weight | flicker (8-bit levels) | × per-frame | style gap closed | "
          "× per-frame | frame 1 s | later frames s | later / first |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    for w, long_term, flick, gap, secs in rows:
        name = f"{w:g}" + (" long-term" if long_term else "") + (" (per-frame)" if w == 0 else "")
        first = secs[0]
        later = float(np.mean(secs[1:])) if len(secs) > 1 else float("nan")
        ratio = later / first if len(secs) > 1 else float("nan")
        print(f"| {name} | {flick:.2f} | {flick / base_flicker:.2f} | {gap:.3f} | "
              f"{gap / base_gap:.2f} | {first:.1f} | {later:.1f} | {ratio:.2f} |")  # fmt: skip


if __name__ == "__main__":
    main()
