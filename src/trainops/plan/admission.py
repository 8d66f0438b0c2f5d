"""Admission (DESIGN §4 policy, §7 "policy+budget allow"): the gates every submission passes in
plan order — allowed providers and hardware, cost per job, concurrency, monthly budget.

Inputs: the desired jobs, the refreshed state, `Limits`, `now`. Outputs: per job, whether its
submissions go ahead, or why not and whether that is a refusal; the plan's `Money` summary.
"""

from __future__ import annotations

from collections.abc import Mapping

from trainops import cost
from trainops.plan.actions import Action, Cancel, Submit
from trainops.plan.desired import Desired, Limits, Target
from trainops.plan.views import Money
from trainops.state.model import JobState


class Admission:
    """The gates every submission passes in plan order (DESIGN §4 policy): concurrency, cost per
    job, monthly budget. Slots and money taken by earlier submissions count for later ones."""

    def __init__(
        self, desired: Desired, state: Mapping[str, JobState], limits: Limits, now: float
    ) -> None:
        self.limits, self.policy = limits, limits.policy
        self.month = cost.month_of(now)
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
        slots = self.policy.max_concurrent_runs
        if slots is not None and self.running - freed + len(submits) > slots:
            return f"max_concurrent_runs ({slots}) reached; waiting for a slot", False
        est = self.limits.estimate(target.job.spec)
        self.running += len(submits) - freed
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

    def money(self) -> Money:
        return Money(self.month, self.spent, self.to_come, self.new, self.policy.monthly_budget_usd)
