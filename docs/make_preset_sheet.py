"""docs/gallery/preset-quality-sliced.jpg: ``--preset quality`` on rainier + Starry Night
with the Gram style loss at 30, 150 (the preset before) and 500 iterations per scale,
and with the sliced Wasserstein loss (the preset after).

    python docs/make_preset_sheet.py DIR   # DIR: benchmarks/preset_variants.sh's $OUT,
                                           # plus benchmarks/gpu.py's preset_quality.jpg
                                           # (the preset before) as q_gram.jpg
"""

from __future__ import annotations

import sys
from pathlib import Path

from make_gallery import save_files


def main() -> int:
    tiles = [
        ("gram, 30 per scale", "q_it30.jpg"),
        ("gram, 150 per scale (the preset before)", "q_gram.jpg"),
        ("gram, 500 per scale", "q_it500.jpg"),
        ("sliced, 150 per scale (the preset now)", "q_sliced.jpg"),
    ]
    save_files("preset-quality-sliced", Path(sys.argv[1]), tiles)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
