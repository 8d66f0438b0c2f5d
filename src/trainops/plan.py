"""The pure planner of DESIGN §7: what must happen for the providers to match git.

`plan(desired, state, observed, policy, now)` takes values and returns values: no network, no git,
no clock, no environment. Apply performs the actions; everything the plan shows a user (sync,
health, reasons) comes from here, so `plan` and `apply` can never disagree.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from trainops import cost
from trainops.manifest import DEFAULT_PRICES, AnySpec, Job, Policy, output_refs
from trainops.promotion import gate
from trainops.providers.base import Health, Observation
from trainops.state.model import JobState, Run

# Why trainops cancels a run. Runs canceled for these reasons are started again once the reason is
# gone (the job is unsuspended, re-added, or its revision comes back); a run canceled for a budget
# limit, or by someone outside trainops, is not: resubmitting would spend the same money again.
SUSPENDED = "suspended"
REMOVED = "removed from git"
REPLACED = "replaced by revision "
MAX_DURATION = "max_duration exceeded"
MAX_COST = "max_cost_usd exceeded"


class Sync(StrEnum):
    SYNCED = "Synced"
    OUT_OF_SYNC = "OutOfSync"
    INVALID = "Invalid"
    BLOCKED = "Blocked"


class Op(StrEnum):
    ADOPT = "adopt"
    CANCEL = "cancel"
    SUBMIT = "submit"
    DELIVER = "deliver"
    PROMOTE = "promote"


@dataclass(frozen=True)
class Adopt:
    """Find the run an intent created (DESIGN §8), or declare it lost after the grace period."""

    job: str
    revision: str
    attempt: int
    op: Op = field(default=Op.ADOPT, compare=False)


@dataclass(frozen=True)
class Cancel:
    job: str
    run_id: str
    revision: str
    attempt: int
    reason: str
    op: Op = field(default=Op.CANCEL, compare=False)


@dataclass(frozen=True)
class Submit:
    job: str
    revision: str
    attempt: int
    reason: str = "new revision"
    op: Op = field(default=Op.SUBMIT, compare=False)


@dataclass(frozen=True)
class Deliver:
    job: str
    run_id: str
    target: str
    op: Op = field(default=Op.DELIVER, compare=False)


@dataclass(frozen=True)
class Promote:
    """Point one alias of `spec.promote` at run `run_id` ("": leave it where it is) and record
    the gate's verdict on `candidate`, the current revision's succeeded run (DESIGN §19). Apply
    carries it out after the deliveries, and only once the candidate's are done."""

    job: str
    target: str
    run_id: str
    candidate: str
    verdict: str = ""
    op: Op = field(default=Op.PROMOTE, compare=False)


Action = Adopt | Cancel | Submit | Deliver | Promote
_PHASE = {Op.ADOPT: 0, Op.CANCEL: 1, Op.SUBMIT: 2, Op.DELIVER: 3, Op.PROMOTE: 4}


@dataclass(frozen=True)
class Target:
    """A valid job in git and its current revision."""

    job: Job
    revision: str
    # spec.data packaged (DESIGN §18), by input key: their digests are in `revision`
    packages: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def name(self) -> str:
        return self.job.name


@dataclass(frozen=True)
class Desired:
    targets: Mapping[str, Target]
    invalid: frozenset[str] = frozenset()
    complete: bool = True  # every manifest file parsed: only then may a missing job be pruned
    # When each job's manifest last changed in git (commit time): jobs waiting for a concurrency
    # slot are admitted oldest change first. Jobs without one come last, by name.
    changed_at: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Limits:
    """Policy and prices, as the planner needs them."""

    policy: Policy = field(default_factory=Policy)
    prices: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_PRICES))
    # Providers that cannot be used from here now, and why (no credentials, unreachable, a
    # machine that cannot keep a local run): their jobs wait, Blocked with that reason. Not a
    # refusal: the manifests are fine, and no intent or attempt is spent on a call never sent.
    unavailable: Mapping[str, str] = field(default_factory=dict)
    # Providers that stop every run at a timeout trainops sends: the seconds a job without
    # `budget.max_duration` gets there (trainops.yaml), which its worst case is priced at.
    timeouts: Mapping[str, int] = field(default_factory=dict)

    def estimate(self, spec: AnySpec) -> cost.Estimate:
        return cost.estimate(spec, self.prices, self.timeouts.get(spec.provider))

    def timeout(self, spec: AnySpec) -> int | None:
        """How long the provider lets a run of `spec` go, when it enforces a timeout."""
        if spec.provider not in self.timeouts:
            return None
        return spec.budget.max_duration or self.timeouts[spec.provider]


@dataclass(frozen=True)
class JobView:
    """What a user sees for one job: DESIGN §6 sync and health, and why."""

    job: str
    sync: Sync
    health: Health
    reason: str = ""
    revision: str = ""
    run: Run | None = None
    estimate: cost.Estimate | None = None  # worst case of the current revision, when in git
    timeout: int | None = None  # seconds the provider stops a run at (Limits.timeouts)
    refused: bool = False  # Blocked by policy or budget (exit 1), not merely waiting
    spent_usd: float = 0.0  # what this job's runs cost so far, all months


@dataclass(frozen=True)
class Money:
    """The plan's cost summary (DESIGN §4 budget, shown before merge)."""

    month: str
    spent_usd: float  # this month, finished runs and cost so far of running ones
    running_usd: float | None  # worst case still to come from active runs (None: unbounded)
    new_usd: float | None  # worst case of the runs this plan submits (None: unbounded)
    budget_usd: float | None


@dataclass(frozen=True)
class Plan:
    actions: tuple[Action, ...]
    jobs: Mapping[str, JobView]
    money: Money | None = None

    @property
    def changes(self) -> bool:
        return bool(self.actions)


def refresh(
    state: Mapping[str, JobState],
    observed: Mapping[str, Observation],
    prices: Mapping[str, float] | None = None,
) -> dict[str, JobState]:
    """Fold provider observations into the recorded runs (a pure merge)."""
    out = dict(state)
    for name, job_state in state.items():
        for run in job_state.runs:
            if run.run_id is None or run.run_id not in observed:
                continue
            obs = observed[run.run_id]
            updated = replace(
                run,
                health=obs.health,
                started_at=obs.started_at or run.started_at,
                completed_at=obs.completed_at or run.completed_at,
                billed_seconds=obs.billed_seconds
                if obs.billed_seconds is not None
                else run.billed_seconds,
                outputs=dict(obs.outputs) or run.outputs,
                metrics=dict(obs.metrics) or run.metrics,
                error=obs.error or run.error,
                retryable=obs.retryable,
            )
            if prices is not None and updated.billed_seconds is not None:
                updated = replace(updated, cost_usd=cost.run_cost(updated, prices, 0.0))
            if updated != run:
                out[name] = out[name].with_run(updated)
    return out


def plan(
    desired: Desired,
    state: Mapping[str, JobState],
    limits: Limits,
    now: float,
    here: Mapping[str, str] | None = None,
) -> Plan:
    """DESIGN §7, in order, for every job in git or in state. `state` is already refreshed.
    `here` is this reconciler's location per provider whose runs belong to one place (a local
    run's clone): a run recorded elsewhere is Unknown here, and only its own clone adopts,
    cancels or delivers it; here it is never lost, resubmitted or canceled."""
    here = here or {}
    actions: list[Action] = []
    views: dict[str, JobView] = {}
    gate = _Admission(desired, state, limits, now)
    names = set(desired.targets) | set(state) | set(desired.invalid)
    for name in sorted(names, key=lambda n: (desired.changed_at.get(n, float("inf")), n)):
        job_state = state.get(name, JobState(name))
        if job_state.problem:
            # Its state file does not validate (DESIGN §9): whatever it says, act on nothing.
            views[name] = _view(
                name, Sync.INVALID, job_state, None, f"state file invalid: {job_state.problem}"
            )
            continue
        if name in desired.invalid:
            views[name] = _view(
                name,
                Sync.INVALID,
                job_state,
                None,
                "manifest does not validate: its runs are left alone",
            )
            continue
        target = desired.targets.get(name)
        if target is None and job_state.pruned and not any(r.active for r in job_state.runs):
            continue  # removed from git and its end was reported: gone from plan and status
        if target is None:
            job_actions, view = _removed(job_state, desired.complete, limits, here)
        else:
            job_actions, view = _present(target, job_state, desired, state, limits, now, here)
            job_actions, why = _available(target, job_state, job_actions, limits)
            refused = False
            if not why:
                why, refused = gate.admit(target, job_actions)
            if why:
                job_actions = [a for a in job_actions if not isinstance(a, Submit)]
                view = replace(view, sync=Sync.BLOCKED, reason=why, refused=refused)
        spent = sum(cost.run_cost(r, limits.prices, now) for r in job_state.runs if r.run_id)
        if target is None:
            view = replace(view, spent_usd=spent)
        else:
            spec = target.job.spec
            view = replace(
                view, estimate=limits.estimate(spec), timeout=limits.timeout(spec), spent_usd=spent
            )
        if view.run is not None and view.run.active and _elsewhere(view.run, here):
            view = replace(view, health=Health.UNKNOWN)
        actions.extend(job_actions)
        views[name] = view
    actions.sort(key=lambda a: _PHASE[a.op])  # stable: per-job order kept within a phase
    return Plan(tuple(actions), views, gate.money())


class _Admission:
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


def _available(
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


def _removed(
    job_state: JobState, complete: bool, limits: Limits, here: Mapping[str, str]
) -> tuple[list[Action], JobView]:
    active = [r for r in job_state.runs if r.active]
    if not active:
        return [], _view(job_state.job, Sync.SYNCED, job_state, None, REMOVED)
    if not complete:
        return [], _view(
            job_state.job,
            Sync.OUT_OF_SYNC,
            job_state,
            None,
            "not in git, but some manifests did not parse: not pruned",
        )
    if not limits.policy.prune:
        return [], _view(
            job_state.job,
            Sync.OUT_OF_SYNC,
            job_state,
            None,
            "removed from git; prune is off, so its run is left alone",
        )
    away = [r for r in active if _elsewhere(r, here)]
    active = [r for r in active if not _elsewhere(r, here)]
    actions: list[Action] = _adopt(job_state, active)
    actions += [_cancel(job_state.job, r, REMOVED) for r in active if r.run_id]
    why = f"{REMOVED}; {_waiting_for(away[0])}" if away else REMOVED
    return actions, _view(job_state.job, Sync.OUT_OF_SYNC, job_state, None, why)


def _present(
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
    away = [r for r in active if _elsewhere(r, here)]
    intents = [r for r in active if r.is_intent]
    actions: list[Action] = _adopt(job_state, [r for r in intents if r not in away])
    if any(r in away for r in intents):
        run = next(r for r in intents if r in away)
        return actions, _view(
            name, Sync.OUT_OF_SYNC, job_state, revision, f"submitted from {run.where}"
        )
    if intents:
        # Until adoption settles, nothing else may start: the intent may be a live run.
        return actions, _view(
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
        return actions, _view(name, sync, job_state, revision, why, suspended=True)

    old = [r for r in active if r.revision != revision]
    current = [r for r in active if r.revision == revision]
    if old and limits.policy.on_change == "queue":
        return actions, _view(
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
        return actions, _view(
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
            return actions, _view(name, sync, job_state, revision, f"runs on {run.where}")
        reason = _over_limit(run, spec.budget.max_duration, spec.budget.max_cost_usd, limits, now)
        if reason:
            actions.append(_cancel(name, run, reason))
        sync = Sync.OUT_OF_SYNC if actions else Sync.SYNCED
        return actions, _view(name, sync, job_state, revision, reason)

    runs = job_state.of_revision(revision)
    started = [r for r in runs if not r.lost]
    latest = started[-1] if started else None
    failures = sum(1 for r in runs if r.health is Health.FAILED)
    if latest is not None and latest.health is Health.SUCCEEDED and _elsewhere(latest, here):
        undelivered = [t for t in spec.deliver if latest.deliveries.get(t.key) != "done"]
        if undelivered:  # its outputs are files on that machine
            return actions, _view(
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
            else _held(latest)
            if not promotes or any(v.startswith(gate.FAILED) for v in latest.promotions.values())
            else "promoting: " + ", ".join(p.target for p in promotes)
        )
        return actions, _view(name, sync, job_state, revision, why)
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
        return actions, _view(name, Sync.SYNCED, job_state, revision, why)
    if latest is not None and latest.health is Health.CANCELED and not _resubmittable(latest):
        return actions, _view(
            name,
            Sync.SYNCED,
            job_state,
            revision,
            latest.reason
            or "canceled outside trainops: not resubmitted"
            + (f" ({latest.error.splitlines()[0][:200]})" if latest.error else ""),
        )

    blocked = _waiting(target, desired, state)
    if blocked:
        return actions, _view(name, Sync.BLOCKED, job_state, revision, blocked)
    missing = _missing_output(target, desired, state)
    if missing:
        # Nothing to wait for: the upstream run is done and did not produce it. A failure of
        # this job (exit 1), and it goes ahead by itself once an upstream run produces the key.
        view = _view(name, Sync.BLOCKED, job_state, revision, missing)
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
    return actions, _view(name, Sync.OUT_OF_SYNC, job_state, revision, why)


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


def _held(run: Run) -> str:
    """Why an alias did not move to `run` (its failed conditions), for status and plan."""
    held = [f"{k} {v}" for k, v in sorted(run.promotions.items()) if v.startswith(gate.HELD)]
    failed = [f"{k} {v}" for k, v in sorted(run.promotions.items()) if v.startswith(gate.FAILED)]
    return "; ".join(["promotion " + h for h in held] + ["promotion to " + f for f in failed])


def _elsewhere(run: Run, here: Mapping[str, str]) -> bool:
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


def _waiting(target: Target, desired: Desired, state: Mapping[str, JobState]) -> str:
    for upstream in target.job.upstream():
        up = desired.targets.get(upstream)
        if up is None:
            return f"waiting for {upstream}: it is not valid in git"
        runs = state.get(upstream, JobState(upstream)).of_revision(up.revision)
        if not any(r.health is Health.SUCCEEDED for r in runs):
            return f"waiting for {upstream} (revision {up.revision}) to succeed"
    return ""


def upstream_outputs(
    name: str, desired: Desired, state: Mapping[str, JobState]
) -> Mapping[str, str]:
    """What `${{ jobs.NAME.output.KEY }}` resolves against: the outputs of the latest succeeded
    run of NAME's current revision (none when it has not succeeded)."""
    target = desired.targets.get(name)
    for run in reversed(state.get(name, JobState(name)).runs):
        if target and run.revision == target.revision and run.health is Health.SUCCEEDED:
            return run.outputs
    return {}


def _missing_output(target: Target, desired: Desired, state: Mapping[str, JobState]) -> str:
    for upstream, key in output_refs(target.job.spec.input):
        outputs = upstream_outputs(upstream, desired, state)
        if key not in outputs:
            known = ", ".join(sorted(outputs)) or "none"
            return (
                f"jobs.{upstream}.output.{key} does not exist: the run of {upstream} "
                f"produced {known}"
            )
    return ""


def _view(
    job: str,
    sync: Sync,
    job_state: JobState,
    revision: str | None,
    reason: str,
    suspended: bool = False,
) -> JobView:
    runs = job_state.of_revision(revision) if revision else list(job_state.runs)
    run = runs[-1] if runs else None
    if run is None or run.lost:
        # No run: a suspended job is not missing one, it is not meant to have one (DESIGN §6),
        # and an intent lost before it started gives it no age.
        health = Health.MISSING
        if suspended:
            health, run = Health.SUSPENDED, None
    else:
        health = Health.PENDING if run.is_intent else run.health
    return JobView(job, sync, health, reason, revision or "", run)
