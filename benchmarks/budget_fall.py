"""How the content distance falls over the budget stage, at several iteration counts.

The content budget (brushwork.budget) measures the content distance at the switch
iteration of the last scale and predicts how far it will still fall by the scale's end.
This script runs the default pyramid of each pair without the budget, at each asked
number of iterations per scale, takes a preview of the last scale every few iterations,
scores each with brushwork.quality's content distance, and prints the trajectory and
the fall from the switch to the end, beside what brushwork.budget.expected_fall predicts.

    python benchmarks/budget_fall.py --iterations 30,60 --every 6
"""

from __future__ import annotations

import argparse
import json

from PIL import Image

from brushwork import stylize
from brushwork.budget import expected_fall, switch_iteration
from brushwork.images import load_image
from brushwork.progress import Progress
from brushwork.quality import QualityMeter
from child import cpu_info
from quality import CONTENTS, STYLES

DEFAULT_PAIRS = "rainier+autumn_oak,rainier+starry_night,chelsea+great_wave,rocket+starry_night"


def trajectory(
    meter: QualityMeter, content: str, style: str, iterations: int, every: int
) -> dict[int, float]:
    """Content distance at stage iterations of the last scale: {iteration: distance}."""
    ci, si = load_image(CONTENTS[content]), load_image(STYLES[style])
    grabbed: dict[int, Image.Image] = {}
    switch = switch_iteration(iterations)

    def grab(p: Progress) -> None:
        last = p.stage == p.stages - 1
        wanted = p.stage_iteration % every == 0 or p.stage_iteration == switch
        if last and p.image is not None and (wanted or p.done):
            grabbed[p.stage_iteration] = p.image.copy()

    # preview_every=1 so that every iteration of the last stage can be taken.
    stylize(ci, si, iterations=iterations, content_budget=0, callback=grab, preview_every=1)
    return {
        it: round(meter.score(img, ci, si).content_distance, 4)
        for it, img in sorted(grabbed.items())
    }


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--pairs", default=DEFAULT_PAIRS)
    p.add_argument("--iterations", default="30,60")
    p.add_argument("--every", type=int, default=6)
    a = p.parse_args()
    meter = QualityMeter()
    print(json.dumps(cpu_info()))
    for pair in a.pairs.split(","):
        content, style = pair.split("+")
        for n in (int(x) for x in a.iterations.split(",")):
            traj = trajectory(meter, content, style, n, a.every)
            k = switch_iteration(n)
            fall = traj[k] - traj[n]
            print(
                json.dumps(
                    {
                        "pair": pair,
                        "iterations": n,
                        "switch": k,
                        "fall": round(fall, 4),
                        "predicted": round(expected_fall(k, n), 4),
                        "trajectory": traj,
                    }
                ),
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
