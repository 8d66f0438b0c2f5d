"""Ownership (DESIGN §9 "Ownership marks"): a state file can claim any run id; only the
provider's own record proves a run is ours. The one place that is decided.

Inputs: the `Context`, the state records' claims, the providers' answers, the plan. Outputs:
the answers that are the claimed runs (`judge`); which runs about to be acted on cannot be
proven ours (`confirm`); the state with every foreign job made invalid, so the planner leaves
it alone (`left_alone`); and the plan of a pass with all of that applied (`owned_plan`).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import replace
from typing import Any

from trainops.errors import ProviderError, TrainopsError
from trainops.plan import Deliver, Plan, Promote, plan
from trainops.providers.base import Observation, Owned
from trainops.reconcile.context import Context
from trainops.reconcile.read import limits
from trainops.reconcile.result import Outcome, Pass
from trainops.state.layout import state_path
from trainops.state.model import JobState, Run


def judge(
    ctx: Context,
    provider: Any,
    claims: Mapping[str, tuple[str, Run]],
    found: Mapping[str, Observation],
    foreign: dict[str, str] | None,
) -> dict[str, Observation]:
    """Each answer of an `Owned` provider judged against the state record that named its run;
    one that is not that record's run is dropped, and its job named in `foreign` with why."""
    if not isinstance(provider, Owned):
        return dict(found)
    kept: dict[str, Observation] = {}
    for run_id, seen in found.items():
        if run_id not in claims:
            continue  # not asked about: nothing of ours says what it should be
        job, run = claims[run_id]
        why = provider.owns(ctx.intent_of(job, run), seen)
        if not why:
            kept[run_id] = seen
        elif foreign is not None:
            foreign.setdefault(job, f"run {run_id} is not this job's run: left alone ({why})")
        else:
            raise ProviderError(f"{job}: run {run_id} is not this job's run ({why})")
    return kept


def confirm(
    ctx: Context, runs: Collection[tuple[str, Run]], foreign: dict[str, str]
) -> dict[str, str]:
    """Ownership of runs about to be acted on that this pass did not observe (a terminal
    run's delivery or promotion): one `observe` per provider, judged like any other. A run
    its provider has no record of cannot be proven ours: returned (run id -> why) so the
    actions on it are skipped; a run that is another's names its job in `foreign`."""
    claims: dict[str, dict[str, tuple[str, Run]]] = {}
    for job, run in runs:
        if run.run_id:
            claims.setdefault(run.provider, {})[run.run_id] = (job, run)
    unproven: dict[str, str] = {}
    for name, asked in sorted(claims.items()):
        try:
            provider = ctx.providers[name]
            if not isinstance(provider, Owned):
                continue
            found = judge(ctx, provider, asked, provider.observe(list(asked)), foreign)
        except TrainopsError as exc:
            for run_id in asked:
                unproven[run_id] = f"could not ask {name} whose run it is: {exc.message}"
            continue
        for run_id, (job, _run) in asked.items():
            if run_id not in found and not named(foreign, job):
                unproven[run_id] = (
                    f"{name} has no record of run {run_id} to prove it is {job}'s (DESIGN §9)"
                )
    return unproven


def owned_plan(
    ctx: Context,
    version: str,
    recorded: dict[str, JobState],
    state: dict[str, JobState],
    observed: Mapping[str, Observation],
    foreign: dict[str, str],
    here: Mapping[str, str],
    held: Mapping[str, str] | None = None,
) -> tuple[dict[str, JobState], Pass]:
    """Plan phase of apply: `plan()` on the refreshed state, then the runs an action would
    touch that this pass did not observe (a terminal run's delivery or promotion) proven this
    job's first, in one batch. A job found foreign is left alone and planned again; an action
    on a run that cannot be proven ours is skipped, with why as its outcome. Returns the
    recorded state (with foreign jobs left alone) and the pass to carry out. `held`: jobs whose
    submissions are held, and why (DESIGN §20, `reconcile.reviewed`)."""
    the_plan = plan(ctx.desired, state, limits(ctx, held=held), ctx.clock(), here)
    acted = acted_on(the_plan, state, observed)
    unproven = confirm(ctx, acted, foreign) if acted else {}
    if foreign.keys() - {n for n, s in recorded.items() if s.problem}:
        recorded = left_alone(recorded, foreign)
        state = left_alone(state, foreign)
        the_plan = plan(ctx.desired, state, limits(ctx, held=held), ctx.clock(), here)
    skipped = [a for a in the_plan.actions if getattr(a, "run_id", "") in unproven]
    if skipped:
        the_plan = replace(the_plan, actions=tuple(a for a in the_plan.actions if a not in skipped))
    result = Pass(the_plan, state, version=version)
    result.outcomes += [Outcome(a, False, unproven[getattr(a, "run_id", "")]) for a in skipped]
    return recorded, result


def held_plan(
    ctx: Context,
    version: str,
    recorded: dict[str, JobState],
    state: dict[str, JobState],
    observed: Mapping[str, Observation],
    foreign: dict[str, str],
    here: Mapping[str, str],
    held: Mapping[str, str],
) -> Pass:
    """The pass `owned_plan` makes with the jobs `held` (the review phase's replan: `recorded`
    and `state` as the first plan left them)."""
    return owned_plan(ctx, version, recorded, state, observed, foreign, here, held)[1]


def left_alone(state: Mapping[str, JobState], foreign: Mapping[str, str]) -> dict[str, JobState]:
    """`state` with each job in `foreign` made invalid with its reason: the planner leaves it
    alone (no cancel, submit, delivery, promotion or report), its file is never rewritten,
    and the problem names the file, as for a state file that fails validation."""
    out = dict(state)
    for name, why in foreign.items():
        old = out.get(name, JobState(name))
        if not old.problem:
            out[name] = JobState(name, problem=why, path=old.path or state_path(name))
    return out


def named(foreign: Mapping[str, str] | None, job: str) -> bool:
    """`job` is among those found foreign."""
    return foreign is not None and job in foreign


def acted_on(
    the_plan: Plan, state: Mapping[str, JobState], observed: Mapping[str, Observation]
) -> list[tuple[str, Run]]:
    """The recorded runs a delivery or promotion of `the_plan` acts on that were not observed
    (and so not judged) in this pass."""
    ids: dict[str, set[str]] = {}
    for action in the_plan.actions:
        if isinstance(action, Deliver | Promote):
            wanted = {action.run_id, getattr(action, "candidate", "")} - {""}
            ids.setdefault(action.job, set()).update(wanted - observed.keys())
    return [
        (job, run)
        for job, wanted in sorted(ids.items())
        for run in state[job].runs
        if run.run_id in wanted
    ]
