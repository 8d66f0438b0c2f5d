"""The rule table of DESIGN §7, one job at a time: what a job in git (`present`) or one removed
from it (`removed`) needs, and which of those actions need a provider that cannot be used from
here now (`available`).

Inputs: a job's `Target` (or none), its refreshed `JobState`, the desired jobs, `Limits`, `now`,
and `here` (this reconciler's location per provider whose runs belong to one place). Outputs:
the job's actions and its `JobView`. Admission (policy, budget, slots) is `plan.admission`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from trainops import cost
from trainops.plan.actions import Action, Adopt, Cancel, Deliver, Promote, Submit
from trainops.plan.desired import Desired, Limits, Target
from trainops.plan.upstream import missing_output, waiting
from trainops.plan.views import JobView, Sync, held, job_view
from trainops.promotion import gate
from trainops.providers.base import Health
from trainops.state.model import JobState, Run

# Why trainops cancels a run. Runs canceled for these reasons are started again once the reason is
# gone (the job is unsuspended, re-added, or its revision comes back); a run canceled for a budget
# limit, or by someone outside trainops, is not: resubmitting would spend the same money again.
SUSPENDED = "suspended"
REMOVED = "removed from git"
REPLACED = "replaced by revision "
MAX_DURATION = "max_duration exceeded"
MAX_COST = "max_cost_usd exceeded"


def available(
    target: Target, job_state: JobState, job_actions: list[Action], limits: Limits
) -> tuple[list[Action], str]:
    """The job's actions without those that need a provider that cannot be used now, and why
    they were left out ("" when none was): a call that cannot be sent is never planned."""
    if not limits.unavailable:
        return job_actions, ""
    kept: list[Action] = []
    why = ""
    for action in job_actions:
        provider: str
        if isinstance(action, Submit):
            provider = target.job.spec.provider
        elif isinstance(action, (Deliver, Promote)):
            provider = ""  # deliveries and aliases go to their targets, not to the provider
        else:
            provider = next(
                (
                    str(r.provider)
                    for r in job_state.runs
                    if (r.revision, r.attempt) == (action.revision, action.attempt)
                ),
                "",
            )
        reason = limits.unavailable.get(provider, "")
        if reason:
            why = why or reason
        else:
            kept.append(action)
    return kept, why


def removed(
    job_state: JobState, complete: bool, limits: Limits, here: Mapping[str, str]
) -> tuple[list[Action], JobView]:
    active = [r for r in job_state.runs if r.active]
    if not active:
        return [], job_view(job_state.job, Sync.SYNCED, job_state, None, REMOVED)
    if not complete:
        return [], job_view(
            job_state.job,
            Sync.OUT_OF_SYNC,
            job_state,
            None,
            "not in git, but some manifests did not parse: not pruned",
        )
    if not limits.policy.prune:
        return [], job_view(
            job_state.job,
            Sync.OUT_OF_SYNC,
            job_state,
            None,
            "removed from git; prune is off, so its run is left alone",
        )
    away = [r for r in active if elsewhere(r, here)]
    active = [r for r in active if not elsewhere(r, here)]
    actions: list[Action] = _adopt(job_state, active)
    actions += [_cancel(job_state.job, r, REMOVED) for r in active if r.run_id]
    why = f"{REMOVED}; {_waiting_for(away[0])}" if away else REMOVED
    return actions, job_view(job_state.job, Sync.OUT_OF_SYNC, job_state, None, why)


def present(
    target: Target,
    job_state: JobState,
    desired: Desired,
    state: Mapping[str, JobState],
    limits: Limits,
    now: float,
    here: Mapping[str, str],
) -> tuple[list[Action], JobView]:
    name, spec, revision = target.name, target.job.spec, target.revision
    active = [r for r in job_state.runs if r.active]
    # Runs of another clone or machine: only there can they be adopted, canceled or delivered.
    away = [r for r in active if elsewhere(r, here)]
    intents = [r for r in active if r.is_intent]
    actions: list[Action] = _adopt(job_state, [r for r in intents if r not in away])
    if any(r in away for r in intents):
        run = next(r for r in intents if r in away)
        return actions, job_view(
            name, Sync.OUT_OF_SYNC, job_state, revision, f"submitted from {run.where}"
        )
    if intents:
        # Until adoption settles, nothing else may start: the intent may be a live run.
        return actions, job_view(
            name,
            Sync.OUT_OF_SYNC,
            job_state,
            revision,
            "adopting a run whose submission was interrupted",
        )

    if spec.suspend:
        actions += [_cancel(name, r, SUSPENDED) for r in active if r not in away]
        sync = Sync.OUT_OF_SYNC if actions or away else Sync.SYNCED
        why = f"suspended; {_waiting_for(away[0])}" if away else "suspended"
        return actions, job_view(name, sync, job_state, revision, why, suspended=True)

    old = [r for r in active if r.revision != revision]
    current = [r for r in active if r.revision == revision]
    if old and limits.policy.on_change == "queue":
        return actions, job_view(
            name,
            Sync.OUT_OF_SYNC,
            job_state,
            revision,
            f"queued: waiting for the run of revision {old[0].revision} to end",
        )
    actions += [_cancel(name, r, f"{REPLACED}{revision}") for r in old if r not in away]
    old_away = [r for r in old if r in away]
    if old_away:
        # Replace is cancel, then submit: the new revision waits until the old run's own clone
        # has canceled it, rather than run next to it.
        return actions, job_view(
            name,
            Sync.OUT_OF_SYNC,
            job_state,
            revision,
            f"replacing revision {old_away[0].revision}: {_waiting_for(old_away[0])}",
        )

    if current:
        run = current[-1]
        if run in away:
            sync = Sync.OUT_OF_SYNC if actions else Sync.SYNCED
            return actions, job_view(name, sync, job_state, revision, f"runs on {run.where}")
        reason = _over_limit(run, spec.budget.max_duration, spec.budget.max_cost_usd, limits, now)
        if reason:
            actions.append(_cancel(name, run, reason))
        sync = Sync.OUT_OF_SYNC if actions else Sync.SYNCED
        return actions, job_view(name, sync, job_state, revision, reason or run.detail)

    runs = job_state.of_revision(revision)
    started = [r for r in runs if not r.lost]
    latest = started[-1] if started else None
    failures = sum(1 for r in runs if r.health is Health.FAILED)
    if latest is not None and latest.health is Health.SUCCEEDED and elsewhere(latest, here):
        undelivered = [t for t in spec.deliver if latest.deliveries.get(t.key) != "done"]
        if undelivered:  # its outputs are files on that machine
            return actions, job_view(
                name,
                Sync.OUT_OF_SYNC,
                job_state,
                revision,
                f"delivery waiting for {latest.where}, where the outputs are",
            )
    if latest is not None and latest.health is Health.SUCCEEDED:
        actions += [
            Deliver(name, latest.run_id or "", t.key)
            for t in spec.deliver
            if latest.deliveries.get(t.key) != "done"
        ]
        promotes = _promotions(name, spec, job_state, latest)
        actions += promotes
        sync = Sync.OUT_OF_SYNC if actions else Sync.SYNCED
        failed = [
            f"{key} {status}"
            for key, status in sorted(latest.deliveries.items())
            if status.startswith("failed")
        ]
        why = (
            "delivery to " + "; ".join(failed)
            if failed
            else "delivering outputs"
            if len(actions) > len(promotes)
            else held(latest)
            if not promotes or any(v.startswith(gate.FAILED) for v in latest.promotions.values())
            else "promoting: " + ", ".join(p.target for p in promotes)
        )
        return actions, job_view(name, sync, job_state, revision, why)
    if (
        latest is not None
        and latest.health is Health.FAILED
        and (not latest.retryable or failures > spec.retries)
    ):
        why = (
            "failed, not retryable"
            if not latest.retryable
            else (f"failed after {failures} attempt(s) (retries: {spec.retries})")
        )
        if latest.error:
            why += f": {latest.error.splitlines()[0][:200]}"
        return actions, job_view(name, Sync.SYNCED, job_state, revision, why)
    if latest is not None and latest.health is Health.CANCELED and not _resubmittable(latest):
        return actions, job_view(
            name,
            Sync.SYNCED,
            job_state,
            revision,
            latest.reason
            or "canceled outside trainops: not resubmitted"
            + (f" ({latest.error.splitlines()[0][:200]})" if latest.error else ""),
        )

    blocked = waiting(target, desired, state)
    if blocked:
        return actions, job_view(name, Sync.BLOCKED, job_state, revision, blocked)
    missing = missing_output(target, desired, state)
    if missing:
        # Nothing to wait for: the upstream run is done and did not produce it. A failure of
        # this job (exit 1), and it goes ahead by itself once an upstream run produces the key.
        view = job_view(name, Sync.BLOCKED, job_state, revision, missing)
        return actions, replace(view, refused=True)
    attempt = len(runs) + 1
    why = (
        "new revision"
        if latest is None
        else (
            f"retry {failures} of {spec.retries} after failure"
            if latest.health is Health.FAILED
            else "resubmitted"
        )
    )
    actions.append(Submit(name, revision, attempt, why))
    return actions, job_view(name, Sync.OUT_OF_SYNC, job_state, revision, why)


def _promotions(name: str, spec: Any, job_state: JobState, candidate: Run) -> list[Promote]:
    """A `Promote` for each alias whose recorded state differs from where the gate says it
    belongs (promotion.gate); none once every record agrees."""
    return [
        Promote(
            name,
            d.target,
            d.holder.run_id or "" if d.holder is not None else "",
            candidate.run_id or "",
            d.verdict,
        )
        for d in gate.decide(spec, job_state.runs, candidate, name)
        if not d.settled(job_state.runs)
    ]


def elsewhere(run: Run, here: Mapping[str, str]) -> bool:
    """A run recorded at another location than this reconciler's (another clone or machine)."""
    return bool(run.location) and here.get(run.provider) != run.location


def _waiting_for(run: Run) -> str:
    return f"the cancel is waiting for {run.where}, where its run lives"


def _resubmittable(run: Run) -> bool:
    return run.reason in (SUSPENDED, REMOVED) or run.reason.startswith(REPLACED)


def _adopt(job_state: JobState, runs: list[Run]) -> list[Action]:
    return [Adopt(job_state.job, r.revision, r.attempt) for r in runs if r.is_intent]


def _cancel(job: str, run: Run, reason: str) -> Cancel:
    return Cancel(job, run.run_id or "", run.revision, run.attempt, reason)


def _over_limit(
    run: Run, max_duration: int | None, max_cost: float | None, limits: Limits, now: float
) -> str:
    if run.run_id is None:
        return ""
    started = run.started_at or run.created_at
    elapsed = max(0.0, now - started)
    if max_duration is not None and elapsed > max_duration:
        return MAX_DURATION
    if max_cost is not None and cost.run_cost(run, limits.prices, now) > max_cost:
        return MAX_COST
    return ""
