"""Retention (DESIGN §9): what of a job's record stays at the tip of the state branch.

Pure functions. The tip keeps what reconciling needs: every active run (intents included), every
run whose end is still to be reported or whose delivery failed, every run of the job's current
revision (its newest run's) and the last `KEEP_TERMINAL` runs. The rest is dropped from the tip
once a job holds more than `2 * KEEP_TERMINAL` runs (so a file is compacted every few runs, not
on every write), and only a run recorded unchanged at `version`: the file there still holds it,
and the new file's `archive` names that commit, which is how `history` finds it again. What a
dropped run cost is added to the job's per-month `totals`, so `cost` stays exact.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from trainops.state.layout import legacy_state_path, state_path
from trainops.state.model import Health, JobState, MonthTotal, Run, month_of

__all__ = ["KEEP_TERMINAL", "compacted", "retain", "state_changes"]

KEEP_TERMINAL = 3


def _needed(run: Run, last: bool, current: str) -> bool:
    if run.active or run.revision == current:
        return True
    if run.run_id and run.reported != run.health.value and (last or run.reported):
        return True  # still in the reporting outbox (the rule apply reports by)
    if "done" in run.promotions.values():
        return True  # an alias points at it: a revert may need it again (DESIGN §19)
    undelivered = any(v != "done" for v in run.deliveries.values())
    return run.health is Health.SUCCEEDED and undelivered


def retain(job_state: JobState, base: JobState | None, version: str) -> JobState:
    """`job_state` with the runs the tip no longer needs dropped (see the module docstring).
    `base` is the job's record at `version`, the state commit this one is written on."""
    runs = job_state.runs
    if job_state.problem or not version or base is None or len(runs) <= 2 * KEEP_TERMINAL:
        return job_state
    recorded = base.runs  # runs are compared by value: Run holds dicts, so it is not hashable
    current = max(runs, key=lambda r: r.created_at).revision
    newest = {id(r) for r in sorted(runs, key=lambda r: r.created_at)[-KEEP_TERMINAL:]}
    with_id = [r for r in runs if r.run_id]
    kept: list[Run] = []
    dropped: list[Run] = []
    for run in runs:
        last = bool(with_id) and run is with_id[-1]
        if id(run) in newest or run not in recorded or _needed(run, last, current):
            kept.append(run)
        else:
            dropped.append(run)
    if not dropped:
        return job_state
    return replace(
        job_state,
        runs=tuple(kept),
        archive=version,
        totals=_add(job_state.totals, dropped),
    )


def _add(totals: tuple[MonthTotal, ...], runs: list[Run]) -> tuple[MonthTotal, ...]:
    """Fold runs into per-month totals the way `cost.spend_by` counts a terminal run: by the
    month it ended (or was created), priced by its billed seconds, else its recorded dollars."""
    out = {(t.month, t.provider, t.hardware, tuple(sorted(t.labels.items()))): t for t in totals}
    for run in runs:
        if run.run_id is None:
            continue  # a lost intent never ran and never cost anything
        month = month_of(run.completed_at or run.created_at)
        key = (month, run.provider, run.hardware, tuple(sorted(run.labels.items())))
        t = out.get(key) or MonthTotal(month, 0, run.provider, run.hardware, dict(run.labels))
        seconds, usd = t.billed_seconds, t.usd
        if run.billed_seconds is not None:
            seconds += run.billed_seconds
        else:
            usd += run.cost_usd or 0.0
        out[key] = replace(t, runs=t.runs + 1, billed_seconds=seconds, usd=usd)
    return tuple(out[k] for k in sorted(out))


def dropped_snapshots(before: JobState, after: JobState) -> set[str]:
    """Snapshot paths only dropped runs referred to: they leave the tip with them."""
    kept = {r.snapshot for r in after.runs}
    return {r.snapshot for r in before.runs if r.snapshot and r.snapshot not in kept}


def state_changes(
    updates: Mapping[str, JobState], base: Mapping[str, JobState], version: str
) -> dict[str, str | None]:
    """The state-branch changes that write `updates` on top of `version` (whose records are
    `base`): each file retained, written at its fanned-out path, its legacy flat path removed,
    and the snapshots of dropped runs removed."""
    changes: dict[str, str | None] = {}
    for name, job_state in updates.items():
        kept = retain(job_state, base.get(name), version)
        for path in dropped_snapshots(job_state, kept):
            changes[path] = None
        changes[legacy_state_path(name)] = None
        changes[state_path(name)] = kept.to_text()
    return changes


def compacted(jobs: Mapping[str, JobState], version: str) -> dict[str, JobState]:
    """Every readable job record retained as if rewritten now (`trainops state compact`, and the
    upgrade of a branch written before retention existed)."""
    return {name: retain(s, s, version) for name, s in jobs.items() if not s.problem}
