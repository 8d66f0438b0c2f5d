"""What a local run's claim (its record in the clone's git directory) says about its life.

A claim is made before anything starts; the supervisor then records `pending`, `running` and an
end. These functions read the few cases in between — a submitter that died before starting the
run, a supervisor gone without a final status — and close a claim that must never start late.
Every write holds the record's lock, as the supervisor's do.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from trainops.processes import is_alive
from trainops.providers import _supervisor as sv

VANISHED = "process vanished without writing a final status"
NEVER_STARTED = "never started: the apply that claimed it died before starting it"


def fail(record: Path, now: float, error: str) -> None:
    """Close a claim whose run did not start: failed (retryable), unless a status exists."""
    with sv.status_lock(record):
        if sv.read_status(record) is None:
            sv.write_status(
                record, {"status": "failed", "completed_at": now, "retryable": True, "error": error}
            )


def close_if_never_started(record: Path, now: float, start_grace: float) -> bool:
    """True when the run was claimed but its submitter died before starting it (no status,
    claimer gone): it is closed as failed, so no late start can ever train it."""
    with sv.status_lock(record):
        if sv.read_status(record) is not None:
            return False
        meta = sv.read_json(record / sv.META) or {}
        claimer = meta.get("claimer")
        if isinstance(claimer, dict) and isinstance(claimer.get("pid"), int):
            if is_alive(claimer["pid"], str(claimer.get("ident") or "")):
                return False  # still submitting: it will start it
        elif meta and time.time() - record.stat().st_mtime < start_grace:
            return False  # a claim without a claimer (older trainops): give it time
        sv.write_status(
            record,
            {"status": "failed", "error": NEVER_STARTED, "retryable": True, "completed_at": now},
        )
    return True


def lost(record: Path, now: float, start_grace: float, status: dict[str, Any] | None) -> bool:
    """Whether the run is gone without a final status: never started after `start_grace`, or
    its supervisor (pid and start time, as it recorded them) no longer runs."""
    if status is None:
        meta = sv.read_json(record / sv.META)
        if meta is not None and isinstance(meta.get("created_at"), int | float):
            age = now - float(meta["created_at"])
        else:
            age = time.time() - record.stat().st_mtime
        return age > start_grace
    if status.get("status") in sv.TERMINAL:
        return False
    pid, ident = status.get("supervisor_pid"), str(status.get("supervisor_start") or "")
    return not (isinstance(pid, int) and is_alive(pid, ident))
