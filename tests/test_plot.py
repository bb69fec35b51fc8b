"""Loss plots from the progress stream: real image files, written atomically."""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from brushwork.plot import plot_losses
from brushwork.progress import Progress


def records() -> list[Progress]:
    """Two stages (5 iterations at 32x48, then 5 at 64x96) and the final record."""
    out = []
    it = 0
    for stage, (h, w) in enumerate([(32, 48), (64, 96)]):
        for k in range(1, 6):
            it += 1
            c, s, t = 0.5 * it, 200.0 / it**2, 3.0 + 0.1 * it
            out.append(
                Progress(
                    iteration=it,
                    total_iterations=10,
                    stage=stage,
                    stages=2,
                    stage_iteration=k,
                    stage_iterations=5,
                    height=h,
                    width=w,
                    content_loss=c,
                    style_loss=s,
                    tv_loss=t,
                    total_loss=c + s + t,
                    lr=1.0,
                    elapsed=0.1 * it,
                )
            )
    last = out[-1]
    out.append(dataclasses.replace(last, done=True, image=Image.new("RGB", (96, 64))))
    return out


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".part"))


def test_plot_losses_writes_a_png(tmp_path: Path) -> None:
    path = tmp_path / "losses.png"
    plot_losses(records(), path, title="two stages")
    assert path.stat().st_size > 0
    with Image.open(path) as img:
        img.load()
        assert img.format == "PNG"
        assert img.size == (770, 396)  # 7 x 3.6 inches at 110 dpi
        arr = np.asarray(img.convert("RGB"), dtype=np.float64)
    assert arr.std() > 5  # curves and text, not a blank canvas
    # The three curves' colours are drawn (matplotlib's tab:blue, tab:orange, tab:green).
    for rgb in ((31, 119, 180), (255, 127, 14), (44, 160, 44)):
        assert (np.abs(arr - rgb).max(axis=2) < 8).sum() > 50, rgb
    assert [p.name for p in tmp_path.iterdir()] == ["losses.png"]


def test_plot_losses_svg(tmp_path: Path) -> None:
    path = tmp_path / "losses.svg"
    plot_losses(records(), path)
    text = path.read_text()
    assert text.lstrip().startswith("<?xml") and "<svg" in text
    assert leftovers(tmp_path) == []


def test_plot_replaces_an_old_file_atomically(tmp_path: Path) -> None:
    path = tmp_path / "losses.png"
    path.write_bytes(b"old contents")
    plot_losses(records(), path)
    with Image.open(io.BytesIO(path.read_bytes())) as img:
        assert img.format == "PNG"
    assert [p.name for p in tmp_path.iterdir()] == ["losses.png"]


def test_failed_write_leaves_no_part_file(tmp_path: Path) -> None:
    blocked = tmp_path / "losses.png"
    blocked.mkdir()  # the rename onto a directory fails
    (blocked / "keep").write_text("x")
    with pytest.raises(OSError):
        plot_losses(records(), blocked)
    assert leftovers(tmp_path) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["losses.png"]
    assert (blocked / "keep").read_text() == "x"
