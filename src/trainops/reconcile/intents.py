"""Intents phase (DESIGN §8 step 1): before any provider is called, what this pass is about to
start and why it is about to cancel is written to the state branch, in one commit that must win
the compare-and-swap. Losing it means another reconciler is at work: the pass re-reads and
re-plans (`StateConflict`).

Inputs: the `Context`, the pass (its plan's `Cancel`s and `Submit`s), the recorded state, `now`.
Outputs: per submit, an intent run in `result.state` (revision, attempt, input hash, owner,
location, snapshot) with its snapshot committed beside it, and its resolved input for the act
phase; the recorded state as of that commit. A submit whose input does not resolve or whose
`spec.digests` pin does not hold gets no intent, a failed outcome instead.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from trainops.errors import TrainopsError
from trainops.faults import crashpoint
from trainops.fingerprints import Checked
from trainops.plan import Cancel, Submit
from trainops.processes import identity, is_alive
from trainops.providers.base import Located, input_hash
from trainops.reconcile.context import Context
from trainops.reconcile.record import changed, message
from trainops.reconcile.result import Outcome, Pass
from trainops.reconcile.snapshot import resolve_input, snapshot_text
from trainops.scrub import scrubber
from trainops.state.layout import snapshot_path
from trainops.state.model import JobState, Run
from trainops.state.retention import state_changes


def record_intents(
    ctx: Context, result: Pass, recorded: Mapping[str, JobState], now: float
) -> tuple[Mapping[str, JobState], dict[str, dict[str, Any]]]:
    """Record the intents of this pass's cancels and submits in one state commit (none when
    there are neither). Why a run is canceled is recorded with them: lost in a crash after the
    cancel, it would look like a cancel made outside trainops, and the job would never be
    started again. Returns the state as committed and each intent's resolved input."""
    state = result.state
    cancels = [a for a in result.plan.actions if isinstance(a, Cancel)]
    submits = [a for a in result.plan.actions if isinstance(a, Submit)]
    if not (cancels or submits):
        return recorded, {}
    for action in cancels:
        state[action.job] = with_reason(state[action.job], action)
    inputs, snapshots = _intents(ctx, submits, state, now, result)
    changes = state_changes(changed(state, recorded), recorded, result.version)
    changes.update(snapshots)
    result.version = ctx.store.save(
        result.version, changes, message("record intents", [*cancels, *submits])
    )
    crashpoint("after-intents")
    return dict(state), inputs


def with_reason(job_state: JobState, action: Cancel) -> JobState:
    """The run `action` cancels, recorded with why trainops cancels it."""
    run = next(r for r in job_state.runs if r.run_id == action.run_id)
    return job_state.with_run(replace(run, reason=action.reason))


def owner_id() -> str:
    """`host:pid:start-time` of this process, recorded with the intents it writes."""
    return f"{socket.gethostname()}:{os.getpid()}:{identity(os.getpid())}"


def owner_alive(owner: str) -> bool:
    """The process that recorded an intent (`owner_id`) still runs on this machine: its
    submission may still be under way, so the intent is not lost yet."""
    host, pid, ident = [*owner.split(":"), "", ""][:3]
    if host != socket.gethostname() or not pid.isdigit():
        return False  # another machine: only the grace period can tell
    if int(pid) == os.getpid():
        return False
    return is_alive(int(pid), ident)


def _intents(
    ctx: Context, submits: list[Submit], state: dict[str, JobState], now: float, result: Pass
) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """Record an intent run in `state` for each submit; return the resolved inputs and
    the snapshot files to commit with them."""
    inputs: dict[str, dict[str, Any]] = {}
    snapshots: dict[str, str] = {}
    resolved_inputs: dict[str, dict[str, Any]] = {}
    for action in submits:
        try:
            job = ctx.desired.targets[action.job].job
            resolved_inputs[action.job] = resolve_input(job, state, ctx.desired)
        except TrainopsError as exc:
            result.outcomes.append(Outcome(action, False, str(exc)))
    checked = _check_inputs(ctx, resolved_inputs)
    for action in submits:
        if action.job not in resolved_inputs:
            continue
        target = ctx.desired.targets[action.job]
        job = target.job
        resolved = resolved_inputs[action.job]
        remote = checked[action.job]
        for note in remote.notes:
            ctx.on_event(f"{action.job}: {scrubber()(note)}")
        if remote.refused:  # a pin that does not hold: no intent, no upload, no run
            result.outcomes.append(Outcome(action, False, remote.refused))
            continue
        spec = job.spec
        try:
            provider = ctx.providers[spec.provider]
            # Where the run will live is recorded with its intent: any other reconciler
            # then leaves it alone, even before it has a run id.
            where = provider.location(claim=True) if isinstance(provider, Located) else ""
        except TrainopsError as exc:
            result.outcomes.append(Outcome(action, False, str(exc)))
            continue
        run = Run(
            revision=action.revision,
            attempt=action.attempt,
            provider=spec.provider,
            input_hash=input_hash(resolved),
            created_at=now,
            source_commit=ctx.ws.commit,
            trainer=ctx.ws.trainer(spec) or "",
            destination=getattr(spec, "destination", ""),
            hardware=spec.hardware or "",
            instances=getattr(spec, "instance_count", 1) or 1,
            owner=owner_id(),
            location=where,
            labels=dict(job.manifest.metadata.labels),
            snapshot=snapshot_path(action.job, action.revision),
            fingerprints=remote.fingerprints,
        )
        state[action.job] = state.get(action.job, JobState(action.job)).with_run(run)
        snapshots[run.snapshot] = snapshot_text(
            job, action.revision, resolved, run, tree=ctx.ws.tree
        )
        inputs[action.job] = resolved
    return inputs, snapshots


def _check_inputs(ctx: Context, resolved: Mapping[str, Mapping[str, Any]]) -> dict[str, Checked]:
    """What stands behind each remote URL of the inputs about to be submitted, observed in
    one batch just before their intents (DESIGN §18), and each `spec.digests` pin checked."""
    from trainops.fingerprints import check_inputs

    targets = ctx.desired.targets
    return check_inputs(
        ctx.observer(),
        resolved,
        {job: targets[job].job.spec.digests for job in resolved},
        {job: {k: p.digest for k, p in targets[job].packages.items()} for job in resolved},
    )
