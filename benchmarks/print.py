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
from pathlib import Path
from typing import Any

from child import SHARED, cpu_line, run_child

RUN = """
import json, sys, time
from brushwork import stylize
from brushwork.images import save_image
from child import vm_hwm_bytes
opts = json.loads(sys.argv[1])
content, style, out = sys.argv[2], sys.argv[3], sys.argv[4]
seen = {}
def on(p):
    seen[p.stage] = {"size": [p.width, p.height], "tiles": p.tiles, "eta": p.eta,
                     "elapsed": p.elapsed}
    # A live line per iteration on stderr, so a long print shows where it is.
    eta = "-" if p.eta is None else f"{p.eta:.0f} s"
    print(f"  [{p.elapsed:.0f} s] scale {p.stage + 1}/{p.stages} {p.width}x{p.height}, "
          f"iteration {p.stage_iteration}/{p.stage_iterations}, {p.tiles} tiles, ETA {eta}",
          file=sys.stderr, flush=True)
t0 = time.perf_counter()
img = stylize(content, style, callback=on, **opts)
seconds = time.perf_counter() - t0
save_image(img, __import__("pathlib").Path(out), img.info["brushwork"])
rec = img.info["brushwork"]
print(json.dumps({"rss": vm_hwm_bytes(), "seconds": seconds,
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
    ap.add_argument(
        "--compare-untiled",
        action="store_true",
        help="also run each size with no budget (untiled where the machine's memory "
        "allows it: 2048 px on 24 GB) and compare quadrants and pixels",
    )
    ap.add_argument("--crops", type=Path, default=None, help="write 100%% crops here (.jpg)")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    print(f"# {cpu_line()}")
    for size in args.size:
        runs = [("tiled", args.max_memory)]
        if args.compare_untiled:
            runs.append(("untiled", None))
        results = {}
        for label, budget in runs:
            opts: dict[str, object] = {"size": size}
            if budget is not None:
                opts["max_memory"] = budget
            if args.iterations is not None:
                opts["iterations"] = args.iterations
            out = args.out / f"print-{size}-{label}.png"
            r = run_one(opts, args.content, args.style, out)
            results[label] = (out, r)
            report(size, label, budget, r)
        if args.compare_untiled:
            compare(results["tiled"][0], results["untiled"][0], args.crops)
    return 0


def run_one(opts: dict[str, object], content: str, style: str, out: Path) -> dict[str, object]:
    r = run_child(RUN, json.dumps(opts), content, style, str(out))
    r["quadrants"] = run_child(SCORE, str(out), content, style, quiet=True)
    out.with_suffix(".bench.json").write_text(json.dumps(r))
    return r


def report(size: int, label: str, budget: float | None, r: dict[str, Any]) -> None:
    top = r["stages"][-1]
    print(
        f"size {size} {label}: {top['width']}x{top['height']}, peak RSS {r['rss'] / 1e9:.2f} GB "
        f"(estimate {r['estimate'] / 1e9:.2f} GB, budget {budget} GB), {r['seconds']:.0f} s"
    )
    for i, st in enumerate(r["stages"]):
        p = r["progress"].get(str(i), {})
        print(
            f"  stage {st['width']}x{st['height']}: {st['iterations']} its, "
            f"tile {st['tile'] or '-'}, {p.get('tiles', 1)} tiles, "
            f"done at {p.get('elapsed', float('nan')):.0f} s"
        )
    quads = r["quadrants"]
    for name, q in quads.items():
        print(f"  {name:12s} gap {q['gap']:.3f} content {q['content']:.3f}")
    gaps = [q["gap"] for q in quads.values()]
    print(f"  quadrant gap spread {max(gaps) - min(gaps):.3f}")


def compare(tiled: Path, untiled: Path, crops: Path | None) -> None:
    import numpy as np
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = None
    a, b = Image.open(tiled).convert("RGB"), Image.open(untiled).convert("RGB")
    t = json.loads(tiled.with_suffix(".bench.json").read_text())["quadrants"]
    u = json.loads(untiled.with_suffix(".bench.json").read_text())["quadrants"]
    worst = max(abs(t[k]["gap"] - u[k]["gap"]) for k in t)
    diff = np.abs(np.asarray(a, dtype=float) - np.asarray(b, dtype=float)).mean()
    print(
        f"  tiled vs untiled: largest quadrant gap difference {worst:.3f}, "
        f"mean pixel difference {diff:.1f}/255"
    )
    if crops is not None:
        w, h = a.size
        side = 384
        boxes = [(w // 2 - side // 2, h // 2 - side // 2), (w // 4, h // 4), (3 * w // 4, h // 3)]
        sheet = Image.new("RGB", (2 * side + 8, len(boxes) * (side + 8)), "white")
        for i, (x0, y0) in enumerate(boxes):
            box = (x0, y0, x0 + side, y0 + side)
            sheet.paste(a.crop(box), (0, i * (side + 8)))
            sheet.paste(b.crop(box), (side + 8, i * (side + 8)))
        sheet.save(crops, quality=90)
        print(f"  100% crops (tiled | untiled) in {crops}")


if __name__ == "__main__":
    raise SystemExit(main())
