"""docs/gallery/gram-iterations-sliced.jpg: rainier + Starry Night at 512 px with the
Gram loss at 30 (the CPU's default), 100 and 300 (CUDA's default) iterations per scale,
and with the sliced loss at 300: how evenly the sky is painted as the Gram loss converges.

DIR holds the four results, made on the CPU with the library (rainier.jpg and
../shared/images/styles/starry_night.jpg, each run alone):
``stylize(content, style, size=512, iterations=N)`` saved as gramN.png for N = 30, 100,
300, and ``stylize(..., iterations=300, style_loss="sliced")`` as sliced300.png.

    python docs/make_iterations_sheet.py DIR
"""

from __future__ import annotations

import sys
from pathlib import Path

from make_gallery import save_files


def main() -> int:
    tiles = [
        ("gram, 30 per scale (CPU default)", "gram30.png"),
        ("gram, 100", "gram100.png"),
        ("gram, 300 (CUDA default)", "gram300.png"),
        ("sliced, 300", "sliced300.png"),
    ]
    save_files("gram-iterations-sliced", Path(sys.argv[1]), tiles)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
