"""`trainops history JOB` and `trainops state list|show|compact|forget`: the state branch for
operators, Terraform-style. Reads go through the validated reader; writes through the store's
compare-and-swap, as apply writes (DESIGN §8, §9)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from trainops.commands import open_store, refuse_bad_config
from trainops.errors import Problem, StateConflict, UsageError
from trainops.workspace import Workspace

__all__ = ["forget", "history", "show", "state_compact", "state_list"]


def _open(root: Path) -> Any:
    ws = Workspace.open(root)
    refuse_bad_config(ws)
    return open_store(ws)


def _ago(when: float | None, now: float) -> str:
    if when is None:
        return ""
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(when))


def state_list(root: Path) -> tuple[list[dict[str, Any]], list[Problem]]:
    """One row per job record at the tip: runs kept, the latest run and its health."""
    from trainops.providers import check_run
    from trainops.state.admin import read_jobs
    from trainops.state.trust import state_problems

    _version, jobs = read_jobs(_open(root), check_run)
    rows = []
    for name, s in sorted(jobs.items()):
        last = s.runs[-1] if s.runs else None
        rows.append(
            {
                "job": name,
                "runs": len(s.runs),
                "retired": sum(t.runs for t in s.totals),
                "revision": last.revision if last else "",
                "run_id": (last.run_id or "(intent)") if last else "",
                "health": last.health.value if last else "",
                "file": s.path,
                "note": "invalid: see below" if s.problem else ("pruned" if s.pruned else ""),
            }
        )
    return rows, state_problems(jobs)


def show(root: Path, job: str) -> dict[str, Any]:
    """The job's record at the tip, as stored (validated first)."""
    from trainops.errors import InvalidInput
    from trainops.providers import check_run
    from trainops.state.admin import read_jobs
    from trainops.state.trust import state_problems

    version, jobs = read_jobs(_open(root), check_run)
    if job not in jobs:
        raise UsageError(f"the state has no record of job {job!r}", "see `trainops state list`")
    if jobs[job].problem:
        raise InvalidInput(state_problems({job: jobs[job]}))
    return {"version": version, "file": jobs[job].path, **json.loads(jobs[job].to_text())}


def history(root: Path, job: str) -> tuple[list[dict[str, Any]], str]:
    """Every run `job` ever had (tip and git history), oldest first, and why the walk stopped
    early ('' when it reached the first record)."""
    from trainops.providers import check_run
    from trainops.state.history import job_history

    found = job_history(_open(root), job)
    if not found.runs and not found.problem:
        raise UsageError(f"job {job!r} has no recorded run", "see `trainops state list`")
    now = time.time()
    rows = []
    for r in found.runs:
        why = check_run(job, r)
        rows.append(
            {
                "revision": r.revision,
                "attempt": r.attempt,
                "run_id": r.run_id or ("(lost)" if r.lost else "(intent)"),
                "health": r.health.value,
                "created": _ago(r.created_at, now),
                "completed": _ago(r.completed_at, now),
                "cost": "" if r.cost_usd is None else f"${r.cost_usd:,.2f}",
                "note": f"invalid: {why}" if why else "",
            }
        )
    return rows, found.problem


def state_compact(root: Path) -> dict[str, Any]:
    from trainops.providers import check_run
    from trainops.state.admin import compact

    done = compact(_open(root), check_run)
    return {"version": done.version, "jobs": done.jobs, "runs_dropped": done.runs_dropped}


def forget_target(root: Path, job: str) -> tuple[Any, str, Any]:
    """What `forget` would drop: (store, version, the job's record); refused when absent."""
    from trainops.providers import check_run
    from trainops.state.admin import read_jobs

    store = _open(root)
    version, jobs = read_jobs(store, check_run)
    if job not in jobs:
        raise UsageError(f"the state has no record of job {job!r}", "see `trainops state list`")
    return store, version, jobs[job]


def forget(store: Any, version: str, record: Any) -> str:
    """Drop the job's record (both layouts' paths) at exactly `version`: if the state moved
    since it was shown, nothing is written (the operator confirmed what they saw)."""
    from trainops.state.layout import legacy_state_path, state_path

    changes: dict[str, str | None] = {
        state_path(record.job): None,
        legacy_state_path(record.job): None,
    }
    try:
        return str(store.save(version, changes, f"trainops: forget {record.job}"))
    except StateConflict as exc:
        raise StateConflict(
            f"the state moved since {record.job}'s record was read: nothing forgotten",
            "run `trainops state forget` again and confirm what it shows",
        ) from exc
