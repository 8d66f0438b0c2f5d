"""Stopping a local run (DESIGN §10): `cancel` records `canceled` and then signals the run;
`declare_lost` records, once and for good, a run whose supervisor is gone without a final
status as failed (VANISHED) and kills what is left of it. Both write under the record's status
lock. trainops signals only processes that carry the run's own TRAINOPS_* variables (it set
them), never a pid or group named by a file.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from trainops.processes import stop_marked
from trainops.providers import _claims
from trainops.providers import _supervisor as sv
from trainops.providers._claims import VANISHED
from trainops.providers.local.records import marker


def cancel(run_id: str, record: Path, work: Path, now: Callable[[], float], grace: float) -> None:
    """Record `canceled`, then SIGTERM the run's processes and SIGKILL what is left after
    `grace`. A run already terminal is left as it is."""
    with sv.status_lock(record):
        status = sv.read_status(record) or {}
        if status.get("status") in sv.TERMINAL:
            return
        sv.write_status(
            record,
            {
                **status,
                "status": "canceled",
                "completed_at": now(),
                "error": "canceled",
                "retryable": False,
            },
        )
    # Before the supervisor ran, nothing was started; after, it sees `canceled` and keeps it.
    terminate(run_id, work, status, grace)


def declare_lost(
    run_id: str, record: Path, work: Path, now: Callable[[], float], start_grace: float
) -> None:
    """Record VANISHED, under the lock and only if still true, then kill what remains of the
    command."""
    with sv.status_lock(record):
        status = sv.read_status(record)
        if not _claims.lost(record, now(), start_grace, status):
            return
        status = {**(status or {}), "status": "failed", "error": VANISHED, "retryable": True}
        status.setdefault("completed_at", now())
        sv.write_status(record, status)
    terminate(run_id, work, status, grace=0.0)


def terminate(run_id: str, work: Path, status: dict[str, Any], grace: float) -> None:
    """Signal the run's processes: those of its group that carry its TRAINOPS_* variables,
    which trainops set when it started them (a pgid written in a file names nothing by
    itself)."""
    pgid = status.get("pgid")
    if isinstance(pgid, int) and not isinstance(pgid, bool) and pgid > 1:
        stop_marked(pgid, marker(run_id, work), grace)
