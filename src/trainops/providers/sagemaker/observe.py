"""A training job as the service shows it (a list summary, or a describe with its tags) as an
`Observation`: its health from the status pair, the failure reason, billable time, metrics and
the model artifacts; and the creation time a list may be filtered from."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from trainops import metrics
from trainops.providers.base import Observation
from trainops.providers.sagemaker.api import timestamp
from trainops.state.model import Health

ACTIVE = ("InProgress", "Stopping")


def observation(job: Mapping[str, Any], tags: Mapping[str, str] | None) -> Observation:
    """`job` (with its `tags`; None: a list summary, which carries none) as an observation."""
    status = str(job.get("TrainingJobStatus", ""))
    secondary = str(job.get("SecondaryStatus", ""))
    health = health_of(status, secondary)
    error, retryable = "", True
    if health is Health.FAILED:
        reason = str(job.get("FailureReason") or "").strip().splitlines()
        error = (reason[0] if reason else f"the training job ended {secondary or status}")[:500]
        if secondary == "MaxRuntimeExceeded":
            error, retryable = "stopped by SageMaker at MaxRuntimeInSeconds", False
    elif health is Health.CANCELED:
        error, retryable = f"stopped ({secondary or status})", False
    billable = job.get("BillableTimeInSeconds")
    count = (job.get("ResourceConfig") or {}).get("InstanceCount") or 1
    billed = float(billable) * count if isinstance(billable, int | float) else None
    outputs: dict[str, str] = {}
    artifacts = (job.get("ModelArtifacts") or {}).get("S3ModelArtifacts")
    if health is Health.SUCCEEDED and isinstance(artifacts, str):
        outputs["weights"] = artifacts
    # Names as trainops records them (`metrics.named`: `train:loss` is `train_loss`), so
    # apply and adopt, which both record what observe says, record a name the state takes.
    found = job.get("FinalMetricDataList")
    found_metrics = metrics.named(
        (m.get("MetricName"), m.get("Value"))
        for m in (found if isinstance(found, list) else [])
        if isinstance(m, Mapping)
    )
    return Observation(
        run_id=str(job["TrainingJobName"]),
        health=health,
        # A list summary has no TrainingStartTime: a running job's creation stands in (the
        # cost so far counts from it, never less than billed).
        started_at=timestamp(job.get("TrainingStartTime"))
        or (timestamp(job.get("CreationTime")) if health is Health.RUNNING else None),
        completed_at=timestamp(job.get("TrainingEndTime")) if health.terminal else None,
        billed_seconds=billed if health.terminal else None,
        outputs=outputs,
        metrics=found_metrics,
        error=error,
        retryable=retryable,
        detail=secondary if health.active else "",
        marks={"tags": dict(tags)} if tags is not None else {},
    )


def health_of(status: str, secondary: str) -> Health:
    """`TrainingJobStatus` and `SecondaryStatus` as a health."""
    if status == "InProgress":
        early = ("Starting", "Pending", "LaunchingMLInstances", "PreparingTrainingStack")
        return Health.PENDING if secondary in early or not secondary else Health.RUNNING
    if status == "Stopping":
        return Health.RUNNING
    if status == "Completed":
        return Health.SUCCEEDED
    if status == "Failed":
        return Health.FAILED
    if status == "Stopped":
        return (
            Health.FAILED
            if secondary in ("MaxRuntimeExceeded", "MaxWaitTimeExceeded")
            else (Health.CANCELED)
        )
    if status == "Deleting":
        return Health.CANCELED
    return Health.PENDING  # a status this client does not know: not finished


def oldest(run_ids: Collection[str], wanted: Collection[str]) -> float | None:
    """A while before the oldest creation time of `wanted` (None when `run_ids` has none)."""
    if not isinstance(run_ids, Mapping):
        return None
    times = [run_ids.get(r) for r in wanted]
    if not times or not all(isinstance(t, int | float) for t in times):
        return None
    return min(float(t) for t in times if t is not None) - 300.0
