"""Time-to-quality of an engine configuration on the fixed objective at 512 px.

Runs ``brushwork.stylize`` on the book's pair and evaluates the fixed fp32 objective
(benchmarks/common.py) on the 8-bit image the user would get, every ``--every``
iterations. Evaluation time is excluded from the clock. Prints the first time the
objective is <= 1.05x the reference's final value.

    python benchmarks/ttq.py '{"optimizer": "lbfgs"}' [--every 10]
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from PIL import Image

from brushwork import stylize
from brushwork.pixels import to_tensor
from common import CACHE, SHARED, FixedObjective, Scored, load_json, save_json, scoring_callback


def curve(options: dict[str, Any], size: int, every: int, obj: FixedObjective) -> dict:
    def score(img: Image.Image) -> tuple[float]:
        return (obj.value(to_tensor(img, obj.content.device)),)

    points: list[Scored] = []
    stylize(
        SHARED / "d2l" / "rainier.jpg",
        SHARED / "d2l" / "autumn_oak.jpg",
        callback=scoring_callback(score, points),
        preview_every=every,
        **{"size": size, **options},
    )
    return {"options": options, "points": [(p.iteration, p.seconds, p.values[0]) for p in points]}


def time_to(points: list, mark: float) -> tuple[int, float] | None:
    for it, sec, value in points:
        if value <= mark:
            return it, sec
    return None


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("options", nargs="?", default="{}")
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--every", type=int, default=10)
    ap.add_argument("--name", default=None)
    a = ap.parse_args()
    obj = FixedObjective(a.size)
    ref = load_json(CACHE / f"reference-{a.size}.json")
    data = curve(json.loads(a.options), a.size, a.every, obj)
    if a.name:
        save_json(CACHE / f"ttq-{a.name}-{a.size}.json", data)
    for it, sec, value in data["points"]:
        print(f"  it {it:5d}  {sec:7.1f} s  objective {value:.5g}")
    if ref:
        mark = 1.05 * ref["final"]
        hit = time_to(data["points"], mark)
        print(
            f"reference final {ref['final']:.5g}, mark {mark:.5g}: "
            + (f"reached at iteration {hit[0]} after {hit[1]:.1f} s" if hit else "not reached")
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
