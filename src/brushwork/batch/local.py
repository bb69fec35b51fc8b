"""The local executor: every job in this process, one network loaded for all of them."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

from brushwork.batch.jobs import JobSpec
from brushwork.batch.worker import JobOutcome, JobStarted, NetworkCache, run_job, this_worker


class LocalExecutor:
    """Runs jobs one after another; torch uses ``threads`` (default: every core) for each.

    A Ray worker runs with its job's CPUs as threads, and bf16 sums depend on how
    the work is split, so pictures match a Ray run bit for bit only with the
    same thread count (``brushwork batch --cpus-per-job``).
    """

    name = "local"

    def __init__(self, threads: int | None = None) -> None:
        self.networks = NetworkCache()
        self.threads = threads

    def run(
        self, jobs: Sequence[JobSpec], should_stop: Callable[[], bool]
    ) -> Iterator[JobStarted | JobOutcome]:
        """Yield a :class:`JobStarted` then a :class:`JobOutcome` per job, until stopped.

        ``should_stop`` is also polled inside each job, every iteration.
        """
        import torch

        before = torch.get_num_threads()
        if self.threads is not None:
            torch.set_num_threads(self.threads)
        try:
            worker = this_worker()
            for job in jobs:
                if should_stop():
                    return
                yield JobStarted(job.name, worker)
                yield run_job(job, self.networks, worker, should_stop=should_stop)
        finally:
            torch.set_num_threads(before)

    def close(self) -> None:
        """Nothing to release: the networks go with this object."""
