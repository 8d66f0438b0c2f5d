"""Binding phase (DESIGN §20, saved plans): what a plan is made from besides the state — the
repository, the commit, the lock and the price table — and, in `apply FILE`, the check that the
pass about to act plans exactly the saved actions from exactly that.

Inputs: the `Context`, a pass (its state version, plan and views), a saved plan. Outputs: the
`Binding` of this workspace (`binding`); `StalePlan` with every line that went stale, raised
before any provider is called (`refuse_stale`). The state version is checked again by the
intents' compare-and-swap, which must win against the version the plan read (`Reconciler`).
"""

from __future__ import annotations

from trainops.reconcile.context import Context
from trainops.reconcile.result import Pass
from trainops.savedplan.digest import lock_digest
from trainops.savedplan.model import AppliedPlan, Binding, SavedPlanDoc, StalePlan
from trainops.savedplan.stale import report_lines, stale_lines
from trainops.savedplan.write import planned


def binding(ctx: Context) -> Binding:
    """This workspace's side of a saved plan: the repository id, the commit applied, the
    digest of its trainops.lock and the prices the planner uses."""
    from trainops.repo import LOCK_FILE

    return Binding(
        repository=ctx.repository,
        commit=ctx.ws.commit,
        lock_digest=lock_digest(ctx.ws.source.read(LOCK_FILE)),
        prices=dict(ctx.ws.limits().prices),
    )


def refuse_stale(ctx: Context, saved: SavedPlanDoc | AppliedPlan, file: str, result: Pass) -> None:
    """Raise `StalePlan` unless `result` (the plan of this pass, not yet acted on) is the
    saved plan: same binding, same state version, the same actions and nothing else."""
    jobs = {
        name: ((view.run.run_id or None) if view.run is not None else None, view.health.value)
        for name, view in result.plan.jobs.items()
    }
    lines = stale_lines(saved, binding(ctx), result.version, planned(result.plan), jobs)
    # What `show` printed of the file must be this pass too (rounded as the report rounds).
    shown = {
        name: (
            view.revision,
            None
            if view.estimate is None or view.estimate.worst_usd is None
            else round(float(view.estimate.worst_usd), 2),
        )
        for name, view in result.plan.jobs.items()
    }
    money = result.plan.money
    new_usd = None if money is None or money.new_usd is None else round(float(money.new_usd), 6)
    lines += report_lines(saved, shown, new_usd)
    if lines:
        raise StalePlan(file, lines)
