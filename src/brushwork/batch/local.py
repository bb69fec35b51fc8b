"""The local executor: every job in this process, one network loaded for all of them."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

from brushwork.batch.jobs import JobSpec
from brushwork.batch.worker import JobOutcome, JobStarted, NetworkCache, run_job, this_worker


class LocalExecutor:
    """Runs jobs one after another; torch uses this machine's cores for each."""

    name = "local"

    def __init__(self) -> None:
        self.networks = NetworkCache()

    def run(
        self, jobs: Sequence[JobSpec], should_stop: Callable[[], bool]
    ) -> Iterator[JobStarted | JobOutcome]:
        """Yield a :class:`JobStarted` then a :class:`JobOutcome` per job, until stopped.

        ``should_stop`` is also polled inside each job, every iteration.
        """
        worker = this_worker()
        for job in jobs:
            if should_stop():
                return
            yield JobStarted(job.name, worker)
            yield run_job(job, self.networks, worker, should_stop=should_stop)

    def close(self) -> None:
        """Nothing to release: the networks go with this object."""
