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

Row = dict[str, object]


def last_only(meter: QualityMeter, ci: Image.Image, si: Image.Image, strength: float) -> Row:
    """The whole default run, scored (the coarse factor is held at 1 by main)."""
    img = stylize(ci, si, strength=strength)
    q = meter.score(img, ci, si)
    b = img.info["brushwork"]["resolved"]["content_budget"]
    return {
        "gap": round(q.gap_closed, 4),
        "content_distance": round(q.content_distance, 4),
        "correction": b["correction"],
    }


def lookahead(ci: Image.Image, si: Image.Image, strength: float) -> Row:
    """What the engine measured at the coarse switch, the run stopped just after it."""
    seen: list[Progress] = []
    img = stylize(
        ci,
        si,
        strength=strength,
        callback=seen.append,
        should_stop=lambda: bool(seen) and seen[-1].stage_iteration > 12,
    )
    return {"lookahead": img.info["brushwork"]["resolved"]["content_budget"]["coarse_measured"]}


def coarse(
    meter: QualityMeter, ci: Image.Image, si: Image.Image, strength: float, size: int, at: list[int]
) -> Row:
    """The coarse scale alone, without the budget, scored at the iterations ``at``."""
    shots: dict[int, Image.Image] = {}

    def grab(p: Progress) -> None:
        if p.image is not None and p.stage_iteration in at:
            shots[p.stage_iteration] = p.image

    stylize(
        ci,
        si,
        size=size,
        strength=strength,
        content_budget=0,
        iterations=max(at),
        callback=grab,
        preview_every=1,
    )
    row: Row = {}
    for k in sorted(shots):
        q = meter.score(shots[k], ci, si)
        row[f"content@{k}"] = round(q.content_distance, 4)
        row[f"gap@{k}"] = round(q.gap_closed, 4)
    return row


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
        # measure, do not act (a patch of the engine's own name for it)
        brushwork.engine.coarse_correction = lambda *args, **kw: 1.0  # type: ignore[attr-defined]
    for c, s in pairs:
        ci, si = load_image(CONTENTS[c]), load_image(STYLES[s])
        if a.last_only:
            measured = last_only(meter, ci, si, a.strength)
        elif a.lookahead:
            measured = lookahead(ci, si, a.strength)
        else:
            measured = coarse(meter, ci, si, a.strength, a.size, at)
        row: Row = {"content": c, "style": s, **measured}
        rows.append(row)
        print(json.dumps(row), flush=True)
    (ROOT / "cache").mkdir(exist_ok=True)
    mode = "last-only" if a.last_only else "lookahead" if a.lookahead else "coarse"
    out = ROOT / "cache" / f"budget-{mode}-{a.strength:g}.json"
    out.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
