"""Reading a run's log (`get_job_logs`): its last lines. An error answer for a job the cluster
does not know is an empty log; for one it knows, a refusal."""

from __future__ import annotations

from trainops.errors import ProviderError
from trainops.providers.ray.client import Answered, Cluster
from trainops.providers.ray.ids import RUN_ID


def logs(cluster: Cluster, run_id: str, tail: int = 50) -> str:
    """The last `tail` lines of the job's log."""
    if not RUN_ID.match(run_id) or tail <= 0:
        return ""
    what = f"reading the log of Ray job {run_id}"
    try:
        text = cluster.call(what, lambda c: c.get_job_logs(run_id), answered=True)
    except Answered:
        if cluster.get(run_id, what) is None:
            return ""
        raise ProviderError(f"{what}: the cluster refused") from None
    lines = str(text or "").splitlines()
    return "\n".join(lines[-tail:])
