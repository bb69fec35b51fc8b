"""The one function that paints a job, for every executor, and what it reports.

:func:`run_job` runs :func:`brushwork.stylize` with a network from a
:class:`NetworkCache` and returns a :class:`JobOutcome` holding the encoded image
and its run record: bytes and plain data, so a Ray worker on another machine can
send it back and the driver writes it. Local and Ray runs go through this same
function, so the same job makes the same picture either way.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from brushwork.errors import BrushworkError

if TYPE_CHECKING:
    from brushwork.batch.jobs import JobSpec
    from brushwork.config import StyleConfig
    from brushwork.engine import Network

Status = Literal["done", "skipped", "failed", "cancelled", "not run"]


@dataclass(frozen=True)
class WorkerInfo:
    """Where a job ran: host name, process id, Ray node id ("local" without Ray), threads."""

    host: str
    pid: int
    node: str = "local"
    threads: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"host": self.host, "pid": self.pid, "node": self.node, "threads": self.threads}

    @property
    def label(self) -> str:
        """``host:pid`` plus the start of the Ray node id, for tables."""
        node = "" if self.node == "local" else f" node {self.node[:8]}"
        return f"{self.host}:{self.pid}{node}"


def this_worker(node: str = "local") -> WorkerInfo:
    import torch

    return WorkerInfo(socket.gethostname(), os.getpid(), node, torch.get_num_threads())


@dataclass(frozen=True)
class JobStarted:
    """Sent when an executor hands a job to a worker."""

    name: str
    worker: WorkerInfo


@dataclass(frozen=True)
class JobOutcome:
    """How one job ended.

    ``image`` (the encoded output file) and ``record`` (its run record, also the
    sidecar) are set when ``status`` is "done"; ``error`` is one line when it is
    "failed". ``seconds`` is the job's wall time on its worker. ``note`` is one line
    for the user about a job that is done (:func:`brushwork.images.enlargement_note`).
    """

    name: str
    status: Status
    seconds: float = 0.0
    worker: WorkerInfo | None = None
    error: str | None = None
    image: bytes | None = None
    record: Mapping[str, Any] | None = None
    note: str | None = None


class NetworkCache:
    """Loaded networks by what they fit (:meth:`Network.fits`), at most ``limit`` kept.

    A batch usually needs one network; a manifest that mixes backbones, pooling or
    layers needs a few. The least recently used goes first.
    """

    def __init__(self, limit: int = 4) -> None:
        self.limit = limit
        self.loads = 0  # how many times weights were loaded (a batch should load once)
        self._networks: list[Network] = []

    def get(self, config: StyleConfig) -> Network:
        from brushwork.engine import load_network

        for i, net in enumerate(self._networks):
            if net.fits(config):
                self._networks.append(self._networks.pop(i))
                return net
        net = load_network(config)
        self.loads += 1
        self._networks.append(net)
        del self._networks[: -self.limit]
        return net


def run_job(
    job: JobSpec,
    networks: NetworkCache,
    worker: WorkerInfo,
    *,
    should_stop: Callable[[], bool] | None = None,
) -> JobOutcome:
    """Paint ``job`` and encode the result; every failure is returned, never raised.

    A job that fails (a bad input is a :class:`BrushworkError`; anything else, such
    as running out of memory, keeps its exception's type name) is reported as a
    value, so Ray does not retry it: retrying a corrupt file cannot help. A run
    stopped by ``should_stop`` is "cancelled" and has no image: a half-finished
    picture is not a result.
    """
    from brushwork.engine import stylize
    from brushwork.images import encode_image, enlargement_note, load_image, output_format

    start = time.perf_counter()
    try:
        content = load_image(job.content, "content")  # here, for its size in the note
        image = stylize(
            content,
            job.style,
            config=job.config,
            network=networks.get(job.config),
            should_stop=should_stop,
        )
        record = {
            **image.info["brushwork"],
            "inputs": {k: dict(v) for k, v in job.inputs.items()},
            "batch": {"job": job.name, "worker": worker.to_dict()},
        }
        stopped = record["stopped"]
        if stopped == "cancelled":
            return JobOutcome(job.name, "cancelled", time.perf_counter() - start, worker)
        if stopped is not None:
            return JobOutcome(
                job.name,
                "failed",
                time.perf_counter() - start,
                worker,
                error=f"the run stopped early ({stopped}); lower lr or the style weight",
            )
        data = encode_image(image, output_format(Path(job.name)), record)
    except BrushworkError as e:
        return JobOutcome(job.name, "failed", time.perf_counter() - start, worker, error=str(e))
    except Exception as e:  # a bug or the machine (memory): one job fails, the batch goes on
        error = f"{type(e).__name__}: {e}".splitlines()[0]
        return JobOutcome(job.name, "failed", time.perf_counter() - start, worker, error=error)
    return JobOutcome(
        job.name,
        "done",
        time.perf_counter() - start,
        worker,
        image=data,
        record=record,
        note=enlargement_note(content.size, image.size),
    )
