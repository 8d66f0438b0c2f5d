"""Admission (DESIGN §4 policy, §7 "policy+budget allow", §21 sets): the gates every submission
passes in plan order — allowed providers and hardware, cost per job, a sweep set's total, the
set's `max_parallel`, concurrency, monthly budget.

Inputs: the desired jobs, the refreshed state, `Limits`, `now`. Outputs: per job, whether its
submissions go ahead, or why not and whether that is a refusal; the plan's `Money` summary and
one `SetView` per sweep set.

A set's `budget.max_cost_usd_total` is checked against the sum of every member's worst case
(each priced as its own row is, attempts included): a figure the pull request shows and that
does not move while the sweep runs. Over it, every new submission of the set is refused (the
members already running are left alone): a sweep cut to the members that happened to come
first would name a winner of a grid nobody reviewed. `max_parallel` counts the active runs of
the set's members; members beyond it wait (not a refusal), admitted in the set's order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from trainops import cost
from trainops.manifest import SweepSet
from trainops.plan.actions import Action, Cancel, Submit
from trainops.plan.desired import Desired, Limits, Target
from trainops.plan.views import Money, SetView
from trainops.state.model import JobState, month_of


class Admission:
    """The gates every submission passes in plan order (DESIGN §4 policy): concurrency, cost per
    job, monthly budget. Slots and money taken by earlier submissions count for later ones."""

    def __init__(
        self, desired: Desired, state: Mapping[str, JobState], limits: Limits, now: float
    ) -> None:
        self.limits, self.policy = limits, limits.policy
        self.month = month_of(now)
        self.spent = cost.month_spend(state.values(), limits.prices, self.month, now)
        self.running = sum(1 for s in state.values() for r in s.runs if r.active)
        self.to_come: float | None = 0.0  # worst case still to come from active runs
        for name, job_state in state.items():
            target = desired.targets.get(name)
            for run in job_state.runs:
                if not run.active:
                    continue
                attempt = (
                    limits.estimate(target.job.spec).attempt_usd
                    if target and target.revision == run.revision
                    else None
                )
                if attempt is None and cost.price(
                    limits.prices, run.hardware or None, run.provider
                ) not in (None, 0.0):
                    self.to_come = None
                elif attempt is not None and self.to_come is not None:
                    self.to_come += max(0.0, attempt - cost.run_cost(run, limits.prices, now))
        self.new: float | None = 0.0
        self.sets = desired.sets
        self.set_of = {m: s.name for s in desired.sets.values() for m in s.members}
        # active runs of each set's members: what max_parallel counts
        self.set_running = {
            s.name: sum(1 for m in s.members for r in state.get(m, JobState(m)).runs if r.active)
            for s in desired.sets.values()
        }
        self._set_active = dict(self.set_running)
        self._set_worst = {
            s.name: _worst_of(desired, limits, s.members) for s in desired.sets.values()
        }

    def admit(self, target: Target, job_actions: list[Action]) -> tuple[str, bool]:
        """('', False) when the job's submissions may go ahead, else why not and whether that
        is a refusal (policy, budget) rather than a wait (slots). Records what they take."""
        submits = [a for a in job_actions if isinstance(a, Submit)]
        if not submits:
            return "", False
        refusal = self._refusal(target)
        if refusal:
            return refusal, True
        freed = sum(1 for a in job_actions if isinstance(a, Cancel))
        member_of = self.set_of.get(target.name)
        parallel = _max_parallel(self.sets[member_of]) if member_of else None
        taken = len(submits) - freed
        if parallel is not None and member_of and self.set_running[member_of] + taken > parallel:
            return f"max_parallel {parallel} of the set {member_of}: waiting for a member", False
        slots = self.policy.max_concurrent_runs
        if slots is not None and self.running + taken > slots:
            return f"max_concurrent_runs ({slots}) reached; waiting for a slot", False
        est = self.limits.estimate(target.job.spec)
        self.running += taken
        if member_of:
            self.set_running[member_of] += taken
        self.new = None if self.new is None or est.worst_usd is None else self.new + est.worst_usd
        return "", False

    def _refusal(self, target: Target) -> str:
        spec = target.job.spec
        policy = self.policy
        if target.name in self.limits.held:
            return self.limits.held[target.name]
        if policy.allowed_providers is not None and spec.provider not in policy.allowed_providers:
            return f"provider {spec.provider} is not in policy.allowed_providers"
        if (
            policy.allowed_hardware is not None
            and spec.hardware is not None
            and (spec.hardware not in policy.allowed_hardware)
        ):
            return f"hardware {spec.hardware} is not in policy.allowed_hardware"
        est = self.limits.estimate(spec)
        cap = policy.max_cost_usd_per_job
        if cap is not None and est.unpriced:  # refuse rather than guess what it may cost
            return (
                f"hardware {est.unpriced} has no price, so max_cost_usd_per_job "
                f"{cost.usd(cap)} cannot be checked: set prices_usd_per_second.{est.unpriced} "
                "in trainops.yaml"
            )
        if cap is not None and (est.worst_usd is None or est.worst_usd > cap):
            return (
                f"worst case {cost.usd(est.worst_usd)} is over max_cost_usd_per_job "
                f"{cost.usd(cap)}"
                + ("" if est.bounded else ": set budget.max_duration or estimate.duration")
            )
        member_of = self.set_of.get(target.name)
        if member_of:
            refusal = self._set_refusal(member_of)
            if refusal:
                return refusal
        budget = self.policy.monthly_budget_usd
        if budget is not None:
            committed = (
                None
                if self.to_come is None or self.new is None or not est.bounded
                else self.spent + self.to_come + self.new + (est.worst_usd or 0.0)
            )
            if committed is None or committed > budget:
                return (
                    f"monthly budget {cost.usd(budget)} would be exceeded: spent "
                    f"{cost.usd(self.spent)}, running {cost.usd(self.to_come)}, this plan "
                    f"{cost.usd(self.new)}, this job {cost.usd(est.worst_usd)}"
                )
        return ""

    def _set_refusal(self, name: str) -> str:
        """Why the set's new submissions are refused by its `max_cost_usd_total` ("": not)."""
        cap = self.sets[name].max_cost_usd_total
        if cap is None:
            return ""
        worst, unbounded = self._set_worst[name]
        if worst is None:
            return (
                f"the set {name} has no bounded worst case ({unbounded}), so "
                f"max_cost_usd_total {cost.usd(cap)} cannot be checked"
            )
        if worst > cap:
            members = len(self.sets[name].members)
            return (
                f"worst case of the set {name} {cost.usd(worst)} ({members} members) is over "
                f"max_cost_usd_total {cost.usd(cap)}"
            )
        return ""

    def set_views(self) -> dict[str, SetView]:
        """One `SetView` per sweep set, by name."""
        return {
            name: SetView(
                name,
                tuple(s.members),
                self._set_worst[name][0],
                s.max_cost_usd_total,
                _max_parallel(s),
                self._set_active[name],
                self._set_refusal(name),
            )
            for name, s in sorted(self.sets.items())
        }

    def money(self) -> Money:
        return Money(self.month, self.spent, self.to_come, self.new, self.policy.monthly_budget_usd)


def _max_parallel(sweep_set: SweepSet) -> int | None:
    return sweep_set.sweep.max_parallel


def _worst_of(desired: Desired, limits: Limits, members: Sequence[str]) -> tuple[float | None, str]:
    """The sum of the members' worst cases, or None and the first member that has none (why)."""
    total = 0.0
    for name in members:
        target = desired.targets.get(name)
        if target is None:
            continue
        est = limits.estimate(target.job.spec)
        if est.worst_usd is None:
            why = f"hardware {est.unpriced} has no price" if est.unpriced else "no max_duration"
            return None, f"{name}: {why}"
        total += est.worst_usd
    # to the micro-dollar: four members at $1.525 are $6.10, not $6.1000000000000005
    return round(total, 6), ""
