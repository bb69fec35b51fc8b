"""Print sizes: peak memory, time and seams of tiled runs (brushwork.tiled).

Each size runs in a fresh process (peak RSS is per process) on the book's photo
with a budget (``--max-memory``), which the plan meets with tiles and a shorter
L-BFGS history at the top scales. A second process scores the result's four
quadrants with the quality metric: a seam or a drift of style between tiles
shows as quadrants that close different shares of the style gap.

    python benchmarks/print.py --size 3072 --max-memory 5
    python benchmarks/print.py --size 4096 --max-memory 8 --out /tmp/print
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
SHARED = ROOT.parents[1] / "shared" / "images"

RUN = """
import json, sys, time
from brushwork import stylize
from brushwork.images import save_image
opts = json.loads(sys.argv[1])
content, style, out = sys.argv[2], sys.argv[3], sys.argv[4]
seen = {}
def on(p):
    seen[p.stage] = {"size": [p.width, p.height], "tiles": p.tiles, "eta": p.eta,
                     "elapsed": p.elapsed}
t0 = time.perf_counter()
img = stylize(content, style, callback=on, **opts)
seconds = time.perf_counter() - t0
save_image(img, __import__("pathlib").Path(out), img.info["brushwork"])
hwm = [line for line in open("/proc/self/status") if line.startswith("VmHWM")][0]
rec = img.info["brushwork"]
print(json.dumps({"rss": int(hwm.split()[1]) * 1024, "seconds": seconds,
                  "estimate": rec["resolved"]["estimated_peak_bytes"],
                  "stages": rec["stages_run"], "progress": seen}))
"""

SCORE = """
import json, sys
from PIL import Image
from brushwork.quality import QualityMeter
Image.MAX_IMAGE_PIXELS = None
out, content, style = sys.argv[1], sys.argv[2], sys.argv[3]
img = Image.open(out).convert("RGB")
photo = Image.open(content).convert("RGB").resize(img.size, Image.LANCZOS)
paint = Image.open(style).convert("RGB")
w, h = img.size
meter = QualityMeter()
quads = {}
for name, (x0, y0) in {"top left": (0, 0), "top right": (w // 2, 0),
                       "bottom left": (0, h // 2), "bottom right": (w // 2, h // 2)}.items():
    box = (x0, y0, x0 + w // 2, y0 + h // 2)
    q = meter.score(img.crop(box), photo.crop(box), paint)
    quads[name] = {"gap": q.gap_closed, "content": q.content_distance}
print(json.dumps(quads))
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", type=int, nargs="+", default=[3072])
    ap.add_argument("--max-memory", type=float, default=None, help="GB")
    ap.add_argument("--style", default=str(SHARED / "styles" / "starry_night.jpg"))
    ap.add_argument("--content", default=str(SHARED / "d2l" / "rainier.jpg"))
    ap.add_argument("--iterations", type=int, default=None)
    ap.add_argument("--out", type=Path, default=Path("/tmp/brushwork-print"))
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    print(f"# {platform.processor() or platform.machine()}, {sys.platform}")
    for size in args.size:
        opts: dict[str, object] = {"size": size}
        if args.max_memory is not None:
            opts["max_memory"] = args.max_memory
        if args.iterations is not None:
            opts["iterations"] = args.iterations
        out = args.out / f"print-{size}.png"
        run = subprocess.run(
            [sys.executable, "-c", RUN, json.dumps(opts), args.content, args.style, str(out)],
            check=True,
            capture_output=True,
            text=True,
        )
        r = json.loads(run.stdout.strip().splitlines()[-1])
        score = subprocess.run(
            [sys.executable, "-c", SCORE, str(out), args.content, args.style],
            check=True,
            capture_output=True,
            text=True,
        )
        quads = json.loads(score.stdout.strip().splitlines()[-1])
        gaps = [q["gap"] for q in quads.values()]
        top = r["stages"][-1]
        print(
            f"size {size}: {top['width']}x{top['height']}, peak RSS {r['rss'] / 1e9:.2f} GB "
            f"(estimate {r['estimate'] / 1e9:.2f} GB, budget {args.max_memory} GB), "
            f"{r['seconds']:.0f} s"
        )
        for st in r["stages"]:
            p = r["progress"].get(str(r["stages"].index(st)), {})
            print(
                f"  stage {st['width']}x{st['height']}: {st['iterations']} its, "
                f"tile {st['tile'] or '-'}, {p.get('tiles', 1)} tiles, "
                f"done at {p.get('elapsed', float('nan')):.0f} s"
            )
        for name, q in quads.items():
            print(f"  {name:12s} gap {q['gap']:.3f} content {q['content']:.3f}")
        print(f"  quadrant gap spread {max(gaps) - min(gaps):.3f} (target < 0.05)")
        (args.out / f"print-{size}.json").write_text(json.dumps({**r, "quadrants": quads}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
