"""How well the coarse scale's content distance foretells the whole run's.

The content budget (brushwork.budget) corrects the style weight at the last scale of at
most 1024 px. A correction that late costs more gap per unit of content than a lower
strength from the start (RESULTS.md, "Rocket + autumn oak: the window exists"). This
script runs only the 256 px coarse scale of every open pair at a strength, without the
budget, and prints the content distance (brushwork.quality's relu4_2 measure, at 256 px)
at some of its iterations, so it can be set beside the whole 512 px run's.

    python benchmarks/budget_coarse.py --at 8,12,30
    python benchmarks/budget_coarse.py --lookahead   # the engine's own look-ahead measure

With ``--last-only`` each pair runs the whole default with the coarse correction held
at 1 (the budget as it was before it: the last scale's correction alone) and prints
the metric, to set beside benchmarks/quality.py's default rows.

    python benchmarks/budget_coarse.py --last-only --pairs rocket+autumn_oak

With ``--lookahead`` each pair runs the default 512 px pyramid with the coarse
correction held at 1 and stops after the coarse scale's switch, printing what the
engine measured there (the record's ``coarse_measured``).
"""

from __future__ import annotations

import argparse
import json

from PIL import Image

import brushwork.engine
from brushwork import stylize
from brushwork.images import load_image
from brushwork.progress import Progress
from brushwork.quality import QualityMeter
from child import ROOT, cpu_info
from quality import CONTENTS, STYLES


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--pairs", default="", help="CONTENT+STYLE,... (default: all)")
    p.add_argument("--at", default="8,12,30", help="iterations to score")
    p.add_argument("--strength", type=float, default=1.0)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--lookahead", action="store_true")
    p.add_argument("--last-only", action="store_true")
    a = p.parse_args()
    at = [int(i) for i in a.at.split(",")]
    pairs = (
        [tuple(x.split("+")) for x in a.pairs.split(",")]
        if a.pairs
        else [(c, s) for c in CONTENTS for s in STYLES]
    )
    print(cpu_info(), flush=True)
    meter = QualityMeter()
    rows = []
    if a.lookahead or a.last_only:
        brushwork.engine.coarse_correction = lambda *args, **kw: 1.0  # measure, do not act
    for c, s in pairs:
        ci, si = load_image(CONTENTS[c]), load_image(STYLES[s])
        if a.last_only:
            img = stylize(ci, si, strength=a.strength)
            q = meter.score(img, ci, si)
            b = img.info["brushwork"]["resolved"]["content_budget"]
            row = {"content": c, "style": s, "gap": round(q.gap_closed, 4)}
            row.update(content_distance=round(q.content_distance, 4), correction=b["correction"])
            rows.append(row)
            print(json.dumps(row), flush=True)
            continue
        if a.lookahead:
            seen: list[Progress] = []
            img = stylize(
                ci,
                si,
                strength=a.strength,
                callback=seen.append,
                should_stop=lambda seen=seen: bool(seen) and seen[-1].stage_iteration > 12,
            )
            b = img.info["brushwork"]["resolved"]["content_budget"]
            row = {"content": c, "style": s, "lookahead": b["coarse_measured"]}
            rows.append(row)
            print(json.dumps(row), flush=True)
            continue
        shots: dict[int, Image.Image] = {}

        def grab(p: Progress, shots: dict[int, Image.Image] = shots) -> None:
            if p.image is not None and p.stage_iteration in at:
                shots[p.stage_iteration] = p.image

        stylize(
            ci,
            si,
            size=a.size,
            strength=a.strength,
            content_budget=0,
            iterations=max(at),
            callback=grab,
            preview_every=1,
        )
        row: dict[str, object] = {"content": c, "style": s}
        for k in sorted(shots):
            q = meter.score(shots[k], ci, si)
            row[f"content@{k}"] = round(q.content_distance, 4)
            row[f"gap@{k}"] = round(q.gap_closed, 4)
        rows.append(row)
        print(json.dumps(row), flush=True)
    (ROOT / "cache").mkdir(exist_ok=True)
    mode = "last-only" if a.last_only else "lookahead" if a.lookahead else "coarse"
    out = ROOT / "cache" / f"budget-{mode}-{a.strength:g}.json"
    out.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
