"""Seconds per iteration and peak memory of brushwork's optimization step.

Each (size, path) runs in a fresh subprocess so that peak RSS is its own.
    python benchmarks/bench_iteration.py [--sizes 256,512] [--iterations 12]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

PATHS = {
    # name: StyleConfig overrides
    "fp32-nchw": {"precision": "fp32", "channels_last": False},
    "default": {},
}


def child(size: int, path: str, iterations: int) -> None:
    import resource

    import numpy as np
    from PIL import Image

    from brushwork import stylize

    rng = np.random.default_rng(0)
    content = Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8))
    style = Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8))
    stamps: list[float] = []
    img = stylize(
        content,
        style,
        size=size,
        iterations=iterations,
        callback=lambda p: stamps.append(p.elapsed),
        **PATHS[path],
    )
    steps = [b - a for a, b in zip(stamps[2:-1], stamps[3:-1], strict=True)]
    print(
        json.dumps(
            {
                "size": size,
                "path": path,
                "median_s": statistics.median(steps),
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "precision": img.info["brushwork"]["resolved"]["precision"],
            }
        )
    )


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="256,512")
    ap.add_argument("--iterations", type=int, default=12)
    ap.add_argument("--child", nargs=2)
    a = ap.parse_args()
    if a.child:
        child(int(a.child[0]), a.child[1], a.iterations)
        return 0
    rows = []
    for size in (int(s) for s in a.sizes.split(",")):
        for path in PATHS:
            out = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--child",
                    str(size),
                    path,
                    "--iterations",
                    str(a.iterations),
                ],
                capture_output=True,
                text=True,
                check=True,
            )
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
            r = rows[-1]
            print(
                f"{size:5d} px  {path:10s} ({r['precision']}): {r['median_s']:.3f} s/it, "
                f"peak RSS {r['peak_rss_mb']:.0f} MB",
                flush=True,
            )
    for size in sorted({r["size"] for r in rows}):
        base = next(r for r in rows if r["size"] == size and r["path"] == "fp32-nchw")
        fast = next(r for r in rows if r["size"] == size and r["path"] == "default")
        print(
            f"{size} px: default is {base['median_s'] / fast['median_s']:.2f}x "
            "faster than fp32-nchw"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
