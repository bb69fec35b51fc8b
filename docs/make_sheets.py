"""Side-by-side sheets in docs/gallery of results made elsewhere (a GPU run, long CPU runs).

    python docs/make_sheets.py NAME DIR

``preset-quality-sliced``: ``--preset quality`` on rainier + Starry Night with the Gram
style loss at 30, 150 (the preset before) and 500 iterations per scale, and with the
sliced Wasserstein loss (the preset after). DIR: benchmarks/preset_variants.sh's $OUT,
plus benchmarks/gpu.py's preset_quality.jpg (the preset before) as q_gram.jpg.

``gram-iterations-sliced``: rainier + Starry Night at 512 px with the Gram loss at 30
(the CPU's default), 100 and 300 (CUDA's default) iterations per scale, and with the
sliced loss at 300: how evenly the sky is painted as the Gram loss converges. DIR holds
the four results, made on the CPU with the library (rainier.jpg and
../shared/images/styles/starry_night.jpg, each run alone):
``stylize(content, style, size=512, iterations=N)`` saved as gramN.png for N = 30, 100,
300, and ``stylize(..., iterations=300, style_loss="sliced")`` as sliced300.png.
"""

from __future__ import annotations

import sys
from pathlib import Path

from make_gallery import save_files

#: Each sheet's tiles: (label, file name in DIR).
SHEETS: dict[str, list[tuple[str, str]]] = {
    "preset-quality-sliced": [
        ("gram, 30 per scale", "q_it30.jpg"),
        ("gram, 150 per scale (the preset before)", "q_gram.jpg"),
        ("gram, 500 per scale", "q_it500.jpg"),
        ("sliced, 150 per scale (the preset now)", "q_sliced.jpg"),
    ],
    "gram-iterations-sliced": [
        ("gram, 30 per scale (CPU default)", "gram30.png"),
        ("gram, 100", "gram100.png"),
        ("gram, 300 (CUDA default)", "gram300.png"),
        ("sliced, 300", "sliced300.png"),
    ],
}


def main() -> int:
    if len(sys.argv) != 3 or sys.argv[1] not in SHEETS:
        print(f"usage: make_sheets.py {{{','.join(SHEETS)}}} DIR", file=sys.stderr)
        return 2
    name, folder = sys.argv[1], Path(sys.argv[2])
    save_files(name, folder, SHEETS[name])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
