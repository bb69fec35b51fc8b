"""Drive an executor: skip finished jobs, write each result as it arrives, summarize.

Only the driver writes into the output folder: workers send back the encoded image
and its record (:class:`~brushwork.batch.worker.JobOutcome`), and
:func:`execute` writes the image, then its sidecar, each atomically. An
interrupted batch therefore leaves finished jobs complete and nothing else, and a
rerun skips exactly the finished ones.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from brushwork.batch.jobs import JobSpec, is_done
from brushwork.batch.worker import JobOutcome, JobStarted

#: The summary file written into the output folder at the end of every batch.
SUMMARY_NAME = "summary.json"


class Executor(Protocol):
    name: str

    def run(
        self, jobs: Sequence[JobSpec], should_stop: Callable[[], bool]
    ) -> Iterator[JobStarted | JobOutcome]: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class BatchPlanned:
    """Sent once, before any job runs: how many jobs, how many a rerun skips."""

    total: int
    to_run: int
    skipped: int


BatchEvent = BatchPlanned | JobStarted | JobOutcome


@dataclass(frozen=True)
class BatchSummary:
    """The end of a batch: every job's outcome (without image bytes) and the wall time.

    ``jobs_per_minute`` counts jobs that ran and finished ("done") over the wall
    time of the whole batch, planning and start-up included.
    """

    executor: str
    outdir: Path
    jobs: tuple[JobSpec, ...]
    outcomes: tuple[JobOutcome, ...]
    wall_seconds: float
    interrupted: bool
    startup_seconds: float = 0.0  # from the start to the first job handed to a worker

    def counts(self) -> dict[str, int]:
        c = Counter(o.status for o in self.outcomes)
        return {s: c.get(s, 0) for s in ("done", "skipped", "failed", "cancelled", "not run")}

    @property
    def jobs_per_minute(self) -> float:
        done = self.counts()["done"]
        return 60.0 * done / self.wall_seconds if self.wall_seconds > 0 else 0.0

    def by_worker(self) -> dict[str, dict[str, Any]]:
        """Jobs done per worker process: count, mean seconds per job, its node."""
        out: dict[str, dict[str, Any]] = {}
        for o in self.outcomes:
            if o.status != "done" or o.worker is None:
                continue
            row = out.setdefault(
                o.worker.label, {"node": o.worker.node, "host": o.worker.host, "jobs": 0, "s": 0.0}
            )
            row["jobs"] += 1
            row["s"] += o.seconds
        for row in out.values():
            row["mean_seconds"] = round(row.pop("s") / row["jobs"], 3)
        return out

    def by_node(self) -> dict[str, int]:
        """Jobs done per node (Ray node id; "local" without Ray)."""
        return dict(
            Counter(o.worker.node for o in self.outcomes if o.status == "done" and o.worker)
        )

    def to_json(self) -> dict[str, Any]:
        specs = {j.name: j for j in self.jobs}
        rows = []
        for o in self.outcomes:
            job = specs[o.name]
            rows.append(
                {
                    "name": o.name,
                    "content": job.content,
                    "style": job.style,
                    "options": _plain(dict(job.options)),
                    "status": o.status,
                    "seconds": round(o.seconds, 3),
                    "worker": None if o.worker is None else o.worker.to_dict(),
                    "error": o.error,
                    "note": o.note,
                }
            )
        return {
            "executor": self.executor,
            "outdir": str(self.outdir),
            "counts": self.counts(),
            "wall_seconds": round(self.wall_seconds, 3),
            "startup_seconds": round(self.startup_seconds, 3),
            "jobs_per_minute": round(self.jobs_per_minute, 3),
            "interrupted": self.interrupted,
            "by_worker": self.by_worker(),
            "by_node": self.by_node(),
            "jobs": rows,
        }


def _plain(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def execute(
    jobs: Sequence[JobSpec],
    outdir: Path,
    executor: Executor,
    *,
    force: bool = False,
    on_event: Callable[[BatchEvent], None] | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> BatchSummary:
    """Run ``jobs`` on ``executor``, writing results into ``outdir``, then ``summary.json``.

    ``outdir`` is created if missing. Jobs whose output and record already match
    are skipped unless ``force``.
    Events go to ``on_event`` as they happen. A job whose output cannot be
    written counts as failed. Jobs never reached after ``should_stop`` returned
    True are "not run". The executor is closed at the end, whatever happens.
    """
    from brushwork.images import atomic_write, sidecar_path

    emit = on_event or (lambda _e: None)
    start = time.perf_counter()
    outdir.mkdir(parents=True, exist_ok=True)
    outcomes: dict[str, JobOutcome] = {}
    to_run: list[JobSpec] = []
    for job in jobs:
        if not force and is_done(job, outdir):
            outcomes[job.name] = JobOutcome(job.name, "skipped")
        else:
            to_run.append(job)
    emit(BatchPlanned(total=len(jobs), to_run=len(to_run), skipped=len(outcomes)))
    for o in list(outcomes.values()):
        emit(o)
    first_start: float | None = None
    try:
        for event in executor.run(to_run, should_stop) if to_run else ():
            if isinstance(event, JobStarted) and first_start is None:
                first_start = time.perf_counter() - start
            if isinstance(event, JobOutcome):
                if event.status == "done":
                    event = _write(event, outdir, atomic_write, sidecar_path)
                outcomes[event.name] = dataclasses.replace(event, image=None, record=None)
            emit(event)
    finally:
        executor.close()
    for job in to_run:
        if job.name not in outcomes:
            outcomes[job.name] = JobOutcome(job.name, "not run")
    summary = BatchSummary(
        executor=executor.name,
        outdir=outdir,
        jobs=tuple(jobs),
        outcomes=tuple(outcomes[j.name] for j in jobs),
        wall_seconds=time.perf_counter() - start,
        interrupted=should_stop(),
        startup_seconds=first_start or 0.0,
    )
    text = json.dumps(summary.to_json(), indent=2, sort_keys=True) + "\n"
    atomic_write(outdir / SUMMARY_NAME, text.encode())
    return summary


def _write(
    outcome: JobOutcome,
    outdir: Path,
    atomic_write: Callable[[Path, bytes], None],
    sidecar_path: Callable[[Path], Path],
) -> JobOutcome:
    """Image first, then its record: a record on disk always vouches for its image."""
    assert outcome.image is not None and outcome.record is not None
    out = outdir / outcome.name
    try:
        atomic_write(out, outcome.image)
        text = json.dumps(outcome.record, indent=2, sort_keys=True) + "\n"
        atomic_write(sidecar_path(out), text.encode())
    except OSError as e:
        return dataclasses.replace(
            outcome, status="failed", error=f"could not write {out}: {e.strerror or e}"
        )
    return outcome
