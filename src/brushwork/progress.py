"""The progress stream: one frozen record per iteration.

The CLI's progress bar, the loss plots and the studio only consume this
stream; the library never prints.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from PIL import Image


@dataclass(frozen=True)
class Progress:
    """One record of the progress stream, sent after every iteration.

    Loss parts are weighted (as summed into ``total``), evaluated at the image
    *before* this iteration's step. ``image`` is set only on iterations the
    caller asked for (``preview_every``) and on the final record.
    """

    iteration: int  # 1-based, across all stages
    total_iterations: int
    stage: int  # 0-based
    stages: int
    stage_iteration: int  # 1-based within the stage
    stage_iterations: int
    height: int
    width: int
    content_loss: float
    style_loss: float
    tv_loss: float
    total_loss: float
    lr: float
    elapsed: float  # seconds since the run started (after setup)
    converged: bool = False  # this record ended its stage by the tol test
    tiles: int = 1  # tiles this stage's objective walks per evaluation (1 = untiled)
    eta: float | None = None  # estimated seconds left in the run
    done: bool = False
    stopped: str | None = None  # None, "cancelled" or "nonfinite" on the final record
    image: Image.Image | None = None


ProgressCallback = Callable[[Progress], None]
