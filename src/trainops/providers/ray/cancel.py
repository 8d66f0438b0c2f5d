"""Cancelling a run (`stop_job`), idempotently. An error answer is settled by asking the
cluster whether the job exists and has ended, never by reading its text."""

from __future__ import annotations

from trainops.errors import ProviderError
from trainops.providers.ray.client import Answered, Cluster, status
from trainops.providers.ray.ids import RUN_ID


def cancel(cluster: Cluster, run_id: str) -> None:
    """`stop_job`. Idempotent: a finished or unknown job is left as it is."""
    if not RUN_ID.match(run_id):
        return
    try:
        cluster.call(f"stopping Ray job {run_id}", lambda c: c.stop_job(run_id), answered=True)
    except Answered:
        info = cluster.get(run_id, f"stopping Ray job {run_id}")
        if info is None or status(info).is_terminal:
            return
        raise ProviderError(f"stopping Ray job {run_id}: the cluster refused") from None
