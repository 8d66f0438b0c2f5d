"""What the plan shows a user (DESIGN §6): per job its sync and health and why (`JobView`), per
sweep set its members and bounds (`SetView`, DESIGN §21), the money summary (`Money`), and the
`Plan` that carries them with the actions.

Inputs: a job's recorded runs and the rule that decided it. Outputs: values; `view` builds a
`JobView` from a job's record, `held` says why an alias did not move (DESIGN §19).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from trainops import cost
from trainops.plan.actions import Action
from trainops.promotion import gate
from trainops.state.model import Health, JobState, Run


class Sync(StrEnum):
    SYNCED = "Synced"
    OUT_OF_SYNC = "OutOfSync"
    INVALID = "Invalid"
    BLOCKED = "Blocked"


@dataclass(frozen=True)
class JobView:
    """What a user sees for one job: DESIGN §6 sync and health, and why."""

    job: str
    sync: Sync
    health: Health
    reason: str = ""
    revision: str = ""
    run: Run | None = None
    estimate: cost.Estimate | None = None  # worst case of the current revision, when in git
    timeout: int | None = None  # seconds the provider stops a run at (Limits.timeouts)
    refused: bool = False  # Blocked by policy or budget (exit 1), not merely waiting
    spent_usd: float = 0.0  # what this job's runs cost so far, all months


@dataclass(frozen=True)
class SetView:
    """What a user sees for one sweep set (DESIGN §21): its members in the set's order (each a
    job with its own `JobView`), their worst case together, and the bounds the set runs under."""

    name: str
    members: tuple[str, ...]
    # the sum of the members' worst cases, as each member's row shows it (None: a member's is
    # unbounded or unpriced)
    worst_usd: float | None
    max_cost_usd_total: float | None = None
    max_parallel: int | None = None
    active: int = 0  # runs of its members active before this plan
    refused: str = ""  # why the set's new submissions are refused ("" when they are not)
    # `spec.sweep.select` (plan.select): the metric, the best member so far and its value, and
    # how many members are settled; the best is the winner once every member is
    metric: str = ""
    best: str = ""
    best_value: float | None = None
    settled: int = 0

    @property
    def winner(self) -> str:
        """The member `select` picks once the set is settled ("" before, or without select)."""
        return self.best if self.settled == len(self.members) else ""


@dataclass(frozen=True)
class Money:
    """The plan's cost summary (DESIGN §4 budget, shown before merge)."""

    month: str
    spent_usd: float  # this month, finished runs and cost so far of running ones
    running_usd: float | None  # worst case still to come from active runs (None: unbounded)
    new_usd: float | None  # worst case of the runs this plan submits (None: unbounded)
    budget_usd: float | None


@dataclass(frozen=True)
class Plan:
    actions: tuple[Action, ...]
    jobs: Mapping[str, JobView]
    money: Money | None = None
    sets: Mapping[str, SetView] = field(default_factory=dict)

    @property
    def changes(self) -> bool:
        return bool(self.actions)


def held(run: Run) -> str:
    """Why an alias did not move to `run` (its failed conditions), for status and plan."""
    holds = [f"{k} {v}" for k, v in sorted(run.promotions.items()) if v.startswith(gate.HELD)]
    failed = [f"{k} {v}" for k, v in sorted(run.promotions.items()) if v.startswith(gate.FAILED)]
    return "; ".join(["promotion " + h for h in holds] + ["promotion to " + f for f in failed])


def job_view(
    job: str,
    sync: Sync,
    job_state: JobState,
    revision: str | None,
    reason: str,
    suspended: bool = False,
) -> JobView:
    runs = job_state.of_revision(revision) if revision else list(job_state.runs)
    run = runs[-1] if runs else None
    if run is None or run.lost:
        # No run: a suspended job is not missing one, it is not meant to have one (DESIGN §6),
        # and an intent lost before it started gives it no age.
        health = Health.MISSING
        if suspended:
            health, run = Health.SUSPENDED, None
    else:
        health = Health.PENDING if run.is_intent else run.health
    return JobView(job, sync, health, reason, revision or "", run)
