"""``brushwork batch``: the parser, the progress bar and the summary table.

The main CLI calls :func:`add_batch_parser` and :func:`run_batch`. Ray is imported
only when ``--ray`` or ``--ray-address`` is given. Exit status: 0 when every job
is done or skipped, 1 when any job failed, 130 after Ctrl-C (finished jobs are
kept; a rerun does the rest), 2 for a usage error before anything ran.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from brushwork.batch.jobs import OUTPUT_FORMATS
from brushwork.errors import EXIT_INTERRUPTED, BrushworkError, ConfigError

if TYPE_CHECKING:
    from brushwork.batch.jobs import JobSpec
    from brushwork.batch.runner import BatchEvent, BatchSummary, Executor


def _say(text: str) -> None:
    print(text, file=sys.stderr)  # noqa: T201 - this is the command's own output


def _positive_float(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {value!r}") from None
    if not 0 <= number < 1e6:
        raise argparse.ArgumentTypeError(f"expected a number from 0 to 1e6, got {value!r}")
    return number


def _positive_int(value: str) -> int:
    if not value.isdigit() or not 1 <= int(value) <= 100_000:
        raise argparse.ArgumentTypeError(f"expected a whole number from 1 to 100000, got {value!r}")
    return int(value)


def add_batch_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``batch`` subcommand (its own flags plus every style flag and --preset)."""
    from brushwork.cli import add_config_flags
    from brushwork.config import PRESETS

    p: argparse.ArgumentParser = subparsers.add_parser(
        "batch",
        help="paint many pictures (every content with every style, or a manifest), "
        "resumable, locally or on a Ray cluster",
    )
    p.add_argument(
        "--content",
        nargs="+",
        default=[],
        metavar="PATH",
        help="content images or folders of them",
    )
    p.add_argument(
        "--style", nargs="+", default=[], metavar="PATH", help="style images or folders of them"
    )
    p.add_argument(
        "--pairs",
        choices=["all", "zip"],
        default="all",
        help="all: every content with every style (default); zip: the i-th with the i-th",
    )
    p.add_argument(
        "--manifest",
        type=Path,
        default=None,
        metavar="FILE",
        help="jobs.csv or jobs.jsonl: one job per row (content, style, optional preset "
        "and style options such as strength); paths relative to the manifest",
    )
    p.add_argument(
        "-o",
        "--output",
        dest="outdir",
        required=True,
        type=Path,
        metavar="OUTDIR",
        help="output folder: CONTENT--STYLE--HASH.EXT, each with its run record, and summary.json",
    )
    p.add_argument(
        "--format", choices=sorted(OUTPUT_FORMATS), default="png", help="output format (png)"
    )
    p.add_argument(
        "--force", action="store_true", help="redo jobs whose output and record already match"
    )
    where = p.add_mutually_exclusive_group()
    where.add_argument("--ray", action="store_true", help="run on a local Ray runtime")
    where.add_argument(
        "--ray-address", default=None, metavar="ADDR", help="run on the Ray cluster at ADDR"
    )
    p.add_argument(
        "--cpus-per-job",
        type=_positive_float,
        default=None,
        metavar="N",
        help="Ray: CPUs each job asks for (default: 1); locally: torch threads per job "
        "(default: all cores). bf16 results depend on the thread count: give both runs "
        "the same value for identical pictures",
    )
    p.add_argument(
        "--gpus-per-job",
        type=_positive_float,
        default=None,
        metavar="N",
        help="Ray: GPUs each job asks for, fractions allowed (default: 0)",
    )
    p.add_argument(
        "--workers",
        type=_positive_int,
        default=None,
        metavar="N",
        help="Ray: number of workers (default: as many as the cluster has room for)",
    )
    p.add_argument(
        "--retries",
        type=int,
        choices=range(0, 11),
        default=3,
        metavar="N",
        help="Ray: times a job is rerun when its worker dies, 0..10 (default: 3)",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar; only failures")
    p.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        default=None,
        help="named recipe; flags (and manifest columns) override it",
    )
    add_config_flags(p)
    return p


def _jobs(args: argparse.Namespace) -> tuple[list[JobSpec], list[Path]]:
    """The resolved jobs and the input folders (which the output folder must not be)."""
    from brushwork.batch.jobs import (
        JobRequest,
        build_jobs,
        expand_inputs,
        pair_inputs,
        read_manifest,
    )
    from brushwork.cli import _config_overrides

    if args.manifest is not None:
        if args.content or args.style:
            raise ConfigError("give either --manifest or --content and --style, not both")
        requests = read_manifest(args.manifest)
        dirs = [args.manifest.parent]
    else:
        if not args.content or not args.style:
            raise ConfigError("give --content and --style (paths or folders), or --manifest")
        contents = expand_inputs(args.content, "content")
        styles = expand_inputs(args.style, "style")
        requests = [JobRequest(c, s) for c, s in pair_inputs(contents, styles, args.pairs)]
        dirs = [Path(p) for p in [*args.content, *args.style] if Path(p).is_dir()]
    jobs = build_jobs(
        requests, preset=args.preset, overrides=_config_overrides(args), fmt=args.format
    )
    return jobs, dirs


def _executor(args: argparse.Namespace) -> Executor:
    ray_flags = [
        flag
        for flag, value in (
            ("--gpus-per-job", args.gpus_per_job),
            ("--workers", args.workers),
        )
        if value is not None
    ]
    if not (args.ray or args.ray_address):
        if ray_flags:
            raise ConfigError(f"{', '.join(ray_flags)} need --ray or --ray-address")
        from brushwork.batch.local import LocalExecutor

        threads = None if args.cpus_per_job is None else max(1, round(args.cpus_per_job))
        return LocalExecutor(threads=threads)
    if args.cpus_per_job == 0 and not args.gpus_per_job:
        raise ConfigError("a job needs some CPUs or GPUs: --cpus-per-job 0 needs --gpus-per-job")
    try:
        from brushwork.batch.ray_exec import RayExecutor
    except ImportError:
        raise BrushworkError(
            "--ray needs Ray: pip install -e \".[ray]\" (or pip install 'ray>=2.30')"
        ) from None
    return RayExecutor(
        address=args.ray_address,
        cpus_per_job=1.0 if args.cpus_per_job is None else args.cpus_per_job,
        gpus_per_job=args.gpus_per_job or 0.0,
        workers=args.workers,
        retries=args.retries,
    )


class _BatchBar:
    """One tqdm bar across the jobs to run: done, skipped, failed, ETA; failures as lines."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.bar: Any = None
        self.counts = {"done": 0, "skipped": 0, "failed": 0, "cancelled": 0}

    def __call__(self, event: BatchEvent) -> None:
        from brushwork.batch.runner import BatchPlanned
        from brushwork.batch.worker import JobOutcome

        if isinstance(event, BatchPlanned):
            if not self.quiet:
                from tqdm import tqdm

                self.bar = tqdm(total=event.to_run, unit="job", dynamic_ncols=True, file=sys.stderr)
            self.counts["skipped"] = event.skipped
            self._postfix()
        elif isinstance(event, JobOutcome) and event.status != "skipped":
            self.counts[event.status] = self.counts.get(event.status, 0) + 1
            if event.status == "failed":
                self._line(f"brushwork: job {event.name} failed: {event.error}")
            elif event.note is not None:
                self._line(f"brushwork: note: job {event.name}: {event.note}")
            self._postfix()
            if self.bar is not None:
                self.bar.update(1)

    def _postfix(self) -> None:
        if self.bar is not None:
            c = self.counts
            self.bar.set_postfix_str(
                f"done {c['done']} skipped {c['skipped']} failed {c['failed']}", refresh=False
            )

    def _line(self, text: str) -> None:
        if self.bar is not None:
            self.bar.write(text, file=sys.stderr)
        else:
            _say(text)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _table(summary: BatchSummary) -> str:
    """The closing table: counts, throughput, and jobs per worker (which node ran what)."""
    c = summary.counts()
    lines = [
        f"brushwork batch ({summary.executor}): {len(summary.jobs)} jobs: "
        + ", ".join(f"{n} {s}" for s, n in c.items() if n or s in ("done", "failed"))
        + f" in {summary.wall_seconds:.1f} s ({summary.jobs_per_minute:.1f} jobs/min)"
    ]
    workers = summary.by_worker()
    if workers:
        width = max(len("worker"), *(len(k) for k in workers))
        lines.append(f"  {'worker':<{width}}  {'jobs':>5}  {'s/job':>7}")
        for label, row in sorted(workers.items()):
            lines.append(f"  {label:<{width}}  {row['jobs']:>5}  {row['mean_seconds']:>7.2f}")
    failed = [o for o in summary.outcomes if o.status == "failed"]
    if failed:
        lines.append("  failed:")
        lines.extend(f"    {o.name}: {o.error}" for o in failed)
    lines.append(f"  summary: {summary.outdir / 'summary.json'}")
    return "\n".join(lines)


def run_batch(args: argparse.Namespace) -> int:
    """Run the batch the flags describe; the exit status (see the module docstring)."""
    from brushwork.batch.jobs import check_outdir
    from brushwork.batch.runner import execute
    from brushwork.cli import _StopFlag

    jobs, dirs = _jobs(args)
    check_outdir(args.outdir, jobs, dirs)
    executor = _executor(args)
    stop = _StopFlag()
    bar = _BatchBar(args.quiet)
    with stop.installed():
        try:
            summary = execute(
                jobs, args.outdir, executor, force=args.force, on_event=bar, should_stop=stop
            )
        finally:
            bar.close()
    if not args.quiet:
        _say(_table(summary))
    c = summary.counts()
    if summary.interrupted:
        kept = c["done"] + c["skipped"]
        _say(
            f"brushwork: interrupted; {kept} finished jobs kept in {args.outdir}; "
            f"the same command again does the other {len(jobs) - kept}"
        )
        return EXIT_INTERRUPTED
    return 1 if c["failed"] else 0
