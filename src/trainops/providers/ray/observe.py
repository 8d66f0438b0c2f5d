"""Observing runs: one `list_jobs` however many runs are active; a run's outputs and metrics
are read once, when it has ended (terminal runs are never polled again), from
`providers.ray.output_uri/<run-id>/outputs/` (s3:// or a shared folder).
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path
from typing import Any

from trainops import metrics
from trainops.errors import ProviderError
from trainops.providers._outputs import named
from trainops.providers.base import Observation
from trainops.providers.ray.client import Cluster, seconds, status
from trainops.providers.ray.ids import RUN_ID, marks
from trainops.state.model import Health

HEALTH = {
    "PENDING": Health.PENDING,
    "RUNNING": Health.RUNNING,
    "SUCCEEDED": Health.SUCCEEDED,
    "FAILED": Health.FAILED,
    "STOPPED": Health.CANCELED,
}


def observe(
    cluster: Cluster, output_uri: str | None, run_ids: Collection[str]
) -> dict[str, Observation]:
    """One `list_jobs` for every asked run; outputs and metrics are read once per run, when
    it has ended (terminal runs are never polled again)."""
    wanted = {r for r in run_ids if RUN_ID.match(r)}
    if not wanted:
        return {}
    jobs = cluster.call("listing Ray jobs", lambda c: c.list_jobs())
    found: dict[str, Observation] = {}
    for info in jobs or []:
        run_id = getattr(info, "submission_id", None)
        if run_id in wanted and run_id not in found:
            found[run_id] = observation(output_uri, run_id, info)
    return found


def observation(output_uri: str | None, run_id: str, info: Any) -> Observation:
    """One job's `JobInfo` as an `Observation`."""
    health = HEALTH.get(status(info).value, Health.PENDING)
    started, ended = seconds(info.start_time), seconds(info.end_time)
    billed = max(0.0, ended - started) if health.terminal and started and ended else None
    error = ""
    if health is Health.FAILED:
        lines = [ln.strip() for ln in str(info.message or "").splitlines() if ln.strip()]
        error = (lines[0] if lines else "the Ray job failed")[:500]
    elif health is Health.CANCELED:
        error = "stopped"
    outputs: dict[str, str] = {}
    found_metrics: dict[str, float] = {}
    if health.terminal:
        try:
            outputs, found_metrics = read_outputs(output_uri, run_id)
        except ProviderError:
            if health is Health.SUCCEEDED:
                # A terminal run is never polled again: its outputs must be read first.
                # Until the storage answers it stays Running here, and is asked again.
                return Observation(run_id, Health.RUNNING, started_at=started, marks=marks(info))

    # So far, while it runs (a sweep's early stop, DESIGN §21): only from a shared folder, a
    # file read; from S3 it would be a request per running run per pass.
    folder = output_dir(output_uri, run_id) if health is Health.RUNNING else None
    shared = folder is not None and not folder.is_symlink()
    progress = metrics.read(folder / metrics.FILE) if folder is not None and shared else {}
    return Observation(
        run_id,
        health,
        started_at=started,
        completed_at=ended if health.terminal else None,
        billed_seconds=billed,
        outputs=outputs,
        metrics=found_metrics,
        progress=progress,
        error=error,
        retryable=health is not Health.CANCELED,
        created_at=started,  # Ray's start_time is when the job was submitted
        marks=marks(info),
    )


def output_dir(output_uri: str | None, run_id: str) -> Path | None:
    """When outputs go to a shared folder: `<output_uri>/<run-id>/outputs`."""
    if not output_uri or output_uri.startswith("s3://") or not RUN_ID.match(run_id):
        return None
    return Path(output_uri) / run_id / "outputs"


def output_prefix(output_uri: str | None, run_id: str) -> str | None:
    """When outputs go to S3: `s3://bucket/prefix/<run-id>/outputs/`."""
    if not output_uri or not output_uri.startswith("s3://") or not RUN_ID.match(run_id):
        return None
    return f"{output_uri}/{run_id}/outputs/"


def read_outputs(output_uri: str | None, run_id: str) -> tuple[dict[str, str], dict[str, float]]:
    """DESIGN §2 names, as for local: every file under the run's outputs, by file name
    without extension; the shallowest wins a clash, then the first by path."""
    folder = output_dir(output_uri, run_id)
    if folder is not None:
        if not folder.is_dir() or folder.is_symlink():
            return {}, {}
        rels = [
            p.relative_to(folder).as_posix()
            for p in folder.rglob("*")
            if p.is_file() and not p.is_symlink()
        ]
        found = {name: str(folder / rel) for name, rel in named(rels).items()}
        return found, metrics.read(folder / metrics.FILE)
    prefix = output_prefix(output_uri, run_id)
    if prefix is None:
        return {}, {}
    from trainops.providers import _s3outputs

    return _s3outputs.read(prefix)
