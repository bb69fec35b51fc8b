"""Loss curves like the d2l chapter's animator, drawn from the progress stream."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

from brushwork.images import atomic_write
from brushwork.progress import Progress


def plot_losses(records: Sequence[Progress], path: Path, title: str = "brushwork") -> None:
    """Write content, style and TV loss curves (log scale) over iterations to ``path``.

    Stage boundaries are marked with dotted lines.
    """
    import matplotlib

    matplotlib.use("Agg", force=True)
    from matplotlib.figure import Figure

    steps = [r for r in records if not r.done]
    fig = Figure(figsize=(7, 3.6), dpi=110, layout="constrained")
    ax = fig.add_subplot()
    its = [r.iteration for r in steps]
    for name, color in (("content", "tab:blue"), ("style", "tab:orange"), ("tv", "tab:green")):
        ax.plot(
            its,
            [getattr(r, f"{name}_loss") for r in steps],
            label=f"{name} loss",
            color=color,
            linewidth=1.4,
        )
    for prev, cur in zip(steps, steps[1:], strict=False):
        if cur.stage != prev.stage:
            ax.axvline(prev.iteration + 0.5, color="0.5", linestyle=":", linewidth=1)
            ax.annotate(
                f"{cur.height}×{cur.width}",
                (prev.iteration + 0.5, 1),
                xycoords=("data", "axes fraction"),
                xytext=(3, -12),
                textcoords="offset points",
                fontsize=8,
                color="0.35",
            )
    if any(v > 0 for r in steps for v in (r.content_loss, r.style_loss, r.tv_loss)):
        ax.set_yscale("log")
    ax.set_xlabel("iteration")
    ax.set_ylabel("weighted loss")
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(loc="upper right", fontsize=8)
    buf = io.BytesIO()
    fmt = (
        "svg"
        if path.suffix.lower() == ".svg"
        else "pdf"
        if path.suffix.lower() == ".pdf"
        else "png"
    )
    fig.savefig(buf, format=fmt)
    atomic_write(path, buf.getvalue())
