"""Peak memory of real runs against the estimate that gates them (brushwork.plan).

Each run is a fresh process (peak RSS is per process): the default path on the
book's pair at several sizes and precisions. Short runs keep only a few L-BFGS
history entries, so they measure the model's base and activation terms; one
full default run (200 iterations, history full) checks the history term.

    python benchmarks/memory.py              # prints the table, measured / estimated
    python benchmarks/memory.py --fit        # also fits the activation bytes per pixel
    python benchmarks/memory.py --fit --style-loss sliced --precisions bf16 --no-full
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping

from child import SHARED, run_child

D2L = SHARED / "d2l"

CHILD = """
import json, sys, torch
from brushwork import stylize
from brushwork.config import StyleConfig
from brushwork.devices import resolve_precision
from brushwork.plan import estimate_peak_bytes
from brushwork.pixels import fit_long_side
from PIL import Image
from child import vm_hwm_bytes
opts = json.loads(sys.argv[1])
content, style = sys.argv[2], sys.argv[3]
img = stylize(content, style, **opts)
cfg = StyleConfig(**opts)
dev = torch.device("cpu")
h, w = img.height, img.width
est = estimate_peak_bytes(h, w, cfg, resolve_precision(cfg.precision, dev), dev)
print(json.dumps({"h": h, "w": w, "rss": vm_hwm_bytes(), "estimate": est}))
"""


def measure(opts: Mapping[str, object]) -> dict[str, int]:
    return run_child(
        CHILD,
        json.dumps(opts),
        str(D2L / "rainier.jpg"),
        str(D2L / "autumn_oak.jpg"),
        quiet=True,
    )


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--fit", action="store_true", help="fit bytes per pixel from the short runs")
    p.add_argument("--sizes", default="256,512,1024,1536")
    p.add_argument("--precisions", default="bf16,fp32")
    p.add_argument("--style-loss", default="gram", help="the short runs' style loss")
    p.add_argument("--no-full", action="store_true", help="skip the full-history run")
    a = p.parse_args()
    rows = []
    for precision in a.precisions.split(","):
        for size in map(int, a.sizes.split(",")):
            opts = {"size": size, "iterations": 3, "precision": precision}
            opts["style_loss"] = a.style_loss
            r = measure(opts)
            rows.append((f"{precision} {a.style_loss} {r['w']}x{r['h']}, 3 iterations", r, opts))
            print(rows[-1][0], r, flush=True)
    if not a.no_full:
        full = {"size": 512, "iterations": 200}
        r = measure(full)
        rows.append((f"default {r['w']}x{r['h']}, 200 iterations (history full)", r, full))
    print("| run | peak RSS | estimate | measured / estimate |")
    print("|---|---|---|---|")
    for name, r, _ in rows:
        print(
            f"| {name} | {r['rss'] / 1e9:.2f} GB | {r['estimate'] / 1e9:.2f} GB "
            f"| {r['rss'] / r['estimate']:.2f} |"
        )
    if a.fit:
        for precision in a.precisions.split(","):
            pts = [
                (r["h"] * r["w"], r["rss"]) for n, r, o in rows if o.get("precision") == precision
            ]
            (p1, m1), (p2, m2) = pts[0], pts[-1]
            slope = (m2 - m1) / (p2 - p1)
            print(
                f"{precision}: {slope:.0f} bytes/pixel, intercept {(m1 - slope * p1) / 1e9:.2f} GB"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
