"""The rule table of DESIGN §7, one job at a time: what a job in git (`present`) or one removed
from it (`removed`) needs, and which of those actions need a provider that cannot be used from
here now (`available`).

Inputs: a job's `Target` (or none), its refreshed `JobState`, the desired jobs, `Limits`, `now`,
and `here` (this reconciler's location per provider whose runs belong to one place). Outputs:
the job's actions and its `JobView`. Admission (policy, budget, slots) is `plan.admission`.

`present` is the rules of `_RULES` in DESIGN §7's order, each a small function named for what
it does (`_adopt_intents`, `_suspend`, `_replace_old_revision`, `_watch_current_run`,
`_deliver_elsewhere`, `_deliver_and_promote`, `_give_up_failed`, `_leave_canceled`,
`_wait_for_upstream`, `_submit`) over one `_Case`; the first to answer a view decides the job.
Pure: no I/O, no clock reads.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any

from trainops import cost
from trainops.plan.actions import (
    MAX_COST,
    MAX_DURATION,
    REMOVED,
    REPLACED,
    SUSPENDED,
    Action,
    Adopt,
    Cancel,
    Deliver,
    Promote,
    Submit,
)
from trainops.plan.desired import Desired, Limits, Target
from trainops.plan.upstream import missing_output, waiting
from trainops.plan.views import JobView, Sync, held, job_view
from trainops.plan.winner import stop_early
from trainops.promotion import gate
from trainops.state.model import Health, JobState, Run


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


@dataclass(frozen=True)
class _Case:
    """One job in git as the rules of `present` see it: its target, its refreshed state, the
    desired jobs and state (for `after`), and this reconciler's limits, clock and location."""

    target: Target
    job_state: JobState
    desired: Desired
    state: Mapping[str, JobState]
    limits: Limits
    now: float
    here: Mapping[str, str]

    @property
    def name(self) -> str:
        return self.target.name

    @property
    def spec(self) -> Any:
        return self.target.job.spec

    @property
    def revision(self) -> str:
        return self.target.revision

    @cached_property
    def active(self) -> list[Run]:
        return [r for r in self.job_state.runs if r.active]

    @cached_property
    def away(self) -> list[Run]:
        """Runs of another clone or machine: only there can they be adopted, canceled or
        delivered."""
        return [r for r in self.active if elsewhere(r, self.here)]

    @cached_property
    def runs(self) -> list[Run]:
        """The current revision's runs, every attempt."""
        return self.job_state.of_revision(self.revision)

    @cached_property
    def latest(self) -> Run | None:
        """The last run of the current revision that was not lost."""
        started = [r for r in self.runs if not r.lost]
        return started[-1] if started else None

    @cached_property
    def failures(self) -> int:
        return sum(1 for r in self.runs if r.health is Health.FAILED)

    def view(self, sync: Sync, why: str, **extra: Any) -> JobView:
        return job_view(self.name, sync, self.job_state, self.revision, why, **extra)


# A rule of `present`: it may add actions to the list it is given, and answers the job's view
# when it decides the job, or None to let the next rule in `_RULES` look at it.
_Rule = Callable[[_Case, list[Action]], JobView | None]


def present(
    target: Target,
    job_state: JobState,
    desired: Desired,
    state: Mapping[str, JobState],
    limits: Limits,
    now: float,
    here: Mapping[str, str],
) -> tuple[list[Action], JobView]:
    """What a job in git needs: the rules of `_RULES` in order (DESIGN §7's table, §8 for
    intents), the first that decides the job gives its view; actions add up along the way."""
    case = _Case(target, job_state, desired, state, limits, now, here)
    actions: list[Action] = []
    for rule in _RULES:
        view = rule(case, actions)
        if view is not None:
            return actions, view
    raise AssertionError("_submit decides every job the other rules leave")  # pragma: no cover


def _adopt_intents(case: _Case, actions: list[Action]) -> JobView | None:
    """DESIGN §8.3: an intent without a run id is adopted first, and until adoption settles
    nothing else may start (the intent may be a live run). An intent of another clone or
    machine is adopted there."""
    intents = [r for r in case.active if r.is_intent]
    away = case.away
    actions += _adopt(case.job_state, [r for r in intents if r not in away])
    there = next((r for r in intents if r in away), None)
    if there is not None:
        return case.view(Sync.OUT_OF_SYNC, f"submitted from {there.where}")
    if intents:
        return case.view(Sync.OUT_OF_SYNC, "adopting a run whose submission was interrupted")
    return None


def _suspend(case: _Case, actions: list[Action]) -> JobView | None:
    """DESIGN §7, `suspend: true` and a run is active: `Cancel` (the runs of elsewhere are
    canceled there)."""
    if not case.spec.suspend:
        return None
    away = case.away
    actions += [_cancel(case.name, r, SUSPENDED) for r in case.active if r not in away]
    sync = Sync.OUT_OF_SYNC if actions or away else Sync.SYNCED
    why = f"suspended; {_waiting_for(away[0])}" if away else "suspended"
    return case.view(sync, why, suspended=True)


def _replace_old_revision(case: _Case, actions: list[Action]) -> JobView | None:
    """DESIGN §7, an older revision's run is active: `on_change: queue` waits for it; `replace`
    is `Cancel(old)` then `Submit`, and the new revision waits until the old run's own clone has
    canceled it, rather than run next to it."""
    old = [r for r in case.active if r.revision != case.revision]
    if old and case.limits.policy.on_change == "queue":
        return case.view(
            Sync.OUT_OF_SYNC, f"queued: waiting for the run of revision {old[0].revision} to end"
        )
    away = case.away
    actions += [_cancel(case.name, r, f"{REPLACED}{case.revision}") for r in old if r not in away]
    old_away = [r for r in old if r in away]
    if old_away:
        run = old_away[0]
        return case.view(
            Sync.OUT_OF_SYNC, f"replacing revision {run.revision}: {_waiting_for(run)}"
        )
    return None


def _watch_current_run(case: _Case, actions: list[Action]) -> JobView | None:
    """DESIGN §7, the current revision's run is active: `Cancel` once elapsed > `max_duration`
    or cost so far > `max_cost_usd`, or (DESIGN §21) its set's `stop_when` says it is out of
    the race (`plan.winner.stop_early`); a run of elsewhere is only shown. With no other reason, the
    provider's own word on the run (`Run.detail`) is its reason."""
    current = [r for r in case.active if r.revision == case.revision]
    if not current:
        return None
    run = current[-1]
    if run in case.away:
        sync = Sync.OUT_OF_SYNC if actions else Sync.SYNCED
        return case.view(sync, f"runs on {run.where}")
    budget = case.spec.budget
    reason = _over_limit(run, budget.max_duration, budget.max_cost_usd, case.limits, case.now)
    if not reason and run.run_id and run.progress:
        reason = stop_early(case.target, case.desired, case.state, run)
    if reason:
        actions.append(_cancel(case.name, run, reason))
    sync = Sync.OUT_OF_SYNC if actions else Sync.SYNCED
    return case.view(sync, reason or run.detail)


def _deliver_elsewhere(case: _Case, actions: list[Action]) -> JobView | None:
    """DESIGN §10: a run that succeeded on another machine is delivered there, where its outputs
    are files."""
    latest = case.latest
    if latest is None or latest.health is not Health.SUCCEEDED or not elsewhere(latest, case.here):
        return None
    if not any(latest.deliveries.get(t.key) != "done" for t in case.spec.deliver):
        return None
    return case.view(
        Sync.OUT_OF_SYNC, f"delivery waiting for {latest.where}, where the outputs are"
    )


def _deliver_and_promote(case: _Case, actions: list[Action]) -> JobView | None:
    """DESIGN §7, run succeeded: `Deliver` each target not yet done; DESIGN §19: `Promote` each
    alias the gate moves. A succeeded revision is never resubmitted."""
    latest = case.latest
    if latest is None or latest.health is not Health.SUCCEEDED:
        return None
    actions += [
        Deliver(case.name, latest.run_id or "", t.key)
        for t in case.spec.deliver
        if latest.deliveries.get(t.key) != "done"
    ]
    promotes = _promotions(case.name, case.spec, case.job_state, latest)
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
    return case.view(sync, why)


def _give_up_failed(case: _Case, actions: list[Action]) -> JobView | None:
    """DESIGN §7, run failed: no new attempt once it is not retryable or attempts > `retries`."""
    latest, failures = case.latest, case.failures
    if latest is None or latest.health is not Health.FAILED:
        return None
    if latest.retryable and failures <= case.spec.retries:
        return None
    why = (
        "failed, not retryable"
        if not latest.retryable
        else f"failed after {failures} attempt(s) (retries: {case.spec.retries})"
    )
    if latest.error:
        why += f": {latest.error.splitlines()[0][:200]}"
    return case.view(Sync.SYNCED, why)


def _leave_canceled(case: _Case, actions: list[Action]) -> JobView | None:
    """A run canceled for a budget limit or from outside trainops is not resubmitted (see
    SUSPENDED above); one canceled for a reason that is gone is."""
    latest = case.latest
    if latest is None or latest.health is not Health.CANCELED or _resubmittable(latest):
        return None
    return case.view(
        Sync.SYNCED,
        latest.reason
        or "canceled outside trainops: not resubmitted"
        + (f" ({latest.error.splitlines()[0][:200]})" if latest.error else ""),
    )


def _wait_for_upstream(case: _Case, actions: list[Action]) -> JobView | None:
    """DESIGN §7, `after` not yet satisfied: sync `Blocked`, reason shown. An upstream run that
    is done and did not produce the key is a failure of this job (exit 1), and it goes ahead by
    itself once an upstream run produces the key."""
    blocked = waiting(case.target, case.desired, case.state)
    if blocked:
        return case.view(Sync.BLOCKED, blocked)
    missing = missing_output(case.target, case.desired, case.state)
    if missing:
        return replace(case.view(Sync.BLOCKED, missing), refused=True)
    return None


def _submit(case: _Case, actions: list[Action]) -> JobView | None:
    """DESIGN §7, the current revision has no run (or its last failed with retries left, or was
    canceled for a reason that is gone): `Submit` the next attempt. Admission may still refuse
    it (`plan.admission`)."""
    latest, failures = case.latest, case.failures
    why = (
        "new revision"
        if latest is None
        else (
            f"retry {failures} of {case.spec.retries} after failure"
            if latest.health is Health.FAILED
            else "resubmitted"
        )
    )
    attempt = len(case.runs) + 1
    actions.append(Submit(case.name, case.revision, attempt, why))
    return case.view(Sync.OUT_OF_SYNC, why)


# The rules of `present`, in the order DESIGN §7 applies them.
_RULES: tuple[_Rule, ...] = (
    _adopt_intents,
    _suspend,
    _replace_old_revision,
    _watch_current_run,
    _deliver_elsewhere,
    _deliver_and_promote,
    _give_up_failed,
    _leave_canceled,
    _wait_for_upstream,
    _submit,
)


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
