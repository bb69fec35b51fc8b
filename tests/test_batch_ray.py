"""brushwork batch on Ray: same pictures as local, reruns skip, killed workers are retried.

Ray starts once for this module (``ray.init(num_cpus=2)``); the executor finds it
running and uses it, as it would any runtime this process is connected to.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from brushwork.batch.jobs import JobRequest, build_jobs
from brushwork.batch.ray_exec import RayExecutor
from brushwork.batch.runner import execute
from brushwork.batch.worker import JobOutcome, JobStarted
from brushwork.cli import main

# fp32: Ray's workers run one thread each, this process two; in bf16 the different
# summation order alone moves pixels by up to ~1/255 on average, in fp32 by ~0.
TINY = ["--size", "64", "--iterations", "6", "--precision", "fp32"]


@pytest.fixture(scope="module")
def ray_runtime() -> Iterator[None]:
    import ray

    from brushwork.engine import load_network

    load_network()  # fill this session's weights cache once, before two workers want it
    ray.init(
        num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING
    )
    yield
    ray.shutdown()


def _pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.float64)


def test_ray_makes_the_local_pictures_and_reruns_skip(
    ray_runtime: None,
    folders: tuple[Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    contents, styles = folders
    common = ["batch", "--content", str(contents), "--style", str(styles), *TINY, "-q"]
    assert main([*common, "-o", str(tmp_path / "local")]) == 0
    assert main([*common, "-o", str(tmp_path / "ray"), "--ray"]) == 0
    names = sorted(p.name for p in (tmp_path / "local").glob("*.png"))
    assert names == sorted(p.name for p in (tmp_path / "ray").glob("*.png"))
    assert len(names) == 2
    for name in names:
        a, b = _pixels(tmp_path / "local" / name), _pixels(tmp_path / "ray" / name)
        assert a.shape == b.shape
        assert np.abs(a - b).mean() <= 1.0, name  # at most 1/255 on average

    summary = json.loads((tmp_path / "ray" / "summary.json").read_text())
    assert summary["executor"] == "ray" and summary["counts"]["done"] == 2
    # Two idle workers, two jobs: one each, in processes other than this one.
    pids = {j["worker"]["pid"] for j in summary["jobs"]}
    assert len(pids) == 2 and os.getpid() not in pids
    assert sum(summary["by_node"].values()) == 2 and "local" not in summary["by_node"]
    record = json.loads((tmp_path / "ray" / (names[0] + ".json")).read_text())
    assert record["batch"]["worker"]["pid"] in pids and record["stopped"] is None

    # The rerun skips both, on Ray as locally, and a local rerun accepts Ray's outputs.
    capsys.readouterr()
    assert main([*common, "-o", str(tmp_path / "ray"), "--ray"]) == 0
    assert json.loads((tmp_path / "ray" / "summary.json").read_text())["counts"]["skipped"] == 2
    assert main([*common, "-o", str(tmp_path / "ray")]) == 0
    assert json.loads((tmp_path / "ray" / "summary.json").read_text())["counts"]["skipped"] == 2


def _cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from /proc (fields 14 and 15, after the command name)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_a_killed_worker_has_its_job_retried(
    ray_runtime: None, folders: tuple[Path, Path], tmp_path: Path
) -> None:
    contents, styles = folders
    jobs = build_jobs(
        [JobRequest(contents / "rainier.png", styles / "starry.png")],
        preset=None,
        overrides={"size": 128, "iterations": 40, "precision": "fp32"},
        fmt="png",
    )
    killed: dict[str, int] = {}
    finished = threading.Event()

    def kill_when_busy(pid: int) -> None:
        # Kill only once the worker has spent a CPU-second on this job (loading the
        # network, then iterating): then it is surely mid-job.
        start = _cpu_seconds(pid)
        deadline = time.monotonic() + 120
        while not finished.is_set() and time.monotonic() < deadline:
            if _cpu_seconds(pid) - start >= 1.0:
                os.kill(pid, signal.SIGKILL)
                killed["pid"] = pid
                return
            time.sleep(0.02)

    threads: list[threading.Thread] = []

    def on_event(event: object) -> None:
        if isinstance(event, JobStarted) and not threads:
            threads.append(threading.Thread(target=kill_when_busy, args=(event.worker.pid,)))
            threads[0].start()
        if isinstance(event, JobOutcome) and event.status != "skipped":
            finished.set()

    summary = execute(jobs, tmp_path / "out", RayExecutor(workers=1, retries=2), on_event=on_event)
    threads[0].join()
    assert "pid" in killed, "the job ended before the worker could be killed"
    with pytest.raises(ProcessLookupError):
        os.kill(killed["pid"], 0)
    (outcome,) = summary.outcomes
    assert outcome.status == "done", outcome.error
    assert outcome.worker is not None and outcome.worker.pid != killed["pid"]
    record = json.loads((tmp_path / "out" / (jobs[0].name + ".json")).read_text())
    assert record["batch"]["worker"]["pid"] == outcome.worker.pid
    assert record["iterations_run"] == 40


def test_bad_input_on_ray_fails_once_without_retry(
    ray_runtime: None,
    folders: tuple[Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    contents, styles = folders
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    out = tmp_path / "out"
    argv = ["batch", "--content", str(broken), "--style", str(styles), "-o", str(out), "--ray"]
    assert main([*argv, *TINY]) == 1
    err = capsys.readouterr().err
    assert err.count("job broken--starry") == 1
    summary = json.loads((out / "summary.json").read_text())
    (job,) = summary["jobs"]
    assert job["status"] == "failed" and "broken.jpg" in job["error"]
    # The error came back as a value from the worker that met it: no retry, no restart.
    assert job["worker"]["pid"] != os.getpid()
    assert not list(out.glob("broken--*"))
