"""`show FILE` (DESIGN §20): the `Plan` a saved plan shows, rebuilt from its actions and its
report as `plan` printed it, and the time it was made, which the ages are counted to."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from trainops.savedplan.model import SavedPlanDoc


def to_plan(doc: SavedPlanDoc) -> tuple[Any, float]:
    """The `Plan` a saved plan shows (as `plan` printed it) and the time it was made, which
    the ages are counted to."""
    from trainops import cost
    from trainops.plan import (
        Adopt,
        Cancel,
        Deliver,
        JobView,
        Money,
        Plan,
        Promote,
        SetView,
        Submit,
    )
    from trainops.state.model import Run

    actions: list[Any] = []
    for a in doc.actions:
        if a.op == "submit":
            actions.append(Submit(a.job, a.revision or "", a.attempt or 1, a.reason or ""))
        elif a.op == "adopt":
            actions.append(Adopt(a.job, a.revision or "", a.attempt or 1))
        elif a.op == "cancel":
            actions.append(
                Cancel(a.job, a.run_id or "", a.revision or "", a.attempt or 1, a.reason or "")
            )
        elif a.op == "deliver":
            actions.append(Deliver(a.job, a.run_id or "", a.target or ""))
        else:
            actions.append(
                Promote(a.job, a.target or "", a.run_id or "", a.candidate or "", a.reason or "")
            )
    timeouts = {a.job: a.timeout_seconds for a in doc.actions if a.op == "submit"}
    jobs = {}
    for j in doc.report.jobs:
        run = None
        if j.created_at is not None or j.run_id is not None:
            run = Run(
                revision=j.revision,
                attempt=1,
                provider="",
                input_hash="",
                created_at=_seconds(j.created_at) if j.created_at else 0.0,
                run_id=j.run_id,
                health=j.health,
                outputs=dict(j.outputs),
                deliveries=dict(j.deliveries),
                promotions=dict(j.promotions),
                metrics=dict(j.metrics),
            )
        estimate = None
        if j.estimate_usd is not None:
            estimate = cost.Estimate(0.0, j.estimate_usd, j.estimate_usd)
        jobs[j.job] = JobView(
            j.job,
            j.sync,
            j.health,
            j.reason,
            j.revision,
            run,
            estimate,
            timeout=timeouts.get(j.job),
            spent_usd=j.cost_usd,
        )
    m = doc.report.money
    money = None
    if m is not None:
        money = Money(m.month, m.spent_usd, m.running_usd, m.new_usd, m.budget_usd)
    sets = {
        d.set: SetView(
            d.set,
            tuple(d.members),
            d.estimate_usd,
            d.max_cost_usd_total,
            d.max_parallel,
            d.active,
            d.refused,
            d.metric or "",
            d.best or "",
            d.best_value,
            d.settled,
        )
        for d in doc.report.sets
    }
    return Plan(tuple(actions), jobs, money, sets), _seconds(doc.created_at)


def _seconds(iso: str) -> float:
    try:
        return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0
