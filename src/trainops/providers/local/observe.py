"""What a local run's record says, read-only (DESIGN §10): its status as an `Observation`, the
outputs it names (DESIGN §2), its metrics once it has ended (and so far, while it runs: a sweep's
early stop, DESIGN §21). A run whose supervisor is gone without a final status reads as Failed
(VANISHED) here; recording that is `stop.declare_lost`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from trainops import metrics
from trainops.processes import running_with
from trainops.providers import _supervisor as sv
from trainops.providers._claims import VANISHED
from trainops.providers.base import Observation
from trainops.state.model import Health

_HEALTH = {
    "pending": Health.PENDING,
    "running": Health.RUNNING,
    "succeeded": Health.SUCCEEDED,
    "failed": Health.FAILED,
    "canceled": Health.CANCELED,
}


def observation(
    run_id: str,
    work: Path,
    status: dict[str, Any] | None,
    lost: bool,
    clock: Callable[[], float],
) -> Observation:
    """The run `run_id` as its `status` (None: not written yet) and work folder say; `lost`
    when its supervisor is gone without a final status. A running run is billed until now."""
    if lost:
        status = {**(status or {}), "status": "failed", "error": VANISHED, "retryable": True}
    if status is None:
        return Observation(run_id, Health.PENDING)
    health = _HEALTH.get(str(status.get("status")), Health.FAILED)
    started = _number(status.get("started_at"))
    completed = _number(status.get("completed_at"))
    if started is None:
        billed = None
    elif health.terminal:
        billed = max(0.0, (completed or clock()) - started)
    else:
        billed = max(0.0, clock() - started)
    error = str(status.get("error") or "") if health is not Health.SUCCEEDED else ""
    # metrics.json as the run left it, or as it is so far (a sweep's early stop, DESIGN §21)
    found = metrics.read(work / sv.OUTPUTS / metrics.FILE) if health is not Health.PENDING else {}
    return Observation(
        run_id,
        health,
        started_at=started,
        completed_at=completed,
        billed_seconds=billed,
        outputs=outputs(work / sv.OUTPUTS),
        metrics=found if health.terminal else {},
        progress=found if health.active else {},
        error=error,
        retryable=bool(status.get("retryable", True)),
    )


def live_supervisor(records: Path | None, run_id: str) -> bool:
    """A run whose record was deleted while its supervisor lives is found, not lost: a
    supervisor of this clone for this run id still runs (its command line names it)."""
    return records is not None and bool(
        running_with(str(records / run_id), "trainops.providers._supervisor")
    )


def outputs(out_dir: Path) -> dict[str, str]:
    """DESIGN §2: every file under outputs/, keyed by its name without extension. On a clash the
    shallowest file wins, then the first by path; hidden files (temporaries) are skipped."""
    try:
        files = [
            p
            for p in out_dir.rglob("*")
            if p.is_file()
            and not any(part.startswith(".") for part in p.relative_to(out_dir).parts)
        ]
    except OSError:
        return {}
    found: dict[str, str] = {}
    for path in sorted(files, key=lambda p: (len(p.relative_to(out_dir).parts), p.as_posix())):
        found.setdefault(path.stem, str(path))
    return found


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
