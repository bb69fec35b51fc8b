"""Batch benchmark: jobs per minute locally, on a local Ray runtime and on a 3-node Ray cluster.

Two batches, each run the way a user runs them (``brushwork batch`` in a fresh process):

* a grid: 2 photos (the book's rainier, scikit-image's chelsea) x 2 paintings (starry
  night, great wave);
* a sweep: one pair at 12 strengths from a JSONL manifest.

Each batch runs locally, with ``--ray`` (a local runtime), and with ``--ray-address`` on a
cluster started here with ``ray start``: a head node with no CPUs plus two worker nodes of
one CPU each, all on this machine. Every run is repeated at once to show that the rerun
skips everything. It prints one table (wall time, jobs per minute, seconds per job on
the worker, jobs per node), how far the Ray and cluster pictures are from the local ones,
and the throughput model for N GPU nodes with this run's per-job time and overhead
plugged in.

    python benchmarks/batch.py                          # 256 px, 30 iterations per job
    python benchmarks/batch.py --size 64 --iterations 4 --sweep 4   # a quick check
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from brushwork.demo import demo_photo_path
from child import SHARED

PHOTOS = {"rainier": SHARED / "d2l" / "rainier.jpg", "chelsea": demo_photo_path()}
PAINTINGS = {
    "starry_night": SHARED / "styles" / "starry_night.jpg",
    "great_wave": SHARED / "styles" / "hokusai_great_wave.jpg",
}


def prepare(work: Path, sweep: int) -> tuple[Path, Path, Path]:
    """Copies of the inputs (the grid's two folders) and the sweep's manifest."""
    photos, paintings = work / "photos", work / "paintings"
    for folder, files in ((photos, PHOTOS), (paintings, PAINTINGS)):
        folder.mkdir(parents=True, exist_ok=True)
        for name, src in files.items():
            dst = folder / f"{name}{src.suffix}"
            if not dst.exists():
                dst.write_bytes(src.read_bytes())
    strengths = np.geomspace(0.25, 8.0, sweep) if sweep > 1 else np.array([1.0])
    manifest = work / "sweep.jsonl"
    manifest.write_text(
        "".join(
            json.dumps(
                {
                    "content": "photos/rainier.jpg",
                    "style": "paintings/starry_night.jpg",
                    "strength": round(float(s), 4),
                }
            )
            + "\n"
            for s in strengths
        )
    )
    return photos, paintings, manifest


def batch(args: Sequence[str], env: dict[str, str] | None = None) -> tuple[float, dict[str, Any]]:
    """Run ``brushwork batch ARGS`` in a fresh process; its wall time and summary.json."""
    out = Path(args[list(args).index("-o") + 1])
    t = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "brushwork", "batch", *args, "-q"],
        capture_output=True,
        text=True,
        env=env,
    )
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        sys.exit(f"brushwork batch {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
    return wall, json.loads((out / "summary.json").read_text())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("", 0))
        return int(s.getsockname()[1])


@contextmanager
def local_cluster(workers: int, cpus: int, temp_dir: Path) -> Iterator[str]:
    """``ray start --head`` (no CPUs) plus ``workers`` nodes of ``cpus`` CPUs, on this machine.

    Each ``ray start --block`` stays in the foreground and takes its node's processes
    down when it gets SIGTERM, so only what this function started is stopped.
    """
    port = free_port()
    address = f"{socket.gethostbyname(socket.gethostname())}:{port}"
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    procs = [
        subprocess.Popen(
            ["ray", "start", "--head", "--block", "--port", str(port), "--num-cpus", "0"]
            + ["--include-dashboard=false", "--temp-dir", str(temp_dir)],
            **quiet,  # type: ignore[call-overload]
        )
    ]
    try:
        import ray

        from brushwork.batch.ray_exec import use_cluster_auth

        use_cluster_auth()
        deadline = time.monotonic() + 120
        while True:  # the head first: worker nodes need it to register
            try:
                ray.init(address=address, log_to_driver=False, logging_level=logging.ERROR)
                break
            except ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)
        for _ in range(workers):
            procs.append(
                subprocess.Popen(
                    ["ray", "start", "--block", "--address", address, "--num-cpus", str(cpus)],
                    **quiet,  # type: ignore[call-overload]
                )
            )
        while sum(n["Alive"] for n in ray.nodes()) < workers + 1:
            if time.monotonic() > deadline:
                raise RuntimeError("the worker nodes did not join within 2 minutes")
            time.sleep(0.5)
        ray.shutdown()
        yield address
    finally:
        for p in reversed(procs):
            p.send_signal(signal.SIGTERM)
        for p in reversed(procs):
            try:
                p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                p.kill()
        # `ray start` leaves the address of its cluster for later plain ray.init() calls
        # to join; once the cluster is gone that would make them wait on a dead address.
        for folder in (temp_dir, Path(tempfile.gettempdir()) / "ray"):
            marker = folder / "ray_current_cluster"
            if marker.is_file() and marker.read_text().strip() == address:
                marker.unlink()


def worker_seconds(summary: dict[str, Any]) -> float:
    """Mean seconds per finished job on its worker."""
    done = [j["seconds"] for j in summary["jobs"] if j["status"] == "done"]
    return sum(done) / len(done) if done else math.nan


def diff_255(a: Path, b: Path) -> tuple[float, float]:
    """Largest per-image mean |a - b| and largest pixel |a - b| over the PNGs of two folders."""
    means, peaks = [0.0], [0.0]
    for f in sorted(a.glob("*.png")):
        x = np.asarray(Image.open(f).convert("RGB"), dtype=np.float64)
        y = np.asarray(Image.open(b / f.name).convert("RGB"), dtype=np.float64)
        means.append(float(np.abs(x - y).mean()))
        peaks.append(float(np.abs(x - y).max()))
    return max(means), max(peaks)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--iterations", type=int, default=30)
    ap.add_argument("--sweep", type=int, default=12, help="jobs in the strength sweep")
    ap.add_argument("--work", type=Path, default=None, help="keep outputs here (default: temp)")
    ap.add_argument("--skip-cluster", action="store_true", help="no 3-node cluster run")
    opts = ap.parse_args()
    work = opts.work or Path(tempfile.mkdtemp(prefix="brushwork-batch-bench-"))
    photos, paintings, manifest = prepare(work, opts.sweep)
    style = ["--size", str(opts.size), "--iterations", str(opts.iterations)]
    batches = {
        "grid": ["--content", str(photos), "--style", str(paintings), *style],
        "sweep": ["--manifest", str(manifest), *style],
    }
    rows: list[dict[str, Any]] = []

    def run_all(executor: str, extra: list[str]) -> None:
        for name, args in batches.items():
            out = work / f"{executor}-{name}"
            for attempt in ("run", "rerun"):
                wall, summary = batch([*args, "-o", str(out), *extra])
                rows.append(
                    {
                        "run": f"{executor} {name}" + (" (rerun)" if attempt == "rerun" else ""),
                        "executor": executor,
                        "batch": name,
                        "jobs": len(summary["jobs"]),
                        "done": summary["counts"]["done"],
                        "skipped": summary["counts"]["skipped"],
                        "wall": wall,
                        "batch_wall": summary["wall_seconds"],
                        "startup": summary["startup_seconds"],
                        "jobs_per_min": 60 * summary["counts"]["done"] / wall,
                        "worker_s": worker_seconds(summary),
                        "workers": len(summary["by_worker"]),
                        "nodes": sorted(summary["by_node"].values(), reverse=True),
                    }
                )

    run_all("local", [])
    # bf16 sums depend on the thread count and L-BFGS amplifies the difference, so
    # pictures are compared with a local run at the Ray workers' one thread per job.
    run_all("local-1t", ["--cpus-per-job", "1"])
    run_all("ray", ["--ray"])
    if not opts.skip_cluster:
        with local_cluster(workers=2, cpus=1, temp_dir=work / "ray-tmp") as address:
            run_all("cluster", ["--ray-address", address])

    print(
        f"brushwork batch: {opts.size} px, {opts.iterations} L-BFGS iterations per scale; "
        f"grid 2 photos x 2 paintings, sweep {opts.sweep} strengths; {os.cpu_count()} CPUs"
    )
    head = f"{'run':<24} {'jobs':>4} {'done':>4} {'skip':>4} {'wall s':>7} {'jobs/min':>8} "
    print(head + f"{'s/job':>6} {'workers':>7}  jobs per node")
    for r in rows:
        print(
            f"{r['run']:<24} {r['jobs']:>4} {r['done']:>4} {r['skipped']:>4} {r['wall']:>7.1f} "
            f"{r['jobs_per_min']:>8.2f} {r['worker_s']:>6.2f} {r['workers']:>7}  "
            + (" + ".join(map(str, r["nodes"])) if r["nodes"] else "-")
        )
    executors = ["ray"] + ([] if opts.skip_cluster else ["cluster"])
    for ex in executors:
        for name in batches:
            for ref in ("local-1t", "local"):
                mean, peak = diff_255(work / f"{ref}-{name}", work / f"{ex}-{name}")
                print(
                    f"{ex} vs {ref}, {name}: largest mean |difference| {mean:.3f}/255, "
                    f"largest pixel {peak:.0f}/255"
                )
    model(rows, executors[-1])
    (work / "bench.json").write_text(json.dumps(rows, indent=2) + "\n")
    print(f"outputs and bench.json in {work}")


def model(rows: list[dict[str, Any]], executor: str) -> None:
    """The throughput expected on N nodes, from this run's per-job time and overhead.

    A batch of J jobs on W workers (N nodes x k jobs per node) takes about
    S + ceil(J / W) * (t + o): start-up S (runtime, actors), the per-job time on
    a worker t (the first job of each worker also loads the network), and the
    per-job overhead o (dispatch, sending the image back, writing it). Steady
    throughput is 60 W / (t + o) jobs per minute.
    """
    sweep = next(r for r in rows if r["executor"] == executor and r["batch"] == "sweep")
    t, w = sweep["worker_s"], sweep["workers"]
    # S: until the first job was handed out (runtime, actors); then J / W rounds of t + o.
    start = sweep["startup"]
    rounds = math.ceil(sweep["jobs"] / w)
    o = max(0.0, (sweep["batch_wall"] - start) / rounds - t)
    print(
        f"model ({executor}, {w} workers): t = {t:.2f} s per job on a worker, "
        f"o = {o:.2f} s overhead per job, S = {start:.1f} s start-up"
    )
    print(
        "  N nodes, k jobs per node: batch wall = S + ceil(J / (N k)) (t + o); "
        "steady jobs/min = 60 N k / (t + o)"
    )
    for n in (1, 4, 16):
        print(
            f"  N = {n:>2}, k = 1: {60 * n / (t + o):8.1f} jobs/min "
            f"(with this run's t; put a GPU's t here for GPU nodes)"
        )


if __name__ == "__main__":
    main()
