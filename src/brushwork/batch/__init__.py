"""``brushwork batch``: many style transfer jobs, resumable, locally or on a Ray cluster.

The pieces, in the order a batch uses them:

* :mod:`brushwork.batch.jobs`: turn paths or a manifest into :class:`JobSpec` records
  (pairing, per-job options, deterministic output names, input SHA-256), and decide which
  jobs a rerun can skip.
* :mod:`brushwork.batch.worker`: :func:`run_job`, the one function that paints a job, used
  by every executor, so local and Ray runs make the same pictures.
* :mod:`brushwork.batch.local` and :mod:`brushwork.batch.ray_exec`: the executors.
* :mod:`brushwork.batch.runner`: drive an executor, write each result atomically as it
  arrives, and write ``summary.json``.
* :mod:`brushwork.batch.cli`: the command, its progress bar and summary table.

Ray is imported only by :mod:`brushwork.batch.ray_exec`, which is imported only when a
Ray executor is asked for.
"""

from __future__ import annotations
