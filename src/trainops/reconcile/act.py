"""Act phase (DESIGN §8 steps 2-4): the provider calls of a pass, in order — adopt the runs of
interrupted submissions, cancel, submit — each after its intent won the swap.

Inputs: the `Context`, the pass (its plan's `Adopt`s, `Cancel`s, `Submit`s and its state), `now`,
and each intent's resolved input (`intents.record_intents`). Outputs: each job's record in
`result.state` with what the provider said (a run id bound, an intent lost, a run canceled, a
submission refused) and one `Outcome` per action. A submission whose outcome is unknown stays
an intent: the next pass adopts it, never submits it twice.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from trainops.errors import OutcomeUnknown, ProviderError
from trainops.faults import crashpoint
from trainops.plan import Adopt, Cancel, Submit
from trainops.providers.base import Adoptable, Submission
from trainops.reconcile.context import Context
from trainops.reconcile.intents import owner_alive, with_reason
from trainops.reconcile.result import Outcome, Pass
from trainops.reconcile.snapshot import stage_data
from trainops.state.model import Health, JobState

ADOPTION_GRACE_SECONDS = 600.0  # DESIGN §8, unless the provider says otherwise (Adoptable)


def adopt_intents(ctx: Context, result: Pass, now: float) -> None:
    """§8 step 3: each intent without a run id is bound to the run it created, or declared
    lost once no run appeared within the grace period and its owner is gone."""
    for action in result.plan.actions:
        if isinstance(action, Adopt):
            result.state[action.job] = _adopt(ctx, result.state[action.job], action, now, result)


def cancel_runs(ctx: Context, result: Pass) -> None:
    """§8 step 4: cancels are idempotent."""
    for action in result.plan.actions:
        if isinstance(action, Cancel):
            result.state[action.job] = _cancel(ctx, result.state[action.job], action, result)
            crashpoint("after-cancel")


def submit_runs(ctx: Context, result: Pass, inputs: dict[str, dict[str, Any]]) -> None:
    """§8 step 2: each submit whose intent was recorded is sent, and its run id recorded."""
    for action in result.plan.actions:
        if isinstance(action, Submit) and action.job in inputs:
            job_state = result.state[action.job]
            result.state[action.job] = _submit(ctx, job_state, action, inputs[action.job], result)
            crashpoint("after-submit")


def _adopt(ctx: Context, job_state: JobState, action: Adopt, now: float, result: Pass) -> JobState:
    run = next(
        r for r in job_state.runs if (r.revision, r.attempt) == (action.revision, action.attempt)
    )
    provider = ctx.providers[run.provider]
    # A search by input and time also sees the runs already bound (an earlier attempt that
    # failed seconds before this intent, a job with the same input): never adopt those.
    taken = frozenset(r.run_id for s in result.state.values() for r in s.runs if r.run_id)
    intent = ctx.intent_of(action.job, run, taken)
    try:
        ref = provider.find(intent)
    except ProviderError as exc:
        result.outcomes.append(Outcome(action, False, str(exc)))
        return job_state
    if ref is not None:
        result.outcomes.append(Outcome(action, True, f"adopted run {ref.run_id}"))
        return job_state.with_run(replace(run, run_id=ref.run_id, health=Health.PENDING))
    grace = provider.adoption_grace if isinstance(provider, Adoptable) else ADOPTION_GRACE_SECONDS
    if owner_alive(run.owner) or now - run.created_at < grace:
        result.outcomes.append(Outcome(action, True, "run not visible yet; will look again"))
        return job_state
    result.outcomes.append(Outcome(action, True, "no run was created: intent lost"))
    return job_state.with_run(
        replace(run, lost=True, error="submission never reached the provider")
    )


def _cancel(ctx: Context, job_state: JobState, action: Cancel, result: Pass) -> JobState:
    run = next(r for r in job_state.runs if r.run_id == action.run_id)
    try:
        ctx.providers[run.provider].cancel(action.run_id)
    except ProviderError as exc:
        result.outcomes.append(Outcome(action, False, str(exc)))
        return job_state
    result.outcomes.append(Outcome(action, True, action.reason))
    ctx.on_event(f"{action.job}: canceled run {action.run_id} ({action.reason})")
    return with_reason(job_state, action)


def _submit(
    ctx: Context, job_state: JobState, action: Submit, resolved: dict[str, Any], result: Pass
) -> JobState:
    run = next(
        r for r in job_state.runs if (r.revision, r.attempt) == (action.revision, action.attempt)
    )
    job = ctx.desired.targets[action.job].job
    packages = ctx.desired.targets[action.job].packages
    try:
        provider = ctx.providers[run.provider]
        staged = stage_data(provider, packages)  # after the intent: one upload per digest
        if packages:
            crashpoint("after-stage")
        submission = Submission(
            job,
            action.revision,
            action.attempt,
            {**resolved, **staged},
            run.input_hash,
            run.snapshot,
            packages,
            run.source_commit,
            ctx.repository,
        )
        ref = provider.submit(submission)
    except OutcomeUnknown as exc:
        result.outcomes.append(Outcome(action, False, f"{exc} (will adopt on next apply)"))
        return job_state
    except ProviderError as exc:
        result.outcomes.append(Outcome(action, False, str(exc)))
        if getattr(exc, "retryable", True):
            return job_state.with_run(replace(run, lost=True, error=str(exc)[:500]))
        return job_state.with_run(
            replace(run, run_id="", health=Health.FAILED, retryable=False, error=str(exc)[:500])
        )
    result.outcomes.append(Outcome(action, True, f"run {ref.run_id}"))
    ctx.on_event(
        f"{action.job}: submitted revision {action.revision} "
        f"attempt {action.attempt} as run {ref.run_id}"
    )
    return job_state.with_run(replace(run, run_id=ref.run_id))
