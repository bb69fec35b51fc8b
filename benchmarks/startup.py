"""The fixed cost of one run in a fresh process, and what torch.optim's import adds.

Every CLI call is a fresh process, so what a run pays once (imports, weights, the
first targets) lands on every picture. brushwork steps L-BFGS itself (brushwork.optimize.
LBFGS) because constructing any ``torch.optim`` optimizer imports ``torch._dynamo``.
This times, in fresh processes taking turns, a tiny run (64 px, 2 iterations: nearly
all fixed cost) as brushwork does it, and the same run after constructing a
``torch.optim.LBFGS`` first, as it did until 2026-11-27; medians and their difference.

    python benchmarks/startup.py            # 5 rounds, about 1 minute
"""

from __future__ import annotations

import argparse
import statistics

from child import cpu_line, run_child

RUN = """
import json, sys, time
t = time.perf_counter()
import torch
from PIL import Image
from brushwork import stylize
if sys.argv[1] == "torch-optim":
    torch.optim.LBFGS([torch.zeros(1, requires_grad=True)])
photo = Image.new("RGB", (64, 48), (120, 90, 40))
painting = Image.effect_noise((64, 48), 60).convert("RGB")
stylize(photo, painting, size=64, iterations=2)
print(json.dumps({"s": time.perf_counter() - t, "dynamo": "torch._dynamo" in sys.modules}))
"""


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args()
    times: dict[str, list[float]] = {"brushwork": [], "torch-optim": []}
    for _ in range(a.rounds):
        for name in times:
            out = run_child(RUN, name, quiet=True)
            times[name].append(out["s"])
            assert out["dynamo"] == (name == "torch-optim"), out
    med = {k: statistics.median(v) for k, v in times.items()}
    print(cpu_line())
    for k, v in times.items():
        print(f"{k:12} median {med[k]:.2f} s  ({', '.join(f'{x:.2f}' for x in v)})")
    print(
        f"torch.optim's import adds {med['torch-optim'] - med['brushwork']:.2f} s per process "
        f"({med['torch-optim'] / med['brushwork']:.2f}x the fixed cost)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
