"""Operator inspection and upkeep of the state (`trainops state ...`, `trainops history`).

Reading goes through the validated reader (`parse_state`); writing through the store's one
compare-and-swap, as apply writes: a lost swap re-reads and tries again, never overwrites.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from trainops.errors import StateConflict
from trainops.state.base import StateStore
from trainops.state.model import JobState
from trainops.state.retention import compacted, state_changes
from trainops.state.trust import RunCheck, parse_state

__all__ = ["Compaction", "compact", "read_jobs"]

_SWAPS = 5


def read_jobs(
    store: StateStore, check_run: RunCheck | None = None
) -> tuple[str, dict[str, JobState]]:
    snap = store.load()
    return snap.version, parse_state(snap.files, check_run, snap.unreadable)


@dataclass(frozen=True)
class Compaction:
    version: str  # the state version written ("" or unchanged when nothing was to do)
    jobs: int  # job records rewritten
    runs_dropped: int  # runs that left the tip (kept in git history and in the totals)


def compact(
    store: StateStore,
    check_run: RunCheck | None = None,
    message: str = "trainops: compact state",
    on_conflict: Callable[[], None] = lambda: None,
) -> Compaction:
    """Rewrite every readable job record in the current layout with retention applied: the
    upgrade of a branch written by an older trainops (flat `state/<job>.json`, every run kept),
    and the way to shrink a tip at once. Invalid records are left exactly as they are."""
    for _ in range(_SWAPS):
        version, jobs = read_jobs(store, check_run)
        legacy = {n for n, s in jobs.items() if s.path and s.path.count("/") == 1}
        after = compacted(jobs, version)
        todo = {n: s for n, s in after.items() if s != jobs[n] or n in legacy}
        if not todo:
            return Compaction(version, 0, 0)
        dropped = sum(len(jobs[n].runs) - len(s.runs) for n, s in todo.items())
        try:
            new = store.save(version, state_changes(todo, jobs, version), message)
        except StateConflict:
            on_conflict()
            continue
        return Compaction(new, len(todo), dropped)
    raise StateConflict("the state kept moving while compacting", "run it again in a moment")
