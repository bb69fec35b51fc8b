"""``brushwork video INPUT STYLE... -o OUTPUT``: the command line of the video driver.

Every check runs before the weights load (a bad input, an output that is an
input, a size the memory model refuses: one line, exit status 2). The bar
counts frames and shows the ETA from the measured frame times. Ctrl-C
abandons the current frame and encodes the frames done so far (exit 130); a
second Ctrl-C exits at once. A rerun continues from the frame store.
"""

from __future__ import annotations

import argparse
import sys
from fractions import Fraction
from typing import Any

from brushwork.errors import EXIT_INTERRUPTED


def _seconds(value: str) -> float:
    """Seconds as ``12.5``, ``1:02.5`` or ``0:01:02``."""
    try:
        parts = [float(p) for p in value.split(":")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds or [H:]M:S, got {value!r}") from None
    if len(parts) > 3 or any(p < 0 for p in parts) or not all(p == p for p in parts):
        raise argparse.ArgumentTypeError(f"expected seconds or [H:]M:S, got {value!r}")
    total = 0.0
    for p in parts:
        total = total * 60 + p
    return total


def _fps(value: str) -> Fraction:
    try:
        rate = Fraction(value)
    except (ValueError, ZeroDivisionError):
        raise argparse.ArgumentTypeError("expected a frame rate like 25 or 30000/1001") from None
    if rate <= 0 or rate > 1000:
        raise argparse.ArgumentTypeError(f"frame rate must be in (0, 1000], got {value}")
    return rate


def _say(line: str) -> None:
    """The command's one channel to the user: a line on stderr."""
    print(line, file=sys.stderr, flush=True)  # noqa: T201


def add_video_parser(sub: Any) -> None:
    """Add ``video`` to the ``brushwork`` subcommands (``sub`` from add_subparsers)."""
    from brushwork.cli import add_config_flags, positional_hints
    from brushwork.config import PRESETS
    from brushwork.video import DEFAULT_TEMPORAL_WEIGHT

    p = sub.add_parser(
        "video",
        help="stylize a video with temporal consistency (Ruder et al. 2016)",
        description="Stylize a video: frame 1 fully, each later frame from the previous "
        "output warped by optical flow, tied to it by a temporal loss.",
    )
    p.hints = positional_hints("brushwork video INPUT PAINTING [PAINTING ...] -o OUT", ("style",))
    p.add_argument("input", help="video file (anything PyAV decodes) or a directory of frames")
    p.add_argument("style", nargs="+", help="style image(s); blend with --style-blend")
    p.add_argument(
        "-o",
        "--output",
        required=True,
        help="output video (.mp4, .mov, .mkv: H.264 with the input's timing, rotation and "
        "audio) or DIR/ for numbered PNG frames",
    )
    p.add_argument(
        "--temporal-weight",
        type=float,
        default=DEFAULT_TEMPORAL_WEIGHT,
        metavar="W",
        help="weight of the temporal loss (masked MSE to the previous output, warped); "
        f"0 = stylize every frame on its own (default: {DEFAULT_TEMPORAL_WEIGHT:g})",
    )
    p.add_argument(
        "--frame-iterations",
        type=int,
        default=None,
        metavar="N",
        help="iterations of each frame after the first, in one stage at full size "
        "(default: two thirds of --iterations, rounded)",
    )
    p.add_argument(
        "--long-term",
        action="store_true",
        help="also tie each frame to frames 2 and 4 back, where they are visible (Ruder's "
        "long-term consistency: less drift when things come back into view; slower)",
    )
    p.add_argument("--start", type=_seconds, default=0.0, metavar="S", help="start at S seconds")
    p.add_argument("--duration", type=_seconds, default=None, metavar="D", help="stylize D seconds")
    p.add_argument(
        "--fps",
        type=_fps,
        default=None,
        metavar="RATE",
        help="frame rate of an input directory of frames (default: 25)",
    )
    p.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        default=None,
        help="named recipe for the style options; flags you give override it",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    add_config_flags(p)


def run_video(args: argparse.Namespace) -> int:
    """Run ``brushwork video``; returns the exit status (BrushworkError propagates)."""
    from brushwork.cli import _config_overrides, _StopFlag
    from brushwork.config import make_config
    from brushwork.engine import load_network
    from brushwork.video.run import plan_video, render

    cfg = make_config(args.preset, **_config_overrides(args))
    plan = plan_video(
        args.input,
        args.style,
        args.output,
        config=cfg,
        temporal_weight=args.temporal_weight,
        frame_iterations=args.frame_iterations,
        long_term=args.long_term,
        start=args.start,
        duration=args.duration,
        fps=args.fps,
    )
    network = load_network(plan.first)
    stop = _StopFlag()
    bar = None if args.quiet else _FrameBar(plan.info.frames)
    with stop.installed():
        try:
            result = render(
                plan, network=network, callback=None if bar is None else bar.update,
                should_stop=stop,
            )  # fmt: skip
        finally:
            if bar is not None:
                bar.close()
    where = f"{plan.output}" if result.encoded is not None or plan.frames_dir else "nothing"
    if result.encoded is not None:
        for note in result.encoded.notes:
            _say(f"brushwork: note: {note}")
    if result.frames:
        from brushwork.images import enlargement_note

        source = (plan.info.width, plan.info.height)
        enlarged = enlargement_note(source, (plan.width, plan.height), what="video")
        if enlarged is not None:
            _say(f"brushwork: note: {enlarged}")
    if result.stopped == "cancelled":
        _say(
            f"brushwork: interrupted after {result.frames} of {result.frames_total} frames; "
            f"wrote {where} (frames in {result.store}; run again to continue)",
        )
        return EXIT_INTERRUPTED
    if result.stopped == "nonfinite":
        _say(
            f"brushwork: error: the loss became non-finite on frame {result.frames + 1} "
            f"(lower --style-weight or --temporal-weight); wrote the {result.frames} frames "
            f"before it to {where}",
        )
        return 1
    if not args.quiet:
        later = result.later_seconds
        timing = ""
        if result.first_seconds is not None and later:
            timing = (
                f"; frame 1 {result.first_seconds:.1f} s, later frames "
                f"{sum(later) / len(later):.1f} s each"
            )
        reused = f", {result.reused} reused from {result.store}" if result.reused else ""
        _say(f"wrote {where} ({result.frames} frames{reused}{timing})")
    return 0


class _FrameBar:
    """tqdm bar over frames: frame i/N, the iteration inside it, the ETA from frame times."""

    def __init__(self, frames: int) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=frames, unit="frame", dynamic_ncols=True, file=sys.stderr, leave=True)

    def update(self, p: Any) -> None:
        from brushwork.video.run import VideoProgress

        assert isinstance(p, VideoProgress)
        eta = "?" if p.eta is None else _clock(p.eta)
        if p.frame_done:
            self.bar.update(p.frames_done - self.bar.n)
            self.bar.set_postfix_str(f"ETA {eta}" + (" (reused)" if p.reused else ""))
        else:
            self.bar.set_description(f"frame {p.frame}/{p.frames}", refresh=False)
            self.bar.set_postfix_str(f"it {p.iteration}/{p.iterations}, ETA {eta}")

    def close(self) -> None:
        self.bar.close()


def _clock(seconds: float) -> str:
    s = int(round(seconds))
    return (
        f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"
    )


__all__ = ["add_video_parser", "run_video"]
