"""The job queue (web/jobs.py): a real Store, real uploads, real tiny runs (32 px, 2 iterations)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from brushwork.config import StyleConfig
from brushwork.web.jobs import TERMINAL, Job, JobManager, JobRequest, QueueFull
from brushwork.web.store import Store

TINY = {"size": 32, "iterations": 2}


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "data")


@pytest.fixture
def request_for(store: Store, small_pair: tuple[Path, Path]) -> Callable[..., JobRequest]:
    """``request_for(**options)``: a job request on real uploads of the book's pair."""
    content, style = (
        store.save_upload(p.read_bytes(), p.name, max_pixels=10**6)["id"] for p in small_pair
    )

    def make(**options: int) -> JobRequest:
        return JobRequest(content, (style,), None, {**TINY, **options})

    return make


@pytest.fixture
def make_manager(store: Store) -> Iterator[Callable[..., JobManager]]:
    managers: list[JobManager] = []

    def make(**kw: Any) -> JobManager:
        kw.setdefault("max_queue", 8)
        kw.setdefault("preview_interval", 0.0)
        manager = JobManager(store, **kw)
        managers.append(manager)
        return manager

    yield make
    for manager in managers:
        assert manager.close(timeout=60), "a worker did not stop"


def submit(manager: JobManager, request: JobRequest) -> Job:
    inputs = {"content": "content.png", "styles": ["style.png"]}
    return manager.submit(request, StyleConfig(**request.options), "cpu", inputs)


def wait_until(check: Callable[[], bool], what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"gave up waiting: {what}"
        time.sleep(0.02)


def test_a_job_runs_and_its_result_is_published(
    make_manager: Callable[..., JobManager], store: Store, request_for: Callable[..., JobRequest]
) -> None:
    manager = make_manager()
    job = submit(manager, request_for())
    wait_until(lambda: job.status in TERMINAL, "the job to end")
    assert job.status == "done", job.error
    assert [p[0] for p in job.points] == [1, 2]
    snap = manager.snapshot(job)
    assert snap["result"] == job.id and snap["position"] is None
    entry = store.result(job.id)
    assert entry is not None and entry["record"]["iterations_run"] == 2
    assert entry["record"]["inputs"]["content"] == "content.png"
    assert snap["note"] is None  # the 96x64 photo painted at 32 px is not enlarged


def test_a_result_enlarged_past_twice_the_photo_carries_a_note(
    make_manager: Callable[..., JobManager], request_for: Callable[..., JobRequest]
) -> None:
    manager = make_manager()
    job = submit(manager, request_for(size=200, iterations=1, scales=1))
    wait_until(lambda: job.status in TERMINAL, "the job to end")
    assert job.status == "done", job.error
    note = manager.snapshot(job)["note"]
    assert note is not None and "96x64 px and is enlarged 2.1x to 200 px" in note
    assert note.startswith("The content photo") and "(Size 96 keeps its own size)" in note


def test_positions_queue_limit_and_cancel_while_waiting(
    make_manager: Callable[..., JobManager], request_for: Callable[..., JobRequest]
) -> None:
    gate = threading.Event()  # held clear: nothing starts, the line stands still
    manager = make_manager(max_queue=3, gate=gate)
    jobs = [submit(manager, request_for(seed=i)) for i in range(3)]
    assert [manager.position(j) for j in jobs] == [1, 2, 3]
    with pytest.raises(QueueFull, match=r"3 jobs waiting \(limit 3\)\. Nothing was queued"):
        submit(manager, request_for())
    assert manager.active() == jobs  # the refused one is nowhere

    assert manager.cancel(jobs[1].id) is jobs[1]
    assert jobs[1].status == "cancelled" and jobs[1].error is None
    assert [manager.position(j) for j in jobs] == [1, None, 2]
    assert manager.cancel("0" * 32) is None
    late = submit(manager, request_for())  # the cancelled one freed its place
    assert manager.position(late) == 3

    gate.set()
    wait_until(lambda: all(j.status in TERMINAL for j in (*jobs, late)), "the line to run")
    assert [j.status for j in (*jobs, late)] == ["done", "cancelled", "done", "done"]


def test_close_cancels_waiting_jobs_and_refuses_new_ones(
    make_manager: Callable[..., JobManager], request_for: Callable[..., JobRequest]
) -> None:
    manager = make_manager(gate=threading.Event())
    jobs = [submit(manager, request_for()) for _ in range(2)]
    assert manager.close(timeout=30)
    assert [(j.status, j.error) for j in jobs] == [("cancelled", "the server shut down")] * 2
    assert manager.active() == []
    with pytest.raises(QueueFull):
        submit(manager, request_for())


def test_stop_soon_stops_the_running_job_and_close_joins(
    make_manager: Callable[..., JobManager], store: Store, request_for: Callable[..., JobRequest]
) -> None:
    manager = make_manager()
    job = submit(manager, request_for(iterations=50_000))
    waiting = submit(manager, request_for())
    wait_until(lambda: job.progress is not None, "the first iteration")
    assert not manager.closing

    manager.stop_soon()  # what Ctrl-C calls, from a signal handler: returns at once
    assert manager.closing
    wait_until(lambda: job.status in TERMINAL, "the running job to stop")
    assert (job.status, job.error) == ("cancelled", "the server shut down")
    assert job.progress is not None and job.progress["iteration"] < 50_000
    assert manager.close(timeout=30)
    assert waiting.status == "cancelled"
    assert store.gallery() == []  # a stopped run is never published


def test_cancel_of_a_running_job(
    make_manager: Callable[..., JobManager], request_for: Callable[..., JobRequest]
) -> None:
    manager = make_manager()
    job = submit(manager, request_for(iterations=50_000))
    wait_until(lambda: job.progress is not None, "the first iteration")
    assert manager.position(job) == 0
    manager.cancel(job.id)
    wait_until(lambda: job.status in TERMINAL, "the job to stop")
    assert (job.status, job.error) == ("cancelled", None)


def test_a_failing_job_is_reported_and_the_worker_goes_on(
    make_manager: Callable[..., JobManager], store: Store, request_for: Callable[..., JobRequest]
) -> None:
    gate = threading.Event()
    manager = make_manager(gate=gate)
    doomed = request_for()
    gone = submit(manager, doomed)
    path = store.upload_file(doomed.content)
    assert path is not None
    path.unlink()  # the input disappears while the job waits
    fine = submit(manager, JobRequest(doomed.styles[0], doomed.styles, None, TINY))
    gate.set()
    wait_until(lambda: fine.status in TERMINAL, "the second job")
    assert gone.status == "failed" and "no longer on the server" in str(gone.error)
    assert fine.status == "done"
