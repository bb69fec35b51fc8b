"""Render the video demo: a 5-second clip made from a real photo, stylized with and without
the temporal loss, as frame strips (docs/gallery/video-strip.jpg) and GIFs.

    python docs/make_video_strip.py                 # 5 s at 6 fps, 256 px -> docs/gallery/
    python docs/make_video_strip.py --out /tmp/demo --seconds 1   # a quick look

The clip: a slow camera pan over Mount Rainier with a round patch of autumn
leaves crossing it (it covers and uncovers the mountain: occlusions).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from brushwork.config import StyleConfig
from brushwork.engine import load_network
from brushwork.video.run import DEFAULT_TEMPORAL_WEIGHT, stylize_video
from brushwork.video.synth import moving_object

ROOT = Path(__file__).resolve().parent
SHARED = ROOT.parents[1] / "shared" / "images"


def make_clip(seconds: float, fps: int, size: int) -> list[np.ndarray]:
    n = round(seconds * fps)
    w, h = size, round(size * 2 / 3)
    photo = Image.open(SHARED / "d2l" / "rainier.jpg").convert("RGB")
    scale = 1.5 * w / photo.width
    photo = photo.resize((round(photo.width * scale), round(photo.height * scale)))
    leaves = Image.open(SHARED / "d2l" / "autumn_oak.jpg").convert("RGB")
    side = h // 3
    frames, _ = moving_object(
        photo,
        leaves,
        n,
        (w, h),
        box=(side, side),
        start=(-side // 2, h // 2),
        step=(max(1, round((w + side) / n)), -max(1, round(h / (4 * n)))),
        pan_step=(w / 2 / n, h / 8 / n),  # half a frame's width over the clip
        round_shape=True,
    )
    return frames


def strip(rows: list[list[Image.Image]], labels: list[str]) -> Image.Image:
    w, h = rows[0][0].size
    pad, label_w = 4, 120
    out = Image.new("RGB", (label_w + len(rows[0]) * (w + pad), len(rows) * (h + pad)), "white")
    draw = ImageDraw.Draw(out)
    for r, (row, label) in enumerate(zip(rows, labels, strict=True)):
        draw.text((4, r * (h + pad) + h // 2 - 6), label, fill="black")
        for c, img in enumerate(row):
            out.paste(img, (label_w + c * (w + pad), r * (h + pad)))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "gallery")
    ap.add_argument("--work", type=Path, default=Path("/tmp/brushwork-video-demo"))
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--fps", type=int, default=6)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--iterations", type=int, default=StyleConfig().iterations)
    ap.add_argument("--style", default="styles/starry_night.jpg")
    args = ap.parse_args()
    frames = make_clip(args.seconds, args.fps, args.size)
    src = args.work / "clip"
    src.mkdir(parents=True, exist_ok=True)
    for i, f in enumerate(frames):
        Image.fromarray(f).save(src / f"{i:04d}.png")
    style = Image.open(SHARED / args.style).convert("RGB")
    cfg = StyleConfig(size=args.size, iterations=args.iterations)
    network = load_network(cfg)
    # Eight consecutive frames from the middle of the clip: flicker is frame-to-frame.
    mid = len(frames) // 2 - 4
    pick = range(mid, mid + 8)
    results: dict[float, list[Image.Image | None]] = {}
    for w in (0.0, DEFAULT_TEMPORAL_WEIGHT):
        out = args.work / f"w{w:g}.mp4"
        # Per-frame results do not depend on other frames: only the strip's are made.
        cut = {"start": mid / args.fps, "duration": 8 / args.fps} if w == 0 else {}
        stylize_video(
            src, style, out, config=cfg, temporal_weight=w, fps=args.fps, network=network, **cut
        )
        store = args.work / f"w{w:g}.mp4.frames"
        images = [Image.open(p).convert("RGB") for p in sorted(store.glob("*.png"))]
        results[w] = [None] * mid + images if w == 0 else images
    size = results[DEFAULT_TEMPORAL_WEIGHT][0].size
    rows = [
        [Image.fromarray(frames[i]).resize(size) for i in pick],
        [results[0.0][i] for i in pick],
        [results[DEFAULT_TEMPORAL_WEIGHT][i] for i in pick],
    ]
    labels = ["input", "per frame (-w 0)", f"temporal (-w {DEFAULT_TEMPORAL_WEIGHT:g})"]
    args.out.mkdir(parents=True, exist_ok=True)
    strip(rows, labels).save(args.out / "video-strip.jpg", quality=90)
    for w, name in ((0.0, "video-per-frame.gif"), (DEFAULT_TEMPORAL_WEIGHT, "video-temporal.gif")):
        imgs = [results[w][i] for i in pick]
        imgs[0].save(
            args.work / name,
            save_all=True,
            append_images=imgs[1:],
            duration=1000 // args.fps,
            loop=0,
        )
    print(f"wrote {args.out / 'video-strip.jpg'} and GIFs in {args.work}")


if __name__ == "__main__":
    main()
