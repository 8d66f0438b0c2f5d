"""The winner of a sweep (DESIGN §21): which member of a set `spec.sweep.select` picks, from the
metrics its runs recorded (DESIGN §19), and whether the set is settled enough to name one.

Inputs: the set's member names in order, the desired jobs and the refreshed state. Outputs:
`Standing` (one member's candidate run and metric value), `Selection` (the ranking, the winner,
how many members are settled). Pure: values in, values out.

The rule, stated once (docs/sweeps.md): a member's candidate is the latest succeeded run of its
current revision; a member whose candidate did not report the metric never wins; the best value
by `goal` wins; a tie goes to the run that finished first (`completed_at`; a run without one
after those with one), then to the member name. A set is settled when every member is: its
current revision succeeded, failed for good (not retryable, or retries spent), was canceled for
a reason that is not going away (a budget, an early stop, by hand), or it is suspended.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from trainops.manifest import SweepSet
from trainops.plan.actions import SUSPENDED
from trainops.plan.desired import Desired
from trainops.state.model import Health, JobState, Run

MINIMIZE = "minimize"
MAXIMIZE = "maximize"
GOALS = (MINIMIZE, MAXIMIZE)


@dataclass(frozen=True)
class Standing:
    """One member as the selection sees it."""

    member: str
    run: Run | None  # the latest succeeded run of its current revision (None: none yet)
    value: float | None  # that run's metric (None: no run, or the run did not report it)
    settled: bool = True  # no further attempt of its current revision is coming


@dataclass(frozen=True)
class Selection:
    """A set's members ranked best first (members without the metric last, by name)."""

    ranking: tuple[Standing, ...]
    settled: int  # how many members are settled
    metric: str
    goal: str

    @property
    def complete(self) -> bool:
        """Every member is settled: the winner can no longer change without a new revision."""
        return self.settled == len(self.ranking)

    @property
    def best(self) -> Standing | None:
        """The best member so far (settled or not), None while no member has the metric."""
        first = self.ranking[0] if self.ranking else None
        return first if first is not None and first.value is not None else None

    @property
    def winner(self) -> Standing | None:
        """The set's winner: the best member once the set is settled, else None."""
        return self.best if self.complete else None


def rank(standings: Sequence[Standing], goal: str) -> tuple[Standing, ...]:
    """Best first by `goal`; ties to the earlier finish, then the member name; members without
    a value (or a value that is not a finite number) last, by name."""
    sign = -1.0 if goal == MAXIMIZE else 1.0

    def key(s: Standing) -> tuple[int, float, float, str]:
        if s.value is None or not math.isfinite(s.value) or s.run is None:
            return (1, 0.0, 0.0, s.member)
        finished = s.run.completed_at if s.run.completed_at is not None else math.inf
        return (0, sign * s.value, finished, s.member)

    return tuple(sorted(standings, key=key))


def candidate(job_state: JobState, revision: str) -> Run | None:
    """The latest succeeded run of `revision` (what `${{ jobs.NAME.output.KEY }}` reads)."""
    for run in reversed(job_state.runs):
        if run.revision == revision and run.health is Health.SUCCEEDED and run.run_id:
            return run
    return None


def settled(job_state: JobState, revision: str, retries: int, suspended: bool) -> bool:
    """No further attempt of `revision` is coming (see the module docstring)."""
    if candidate(job_state, revision) is not None:
        return True
    runs = [r for r in job_state.of_revision(revision) if not r.lost]
    if not runs:
        return suspended
    latest = runs[-1]
    if latest.active:
        return False
    if latest.health is Health.FAILED:
        failures = sum(1 for r in runs if r.health is Health.FAILED)
        return not latest.retryable or failures > retries
    if latest.health is Health.CANCELED:
        return suspended or latest.reason != SUSPENDED
    return False


def selection(
    members: Sequence[str],
    metric: str,
    goal: str,
    desired: Desired,
    state: Mapping[str, JobState],
) -> Selection:
    """The set of `members` ranked by `metric` and `goal` (a member not valid in git is not
    settled: the set waits for it to be fixed)."""
    standings = []
    for name in members:
        target = desired.targets.get(name)
        job_state = state.get(name, JobState(name))
        if target is None:
            standings.append(Standing(name, None, None, settled=False))
            continue
        run = candidate(job_state, target.revision)
        value = run.metrics.get(metric) if run is not None else None
        spec = target.job.spec
        done = settled(job_state, target.revision, spec.retries, bool(spec.suspend))
        standings.append(Standing(name, run, value, done))
    return Selection(rank(standings, goal), sum(1 for s in standings if s.settled), metric, goal)


def of_set(sweep_set: SweepSet, desired: Desired, state: Mapping[str, JobState]) -> Selection:
    """A set's members ranked by its `spec.sweep.select` (without one, nobody wins: the
    selection only counts the members settled)."""
    select = sweep_set.sweep.select
    metric, goal = (select.metric, select.goal) if select is not None else ("", MINIMIZE)
    return selection(sweep_set.members, metric, goal, desired, state)


@dataclass(frozen=True)
class MemberOutcome:
    """One member of a settled set as its commit comment shows it."""

    member: str
    values: Mapping[str, Any]  # its axis values (and keys an include entry added)
    run: Run | None  # its candidate, else the latest run of its current revision
    value: float | None  # the select metric of its candidate
    cost_usd: float | None  # its current revision's runs together (None: none priced)


@dataclass(frozen=True)
class SetOutcome:
    """A settled set (DESIGN §21): its members best first, the winner ("" when none)."""

    name: str
    metric: str  # "" without select
    goal: str
    axes: tuple[str, ...]  # the keys of the members' values, the matrix's axes first
    members: tuple[MemberOutcome, ...]
    winner: str

    @property
    def cost_usd(self) -> float:
        return sum(m.cost_usd or 0.0 for m in self.members)


def set_outcome(
    sweep_set: SweepSet, desired: Desired, state: Mapping[str, JobState]
) -> SetOutcome | None:
    """The set once every member is settled (None before): what its commit comment says."""
    chosen = of_set(sweep_set, desired, state)
    if not chosen.complete:
        return None
    members = []
    keys = dict.fromkeys(sweep_set.axes)
    for standing in chosen.ranking:
        target = desired.targets[standing.member]  # a settled member is in git
        member = target.job.member
        values = dict(member.values) if member is not None else {}
        keys.update(dict.fromkeys(values))
        runs = [r for r in state.get(target.name, JobState(target.name)).runs if r.run_id]
        mine = [r for r in runs if r.revision == target.revision]
        shown = standing.run or (mine[-1] if mine else None)
        costs = [r.cost_usd for r in mine if r.cost_usd is not None]
        cost = sum(costs) if costs else None
        members.append(MemberOutcome(standing.member, values, shown, standing.value, cost))
    winner = chosen.winner.member if chosen.winner is not None else ""
    return SetOutcome(
        sweep_set.name, chosen.metric, chosen.goal, tuple(keys), tuple(members), winner
    )


__all__ = [
    "GOALS",
    "MAXIMIZE",
    "MINIMIZE",
    "MemberOutcome",
    "Selection",
    "SetOutcome",
    "Standing",
    "candidate",
    "of_set",
    "rank",
    "selection",
    "set_outcome",
    "settled",
]
