"""The Ray executor: a pool of actors that keep the network loaded, on one machine or many.

Imported only when ``--ray`` or ``--ray-address`` is given (Ray is the ``[ray]`` extra).

* Each actor (:class:`Painter`) asks Ray for ``cpus_per_job`` CPUs and
  ``gpus_per_job`` GPUs, so Ray places one job per that much of a node, and keeps
  its networks loaded between jobs (:class:`~brushwork.batch.worker.NetworkCache`).
* Actors are created with ``max_restarts`` and ``max_task_retries``: when a worker
  process dies (killed, out of memory, a node lost) Ray restarts it and runs the
  job it held again. A job that fails on its own (a bad input) returns its error
  as a value, so Ray sees a success and never retries it.
* Workers read inputs by path (the paths must be visible on every node: a shared
  filesystem, or one machine) and send back the encoded image and its record; only
  the driver writes into the output folder.
* The driver hands each idle actor one job at a time, so a stop (Ctrl-C) has at
  most one job per actor to abandon: those actors are killed, nothing half-written
  reaches the output folder.
"""

from __future__ import annotations

import contextlib
import logging
import math
import socket
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import ray

from brushwork.batch.jobs import JobSpec
from brushwork.batch.worker import (
    JobOutcome,
    JobStarted,
    NetworkCache,
    Status,
    WorkerInfo,
    run_job,
    this_worker,
)
from brushwork.errors import BrushworkError, ConfigError

#: How often the driver wakes to check for a stop request while jobs run, seconds.
POLL_SECONDS = 0.2


class Painter:
    """A Ray actor's state: loaded networks and who it is (host, pid, node)."""

    def __init__(self, threads: int) -> None:
        import torch

        # Ray sets OMP_NUM_THREADS for the actor's CPUs; torch is told the same so
        # actors sharing a node do not oversubscribe its cores.
        torch.set_num_threads(max(1, threads))
        self.networks = NetworkCache()
        self.worker = this_worker(ray.get_runtime_context().get_node_id())

    def info(self) -> WorkerInfo:
        return self.worker

    def run(self, job: JobSpec) -> JobOutcome:
        return run_job(job, self.networks, self.worker)


class RayExecutor:
    """Runs jobs on a pool of :class:`Painter` actors.

    ``address=None`` starts a local Ray runtime with ``num_cpus`` CPUs (unless this
    process is already connected to one, which is then used and left running);
    an address joins that cluster. Either happens when the first jobs run.
    ``workers`` fixes the pool size; by default it is as many actors as the live
    nodes have room for, at most one per job.
    """

    name = "ray"

    def __init__(
        self,
        *,
        address: str | None = None,
        num_cpus: int | None = None,
        cpus_per_job: float = 1.0,
        gpus_per_job: float = 0.0,
        workers: int | None = None,
        retries: int = 3,
    ) -> None:
        self.cpus_per_job = cpus_per_job
        self.gpus_per_job = gpus_per_job
        self.workers = workers
        self.retries = retries
        self.address = address
        self.num_cpus = num_cpus
        self._started = False
        self._actors: list[Any] = []
        if address is not None:
            _check_reachable(address)  # before any work; connecting waits for the first job

    def _connect(self) -> None:
        """Join or start Ray, on the first jobs to run (a rerun that skips all never does)."""
        if ray.is_initialized():
            return
        quiet: dict[str, Any] = {"logging_level": logging.WARNING, "log_to_driver": False}
        address = self.address
        try:
            if address is None:
                # "local": a new runtime even where `ray start` left an address file
                # behind (plain ray.init() would join that cluster, or wait on it).
                ray.init("local", num_cpus=self.num_cpus, include_dashboard=False, **quiet)
            else:
                use_cluster_auth()
                ray.init(address=address, **quiet)
        except (ConnectionError, RuntimeError, ValueError) as e:
            where = f"the Ray cluster at {address}" if address else "a local Ray runtime"
            raise BrushworkError(f"could not start {where}: {e}".splitlines()[0]) from None
        self._started = True

    def pool_size(self, n_jobs: int) -> int:
        """Actors that fit on the live nodes (per node: its CPUs and GPUs per job)."""
        if self.workers is not None:
            return max(1, min(self.workers, n_jobs))
        room = 0
        for node in ray.nodes():  # type: ignore[no-untyped-call]
            if not node.get("Alive"):
                continue
            res = node.get("Resources", {})
            fits = [math.inf]
            if self.cpus_per_job > 0:
                fits.append(math.floor(res.get("CPU", 0) / self.cpus_per_job + 1e-9))
            if self.gpus_per_job > 0:
                fits.append(math.floor(res.get("GPU", 0) / self.gpus_per_job + 1e-9))
            n = min(fits)
            room += 0 if n == math.inf else int(n)
        if room == 0:
            need = f"{self.cpus_per_job:g} CPU" + (
                f" and {self.gpus_per_job:g} GPU" if self.gpus_per_job else ""
            )
            raise ConfigError(f"no node of the Ray cluster has {need} free for one job")
        return min(room, n_jobs)

    def _new_actor(self) -> Any:
        cls = ray.remote(Painter).options(
            num_cpus=self.cpus_per_job,
            num_gpus=self.gpus_per_job,
            max_restarts=self.retries,
            max_task_retries=self.retries,
        )
        actor = cls.remote(max(1, round(self.cpus_per_job)))
        self._actors.append(actor)
        return actor

    def run(
        self, jobs: Sequence[JobSpec], should_stop: Callable[[], bool]
    ) -> Iterator[JobStarted | JobOutcome]:
        """Yield a :class:`JobStarted` per dispatched job and a :class:`JobOutcome` per result.

        On a stop request the busy actors are killed and their jobs reported
        "cancelled"; jobs not yet dispatched are left for the caller ("not run").
        """
        from ray.exceptions import RayActorError, RayError, RayTaskError

        self._connect()
        actors = [self._new_actor() for _ in range(self.pool_size(len(jobs)))]
        try:
            infos: dict[int, WorkerInfo] = dict(
                zip(range(len(actors)), ray.get([a.info.remote() for a in actors]), strict=True)
            )
        except RayError as e:
            raise BrushworkError(f"Ray workers could not start: {_first_line(e)}") from None
        idle = deque(range(len(actors)))
        queue = deque(jobs)
        busy: dict[Any, tuple[int, JobSpec]] = {}
        try:
            while queue or busy:
                if should_stop():
                    break
                while idle and queue:
                    i, job = idle.popleft(), queue.popleft()
                    busy[actors[i].run.remote(job)] = (i, job)
                    yield JobStarted(job.name, infos[i])
                ready, _ = ray.wait(list(busy), num_returns=1, timeout=POLL_SECONDS)
                for ref in ready:
                    i, job = busy.pop(ref)
                    try:
                        outcome: JobOutcome = ray.get(ref)
                    except RayActorError as e:
                        # The worker died more often than it may restart: this job
                        # fails, and a fresh actor takes the slot.
                        outcome = JobOutcome(
                            job.name,
                            "failed",
                            worker=infos[i],
                            error=f"the worker died and was not revived: {_first_line(e)}",
                        )
                        ray.kill(actors[i], no_restart=True)
                        actors[i] = self._new_actor()
                        infos[i] = ray.get(actors[i].info.remote())
                    except RayTaskError as e:
                        # A terminal's Ctrl-C also reaches workers on this machine: their
                        # interrupted jobs are cancelled, not failed.
                        status: Status = "cancelled" if should_stop() else "failed"
                        outcome = JobOutcome(
                            job.name, status, worker=infos[i], error=_first_line(e)
                        )
                    idle.append(i)
                    yield outcome
            for i, job in busy.values():
                ray.kill(actors[i], no_restart=True)
                yield JobOutcome(job.name, "cancelled", worker=infos[i])
            busy.clear()
        finally:
            for actor in actors:
                ray.kill(actor, no_restart=True)

    def close(self) -> None:
        """Kill this executor's actors; shut Ray down if this executor started it."""
        for actor in self._actors:
            with contextlib.suppress(Exception):  # already gone with its node or the runtime
                ray.kill(actor, no_restart=True)
        self._actors.clear()
        if self._started and ray.is_initialized():
            ray.shutdown()


def use_cluster_auth() -> None:
    """Join a token-authenticated cluster the way ``ray start`` does.

    ``ray start`` turns token authentication on when a token file exists (Ray >= 2.5x);
    ``ray.init(address=...)`` then connects without the token unless RAY_AUTH_MODE
    says so, and waits on "missing authorization header" for ever. Ray's own helper
    sets RAY_AUTH_MODE=token in this process when a token exists and no mode is set.
    """
    try:
        from ray._private.authentication.authentication_token_setup import (
            maybe_enable_token_auth_if_token_available,
        )
    except ImportError:  # a Ray without token authentication
        return
    maybe_enable_token_auth_if_token_available(warn_if_disabled=False)


def _check_reachable(address: str) -> None:
    """Fail fast on a HOST:PORT nobody listens at (ray.init would wait for minutes)."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or "://" in address:
        return  # "auto", ray://..., or a form Ray itself will judge
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=10).close()
    except OSError as e:
        raise BrushworkError(
            f"no Ray cluster answers at {address} ({e.strerror or e}); start one with "
            "`ray start --head` or check the address"
        ) from None


def _first_line(e: BaseException) -> str:
    cause = getattr(e, "cause", None)
    text = str(cause if isinstance(cause, BaseException) else e).strip()
    return text.splitlines()[0] if text else type(e).__name__
