"""Record phase (DESIGN §8 step 2, §9): the pass's outcome written as one more state commit. After
provider calls a lost swap must not lose a run id: this pass's runs are merged onto the newer
state and written again.

Inputs: the `Context`, the pass (its state after acting) and the state as last committed.
Outputs: the new state version in `result.version`; `changed` (the records to write: an
invalid one never is) and `message` (a state commit's message), also used by the intents phase.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from trainops.errors import StateConflict
from trainops.faults import crashpoint
from trainops.plan import describe
from trainops.reconcile.context import MAX_SWAPS, Context
from trainops.reconcile.read import read_state
from trainops.reconcile.result import Pass
from trainops.state.model import JobState, Run
from trainops.state.retention import state_changes


def save_outcome(ctx: Context, result: Pass, recorded: Mapping[str, JobState]) -> None:
    """Write every record this pass changed, if any, as the pass's last commit."""
    updates = changed(result.state, recorded)
    if updates:
        done = [o.action for o in result.outcomes]
        text = message("reconcile", done, refreshed=len(updates))
        _save_merging(ctx, result, updates, recorded, text)
        crashpoint("after-save")


def changed(state: Mapping[str, JobState], recorded: Mapping[str, JobState]) -> dict[str, JobState]:
    """The records to write: an invalid one never is (DESIGN §9)."""
    return {name: s for name, s in state.items() if s != recorded.get(name) and not s.problem}


def message(title: str, actions: list[Any], refreshed: int = 0) -> str:
    """A state commit's message: its title and one line per action."""
    lines = [f"trainops: {title}", ""]
    for action in actions:
        lines.append(f"- {describe(action)}")
    if not actions:
        lines.append(f"- refreshed {refreshed} job(s)")
    return "\n".join(lines) + "\n"


def _save_merging(
    ctx: Context,
    result: Pass,
    updates: Mapping[str, JobState],
    recorded: Mapping[str, JobState],
    text: str,
) -> None:
    """Write run records; after provider calls a lost swap must not lose a run id, so
    this pass's runs are merged onto the newer state and written again."""
    changes = state_changes(updates, recorded, result.version)
    for _ in range(MAX_SWAPS * 4):
        try:
            result.version = ctx.store.save(result.version, changes, text)
            return
        except StateConflict:
            result.version, newer = read_state(ctx)
            merged_updates: dict[str, JobState] = {}
            for name, ours in updates.items():
                merged = newer.get(name, JobState(name))
                for run in ours.runs:
                    theirs = next(
                        (
                            r
                            for r in merged.runs
                            if (r.revision, r.attempt) == (run.revision, run.attempt)
                        ),
                        None,
                    )
                    merged = merged.with_run(_newest(run, theirs))
                merged_updates[name] = merged
            changes = state_changes(merged_updates, newer, result.version)
    raise StateConflict(
        "could not record this apply's runs: state keeps moving",
        "run apply again; the runs started are adopted, never duplicated",
    )


def _newest(ours: Run, theirs: Run | None) -> Run:
    """Merge two records of one run: a run id is never dropped, a terminal health wins, and
    why trainops canceled it is kept whichever record says so."""
    if theirs is None:
        return ours
    if bool(ours.run_id) != bool(theirs.run_id):
        theirs_wins = bool(theirs.run_id)
    else:
        theirs_wins = theirs.health.terminal and not ours.health.terminal
    chosen, other = (theirs, ours) if theirs_wins else (ours, theirs)
    if not chosen.reason and other.reason:
        return replace(chosen, reason=other.reason)
    return chosen
