"""Deliver and promote phase (DESIGN §10 delivery, §19 promotion): a succeeded run's outputs
copied to each `deliver` target, then each `promote` alias pointed where the gate decides.

Inputs: the `Context` (providers, desired jobs, what failed earlier in this process) and the
pass (its plan's `Deliver`s and `Promote`s and its state; a sweep set's winner promotes with the
set's `promote`, DESIGN §21). Outputs: each run's `deliveries`,
`digests`, `delivered` and `promotions` recorded in `result.state`, one `Outcome` per action.
Targets check what they already hold, so a retry writes only what is missing and a repeated
promotion moves nothing.
"""

from __future__ import annotations

from dataclasses import replace

from trainops.errors import TrainopsError
from trainops.faults import crashpoint
from trainops.manifest import set_of
from trainops.plan import Deliver, Promote, left_by, promoting_spec
from trainops.providers.base import OutputFolder, OutputPrefix
from trainops.reconcile.context import Context
from trainops.reconcile.result import Outcome, Pass
from trainops.state.model import JobState


def deliver_outputs(ctx: Context, result: Pass) -> None:
    """Every delivery of the plan that has not already failed in this process."""
    for action in result.plan.actions:
        if isinstance(action, Deliver) and (
            (action.job, action.run_id, action.target) not in ctx.failed_deliveries
        ):
            result.state[action.job] = _deliver(ctx, result.state[action.job], action, result)
            crashpoint("after-deliver")


def promote_aliases(ctx: Context, result: Pass) -> None:
    """Every alias decision of the plan that has not already failed in this process."""
    for action in result.plan.actions:
        if isinstance(action, Promote) and (
            (action.job, action.candidate, action.target) not in ctx.failed_promotions
        ):
            result.state[action.job] = _promote(ctx, result.state[action.job], action, result)
            _supersede(ctx, result, action)
            crashpoint("after-promote")


def _deliver(ctx: Context, job_state: JobState, action: Deliver, result: Pass) -> JobState:
    """Copy a succeeded run's outputs to one target. Targets check what they already hold,
    so a retry after a partial failure writes only what is missing."""
    from trainops.delivery import deliver

    run = next(r for r in job_state.runs if r.run_id == action.run_id)
    spec = ctx.desired.targets[action.job].job.spec
    target = next(t for t in spec.deliver if t.key == action.target)
    provider = ctx.providers[run.provider]
    folder = provider.output_dir(action.run_id) if isinstance(provider, OutputFolder) else None
    prefix = provider.output_prefix(action.run_id) if isinstance(provider, OutputPrefix) else None
    try:
        digests: dict[str, str] = {}
        where: dict[str, str] = {}
        summary = deliver(target, action.job, run, folder, digests, prefix, where)
    except TrainopsError as exc:
        result.outcomes.append(Outcome(action, False, exc.message))
        ctx.failed_deliveries.add((action.job, action.run_id, action.target))
        status = f"failed: {exc.message}"[:500]
    else:
        result.outcomes.append(Outcome(action, True, summary))
        ctx.on_event(f"{action.job}: delivered to {action.target} ({summary})")
        status = "done"
        run = replace(run, digests={**run.digests, **digests}, delivered={**run.delivered, **where})
    deliveries = {**run.deliveries, action.target: status}
    return job_state.with_run(replace(run, deliveries=deliveries))


def _promote(ctx: Context, job_state: JobState, action: Promote, result: Pass) -> JobState:
    """Carry out one alias decision (promotion.gate): once the candidate's deliveries are
    done (this pass may just have made them), point the alias at the holder — the target is
    read first, so a repeat moves nothing — then record the verdict on the candidate,
    `done` on the holder and `superseded` on the run the alias left."""
    from trainops.promotion import gate
    from trainops.promotion.targets import PromotionError, move

    spec = promoting_spec(ctx.desired, action.job)  # a sweep's winner: with the set's promote
    assert spec is not None
    target = next(t for t in (spec.promote.to if spec.promote else ()) if t.key == action.target)
    candidate = next((r for r in job_state.runs if r.run_id == action.candidate), None)
    if candidate is None:
        return job_state
    decision = next(
        (
            d
            for d in gate.decide(spec, job_state.runs, candidate, action.job)
            if d.target == target.key
        ),
        None,
    )
    if decision is None or decision.waiting:
        result.outcomes.append(Outcome(action, True, "waiting for the deliveries"))
        return job_state
    holder = decision.holder
    if holder is not None:
        try:
            summary = move(target, spec, action.job, holder, ctx.providers[holder.provider])
        except (PromotionError, TrainopsError) as exc:
            result.outcomes.append(Outcome(action, False, exc.message))
            ctx.failed_promotions.add((action.job, action.candidate, action.target))
            status = f"{gate.FAILED}{exc.message}"[:500]
            promotions = {**candidate.promotions, target.key: status}
            return job_state.with_run(replace(candidate, promotions=promotions))
        ctx.on_event(f"{action.job}: {summary}")
    else:
        summary = "no run passed: the alias is left as it was"
    runs = list(job_state.runs)
    for run in runs:
        expected = decision.expected(run)
        if run.run_id and expected is not None and run.promotions.get(target.key) != expected:
            job_state = job_state.with_run(
                replace(run, promotions={**run.promotions, target.key: expected})
            )
    detail = summary if not decision.held else f"{decision.verdict} ({summary})"
    result.outcomes.append(Outcome(action, True, detail))
    return job_state


def _supersede(ctx: Context, result: Pass, action: Promote) -> None:
    """DESIGN §21: once an alias of a sweep set points at its winner's run, the runs of the
    set's other members it pointed at say where it went (`superseded by run X`)."""
    from trainops.promotion import gate

    sweep_set = ctx.desired.sets.get(set_of(action.job))
    moved = next(
        (r for r in result.state[action.job].runs if r.run_id and r.run_id == action.run_id),
        None,
    )
    if sweep_set is None or moved is None or moved.promotions.get(action.target) != gate.DONE:
        return
    for member, run in left_by(sweep_set, result.state, action.job, action.target):
        promotions = {**run.promotions, action.target: f"{gate.SUPERSEDED}{action.run_id}"}
        result.state[member] = result.state[member].with_run(replace(run, promotions=promotions))
