"""The optimizer at a print's top scale: L-BFGS history length against Adam, on quality and memory.

At print sizes L-BFGS's history (two image-size vectors per entry) is what the
memory plan cuts first (brushwork.plan). This measures what the cut costs: every
variant refines the same coarse result (the default run at half the size) for the
same number of iterations at the top size, each in a fresh process (peak RSS is
per process), and is scored with the quality metric at the output's size.

    python benchmarks/top_scale.py                      # 2048 px, 20 iterations
    python benchmarks/top_scale.py --size 2048 --variants lbfgs:100,lbfgs:5,adam:0.02
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from child import SHARED, cpu_line, run_child

RUN = """
import json, sys, time
from PIL import Image
from brushwork import stylize
from brushwork.quality import QualityMeter
from child import vm_hwm_bytes
opts, content, style, start = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
t0 = time.perf_counter()
img = stylize(content, style, start=start, scales=1, **opts)
seconds = time.perf_counter() - t0
rss = vm_hwm_bytes()  # before scoring, which loads its own network
q = QualityMeter().score(img, Image.open(content).convert("RGB"), Image.open(style).convert("RGB"))
print(json.dumps({"rss": rss, "seconds": seconds, "gap": q.gap_closed,
                  "content": q.content_distance,
                  "estimate": img.info["brushwork"]["resolved"]["estimated_peak_bytes"]}))
"""


def variant_options(spec: str, iterations: int) -> dict[str, object]:
    """``lbfgs:H`` (history H) or ``adam:LR``."""
    kind, _, value = spec.partition(":")
    if kind == "lbfgs":
        return {"optimizer": "lbfgs", "lbfgs_history": int(value), "iterations": iterations}
    return {
        "optimizer": "adam",
        "lr": float(value),
        "iterations": iterations,
        "lr_decay_every": 10 * iterations,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", type=int, default=2048)
    ap.add_argument("--iterations", type=int, default=20)
    ap.add_argument("--variants", default="lbfgs:100,lbfgs:20,lbfgs:5,adam:0.02,adam:0.05")
    ap.add_argument("--style", default=str(SHARED / "styles" / "starry_night.jpg"))
    ap.add_argument("--content", default=str(SHARED / "d2l" / "rainier.jpg"))
    ap.add_argument("--out", type=Path, default=Path("/tmp/brushwork-top-scale"))
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    start = a.out / f"start-{a.size // 2}.png"
    if not start.exists():
        from brushwork import stylize

        stylize(a.content, a.style, size=a.size // 2).save(start)
    print(
        f"# {cpu_line()}; start: the default run at "
        f"{a.size // 2} px; {a.iterations} iterations at {a.size} px"
    )
    print("| variant | gap closed | content distance | peak RSS GB | estimate GB | s |")
    print("|---|---|---|---|---|---|")
    for spec in a.variants.split(","):
        opts = {"size": a.size, **variant_options(spec, a.iterations)}
        r = run_child(RUN, json.dumps(opts), a.content, a.style, str(start))
        print(
            f"| {spec} | {r['gap']:.3f} | {r['content']:.3f} | {r['rss'] / 1e9:.2f} "
            f"| {r['estimate'] / 1e9:.2f} | {r['seconds']:.0f} |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
