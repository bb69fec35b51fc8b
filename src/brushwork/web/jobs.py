"""The job queue: one worker thread per device, a bounded waiting line.

Jobs live in memory (a restart forgets queued and running ones); finished
results live in the :class:`~brushwork.web.store.Store` and survive. All job
state is guarded by one condition variable: the worker thread writes it, the
web handlers read snapshots of it.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from PIL import Image

from brushwork.config import StyleConfig
from brushwork.engine import stylize
from brushwork.errors import BrushworkError
from brushwork.images import encode_image, enlargement_note, load_image
from brushwork.progress import Progress
from brushwork.web import PREVIEW_INTERVAL
from brushwork.web.forms import to_json
from brushwork.web.store import Store, new_id

log = logging.getLogger("brushwork.web")

Status = Literal["queued", "running", "done", "cancelled", "failed"]
TERMINAL: frozenset[str] = frozenset({"done", "cancelled", "failed"})


class QueueFull(Exception):
    """The waiting line is at its limit; the job was not accepted."""

    def __init__(self, waiting: int, limit: int) -> None:
        super().__init__(
            f"The queue is full: {waiting} job{'s' if waiting != 1 else ''} waiting "
            f"(limit {limit}). Nothing was queued; try again when one finishes."
        )


@dataclass(frozen=True)
class JobRequest:
    """What the client asked for, already checked: upload IDs, preset, options."""

    content: str
    styles: tuple[str, ...]
    preset: str | None
    options: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {
            "content": self.content,
            "styles": list(self.styles),
            "preset": self.preset,
            "options": to_json(self.options),
        }


@dataclass(eq=False)
class Job:
    id: str
    request: JobRequest
    config: StyleConfig
    device: str
    inputs: dict[str, Any]  # names and hashes of the uploads, for the run record
    created: float = field(default_factory=time.time)
    status: Status = "queued"
    started: float | None = None
    finished: float | None = None
    progress: dict[str, Any] | None = None
    points: list[list[float | None]] = field(default_factory=list)  # [it, content, style, tv]
    preview: bytes | None = None
    preview_version: int = 0
    preview_at: float = 0.0
    error: str | None = None
    note: str | None = None  # one line about a finished result (images.enlargement_note)
    version: int = 0  # bumped on every change, so event streams know when to send
    cancel: threading.Event = field(default_factory=threading.Event)


def progress_json(p: Progress) -> dict[str, Any]:
    """Every Progress field but the image (new fields come along), the ETA filled in.

    The engine's ETA weighs iterations by their pixels (a print's last scales
    cost far more per iteration); a record without one falls back to the mean.
    """
    data = {f.name: getattr(p, f.name) for f in dataclasses.fields(p) if f.name != "image"}
    remaining = p.total_iterations - p.iteration
    if p.done:
        data["eta"] = 0.0
    elif p.eta is None:
        data["eta"] = p.elapsed / p.iteration * remaining if p.iteration > 0 else 0.0
    return dict(to_json(data))


class JobManager:
    """Accepts jobs, runs them one at a time per device, reports the truth about the line.

    ``gate``, when given, must be set before a worker takes the next job: tests
    use it to hold the line still and read positions deterministically.
    """

    def __init__(
        self,
        store: Store,
        *,
        max_queue: int,
        gate: threading.Event | None = None,
        preview_interval: float = PREVIEW_INTERVAL,
        keep_finished: int = 100,
    ) -> None:
        if max_queue < 1:
            raise ValueError("max_queue must be at least 1")
        self.store = store
        self.max_queue = max_queue
        self.gate = gate
        self.preview_interval = preview_interval
        self.keep_finished = keep_finished
        self._cond = threading.Condition()
        self._jobs: dict[str, Job] = {}
        self._queues: dict[str, deque[Job]] = {}
        self._workers: dict[str, threading.Thread] = {}
        self._closed = False

    # -- the web side ----------------------------------------------------------

    def submit(
        self, request: JobRequest, config: StyleConfig, device: str, inputs: dict[str, Any]
    ) -> Job:
        with self._cond:
            if self._closed:
                raise QueueFull(0, self.max_queue)
            waiting = sum(len(q) for q in self._queues.values())
            if waiting >= self.max_queue:
                raise QueueFull(waiting, self.max_queue)
            job = Job(new_id(), request, config, device, inputs)
            self._jobs[job.id] = job
            self._queues.setdefault(device, deque()).append(job)
            self._start_worker(device)
            self._prune()
            self._cond.notify_all()
            return job

    def get(self, jid: str) -> Job | None:
        with self._cond:
            return self._jobs.get(jid)

    def cancel(self, jid: str) -> Job | None:
        """Cancel a waiting job at once, or ask a running one to stop after this iteration."""
        with self._cond:
            job = self._jobs.get(jid)
            if job is None:
                return None
            if job.status == "queued":
                self._queues[job.device].remove(job)
                self._finish_locked(job, "cancelled", None)
            elif job.status == "running":
                job.cancel.set()
            return job

    def position(self, job: Job) -> int | None:
        """0 while running, 1.. while waiting (1 = next), None once finished."""
        with self._cond:
            if job.status == "running":
                return 0
            if job.status == "queued":
                return self._queues[job.device].index(job) + 1
            return None

    def snapshot(self, job: Job, points_from: int = 0) -> dict[str, Any]:
        """JSON-ready state of ``job``, with loss points from index ``points_from`` on."""
        with self._cond:
            return {
                "id": job.id,
                "status": job.status,
                "device": job.device,
                "position": self.position(job),
                "running_ahead": self._running_on(job.device) if job.status == "queued" else 0,
                "created": job.created,
                "started": job.started,
                "finished": job.finished,
                "request": job.request.to_json(),
                "progress": job.progress,
                "points_from": points_from,
                "points": job.points[points_from:],
                "preview_version": job.preview_version,
                "error": job.error,
                "note": job.note,
                "result": job.id if job.status == "done" else None,
                "version": job.version,
            }

    def active(self) -> list[Job]:
        with self._cond:
            return [j for j in self._jobs.values() if j.status not in TERMINAL]

    def preview(self, job: Job) -> bytes | None:
        with self._cond:
            return job.preview

    @property
    def closing(self) -> bool:
        """True once shutdown began: event streams end, running jobs stop, no job starts."""
        return self._closed

    def stop_soon(self) -> None:
        """Begin shutdown without blocking: running jobs stop after their iteration.

        Safe in a signal handler: it takes no lock (the handler may have interrupted
        this very thread while it held one) and only sets the flag that workers and
        event streams poll. :meth:`close` does the rest.
        """
        self._closed = True

    def close(self, timeout: float) -> bool:
        """Stop taking jobs, cancel the waiting ones, stop the running ones, join the workers.

        Waits at most ``timeout`` seconds: an iteration can be long and a stuck one
        endless. Returns False if a worker is still running then (its thread is a
        daemon; the caller decides how to end the process around it).
        """
        with self._cond:
            self._closed = True
            for queue in self._queues.values():
                while queue:
                    self._finish_locked(queue.popleft(), "cancelled", "the server shut down")
            self._cond.notify_all()
            workers = list(self._workers.values())
        deadline = time.monotonic() + timeout
        for w in workers:
            w.join(max(0.0, deadline - time.monotonic()))
        return not any(w.is_alive() for w in workers)

    # -- the worker side -------------------------------------------------------

    def _start_worker(self, device: str) -> None:
        if device not in self._workers:
            t = threading.Thread(
                target=self._work, args=(device,), daemon=True, name=f"brushwork-worker-{device}"
            )
            self._workers[device] = t
            t.start()

    def _running_on(self, device: str) -> int:
        return sum(1 for j in self._jobs.values() if j.device == device and j.status == "running")

    def _work(self, device: str) -> None:
        queue = self._queues[device]
        while True:
            with self._cond:
                while not self._closed and not queue:
                    self._cond.wait()
                if self._closed:
                    return
            if self.gate is not None:
                while not self.gate.wait(0.05):
                    if self._closed:
                        return
            with self._cond:
                if self._closed:
                    return
                if not queue:  # the job we woke for was cancelled meanwhile
                    continue
                job = queue.popleft()
                job.status = "running"
                job.started = time.time()
                self._bump(job)
            self._run(job)

    def _run(self, job: Job) -> None:
        try:
            content = load_image(self._input(job.request.content), "content")
            styles = [load_image(self._input(uid), "style") for uid in job.request.styles]
            image = stylize(
                content,
                styles[0] if len(styles) == 1 else styles,
                config=job.config,
                callback=lambda p: self._on_progress(job, p),
                should_stop=lambda: job.cancel.is_set() or self._closed,
                preview_every=1,
            )
            record = {
                **image.info["brushwork"],
                "inputs": job.inputs,
                "studio": job.request.to_json(),
            }
            stopped = record.get("stopped")
            if stopped is None:
                note = enlargement_note(content.size, image.size, size_option="Size")
                job.note = None if note is None else note[0].upper() + note[1:]  # a sentence
                self._publish(job, image, record)
        except BrushworkError as e:
            self._finish(job, "failed", str(e))
            return
        except Exception as e:  # a bug must not kill the worker: the job shows it, the log keeps it
            log.exception("job %s failed", job.id)
            self._finish(job, "failed", f"internal error ({type(e).__name__}: {e})")
            return
        if stopped == "cancelled":
            self._finish(job, "cancelled", None if job.cancel.is_set() else "the server shut down")
        elif stopped == "nonfinite":
            self._finish(
                job,
                "failed",
                f"the loss became non-finite after {record['iterations_run']} iterations; "
                "lower the learning rate or the style weight",
            )
        else:
            self._finish(job, "done", None)

    def _input(self, uid: str) -> Path:
        path = self.store.upload_file(uid)
        if path is None:
            raise BrushworkError("an input image of this job is no longer on the server")
        return path

    def _publish(self, job: Job, image: Image.Image, record: dict[str, Any]) -> None:
        entry = {
            **job.request.to_json(),
            "created": job.created,
            "finished": time.time(),
            "iterations_run": record.get("iterations_run"),
            "seconds": record.get("seconds"),
        }
        try:
            self.store.save_result(job.id, image, record, entry)
        except OSError as e:
            raise BrushworkError(f"could not save the result: {e.strerror or e}") from None

    def _on_progress(self, job: Job, p: Progress) -> None:
        now = time.monotonic()
        preview = None
        # Encoding every frame would cost more than it shows; a few per second is live enough.
        if p.image is not None and (p.done or now - job.preview_at >= self.preview_interval):
            preview = encode_image(p.image, "JPEG")
        data = progress_json(p)
        with self._cond:
            job.progress = data
            if not p.done:
                job.points.append(
                    [p.iteration, data["content_loss"], data["style_loss"], data["tv_loss"]]
                )
            if preview is not None:
                job.preview = preview
                job.preview_version += 1
                job.preview_at = now
            self._bump(job)

    def _finish(self, job: Job, status: Status, error: str | None) -> None:
        with self._cond:
            self._finish_locked(job, status, error)

    def _finish_locked(self, job: Job, status: Status, error: str | None) -> None:
        job.status = status
        job.error = error
        job.finished = time.time()
        if status == "done":
            job.preview = None  # the result is on disk now; keep memory flat
        self._bump(job)

    def _bump(self, job: Job) -> None:
        job.version += 1
        self._cond.notify_all()

    def _prune(self) -> None:
        """Forget the oldest finished jobs past ``keep_finished`` (their results stay on disk)."""
        finished = [j for j in self._jobs.values() if j.status in TERMINAL]
        for j in finished[: max(0, len(finished) - self.keep_finished)]:
            del self._jobs[j.id]
