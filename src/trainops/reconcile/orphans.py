"""Runs nobody declared (DESIGN §20, `status --all`, `adopt`): the runs a provider lists that
carry one of this repository's jobs' ownership marks (§9) but that no state file knows
(**orphaned**: a state branch reset, a crash before the run id was recorded, past the adoption
grace), and those going to one of our destinations without them (**foreign**).

Inputs: the `Context` (desired jobs, providers, prices), the state as read, `now`. Outputs: a
`Census`; `probe` is what a job's current revision would be submitted as (its marks).
Read-only: nothing here cancels, binds or writes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from trainops.cost import price
from trainops.errors import InvalidInput, Problem, TrainopsError
from trainops.providers.base import Attempted, Intent, Listable, Listed, input_hash
from trainops.reconcile.context import Context
from trainops.reconcile.snapshot import resolve_input
from trainops.state.model import Health, JobState, Run

# How many runs `status --all` reads per provider at most: list calls are 100 runs a page on
# Replicate, so 200 calls cover 20,000 runs (the count is printed when it falls short).
MAX_LIST_CALLS = 200


@dataclass(frozen=True)
class Stray:
    """One run nobody declared."""

    provider: str
    kind: str  # "orphaned" | "foreign"
    job: str  # whose marks it carries (orphaned) or whose destination it goes to (foreign)
    run_id: str
    health: Health
    created_at: float
    cost_usd: float

    def age(self, now: float) -> float:
        return max(0.0, now - self.created_at)


@dataclass
class Census:
    strays: list[Stray] = field(default_factory=list)
    not_listable: list[str] = field(default_factory=list)
    calls: dict[str, int] = field(default_factory=dict)  # list requests per provider
    incomplete: list[str] = field(default_factory=list)  # providers whose budget ran out
    notes: list[str] = field(default_factory=list)  # `<provider>: what its listing says`

    @property
    def orphaned(self) -> list[Stray]:
        return [s for s in self.strays if s.kind == "orphaned"]


def list_bound(runs: int, page: int = 100) -> int:
    """The list calls `runs` runs cost at `page` a page (the benchmark's bound)."""
    return max(1, math.ceil(runs / page))


def probe(ctx: Context, job: str, state: Mapping[str, JobState]) -> Intent | None:
    """The marks `job`'s current revision is submitted with (created at 0: any time), or None
    when its input does not resolve yet (an upstream output not recorded)."""
    target = ctx.desired.targets.get(job)
    if target is None:
        return None
    spec = target.job.spec
    try:
        resolved = resolve_input(target.job, state, ctx.desired)
    except TrainopsError:
        return None
    return Intent(
        job,
        target.revision,
        0,
        input_hash(resolved),
        0.0,
        spec.provider,
        ctx.ws.trainer(spec) or "",
        # Where its output goes: Replicate's destination model, a Hugging Face output repo.
        getattr(spec, "destination", "") or getattr(spec, "output_repo", "") or "",
        repository=ctx.repository,
    )


def census(
    ctx: Context, state: Mapping[str, JobState], now: float, max_calls: int = MAX_LIST_CALLS
) -> Census:
    """Every run nobody declared on each provider this repository's jobs use."""
    known = {r.run_id for s in state.values() for r in s.runs if r.run_id}
    waiting = {n for n, s in state.items() if any(r.run_id is None and not r.lost for r in s.runs)}
    by_provider: dict[str, list[Intent]] = {}
    for name, target in sorted(ctx.desired.targets.items()):
        found = probe(ctx, name, state)
        if found is not None:
            by_provider.setdefault(target.job.spec.provider, []).append(found)
        else:
            by_provider.setdefault(target.job.spec.provider, [])
    out = Census()
    prices = ctx.ws.config.prices_usd_per_second
    for name, probes in sorted(by_provider.items()):
        provider = ctx.providers[name]
        if not isinstance(provider, Listable):
            out.not_listable.append(name)
            continue
        listing = provider.list_runs(probes, max_calls)
        out.calls[name] = listing.calls
        if not listing.complete:
            out.incomplete.append(name)
        out.notes += [f"{name}: {note}" for note in listing.notes]
        grace = float(getattr(provider, "adoption_grace", 600.0))
        hardware = {t.name: t.job.spec.hardware or "" for t in ctx.desired.targets.values()}
        for listed in listing.runs:
            if listed.seen.run_id in known:
                continue
            if not listed.foreign and (listed.job in waiting or now - listed.created_at < grace):
                continue  # adoption may yet bind it to the intent that made it (§8)
            out.strays.append(_stray(name, listed, hardware, prices, now))
    return out


def _stray(
    provider: str,
    listed: Listed,
    hardware: Mapping[str, str],
    prices: Mapping[str, float],
    now: float,
) -> Stray:
    seen = listed.seen
    per_second = price(prices, listed.hardware or hardware.get(listed.job) or None, provider)
    if seen.billed_seconds is not None:
        spent = seen.billed_seconds
    elif seen.health.active and seen.started_at is not None:
        spent = max(0.0, now - seen.started_at)
    else:
        spent = 0.0
    return Stray(
        provider,
        "foreign" if listed.foreign else "orphaned",
        listed.job,
        seen.run_id,
        seen.health,
        listed.created_at,
        spent * (per_second or 0.0),
    )


def refused(message: str, hint: str) -> InvalidInput:
    return InvalidInput([Problem("adopt", 0, 0, message, hint)])


def adopt(ctx: Context, job: str, run_id: str, now: float) -> Run:
    """Bind the orphaned run `run_id` to `job`'s current revision (DESIGN §20), under the
    attempt its provider record names (`Attempted`) or as a new one: only when the
    provider's own record of it carries the job's marks (`Listable.claims`; never the state
    file's word) and no state file records it already, through the state compare-and-swap
    (a lost swap is `StateConflict`). Returns the run as recorded."""
    from trainops.plan.refresh import refresh
    from trainops.reconcile.read import read_state
    from trainops.reconcile.record import message
    from trainops.state.retention import state_changes

    version, state = read_state(ctx)
    target = ctx.desired.targets.get(job)
    if target is None:
        raise refused(f"no job named {job!r} in this repository", "see `trainops status`")
    marks = probe(ctx, job, state)
    if marks is None:
        raise refused(
            f"{job}: its input does not resolve yet, so the run's marks cannot be checked",
            "apply its upstream jobs first",
        )
    for name, recorded in sorted(state.items()):
        if any(r.run_id == run_id for r in recorded.runs):
            raise refused(f"run {run_id} is already recorded for job {name!r}", "nothing to adopt")
    if state.get(job) is not None and state[job].problem:
        raise refused(f"{job}: its state file does not validate: {state[job].problem}", "")
    provider = ctx.providers[marks.provider]
    if not isinstance(provider, Listable):
        raise refused(
            f"{marks.provider} is not listable: trainops cannot check a run's marks there",
            "",
        )
    seen = provider.observe([run_id]).get(run_id)
    if seen is None:
        raise refused(
            f"{marks.provider} has no run {run_id}",
            "only an orphaned run of `trainops status --all` can be adopted",
        )
    why = provider.claims(marks, seen)
    if why:
        raise refused(
            f"run {run_id} is not this repository's run of {job}: {why}",
            "only an orphaned run (`trainops status --all`) can be adopted",
        )
    current = state.get(job) or JobState(job)
    attempts = [r.attempt for r in current.runs if r.revision == target.revision]
    named = provider.attempt_of(seen) if isinstance(provider, Attempted) else None
    if named is not None and named in attempts:
        raise refused(
            f"run {run_id} is attempt {named} of {job}'s revision {target.revision}, "
            "which its state file records with another run",
            "nothing to adopt",
        )
    spec = target.job.spec
    bound = Run(
        revision=target.revision,
        attempt=named if named is not None else max(attempts, default=0) + 1,
        provider=marks.provider,
        input_hash=marks.input_hash,
        created_at=seen.created_at or seen.started_at or now,
        source_commit=ctx.ws.commit,
        run_id=run_id,
        trainer=marks.trainer,
        destination=getattr(spec, "destination", "") or "",  # as an intent records it
        hardware=spec.hardware or "",
        instances=getattr(spec, "instance_count", 1) or 1,
        labels=dict(target.job.manifest.metadata.labels),
    )
    # What the provider says of it is folded in as apply folds an observation (health, times,
    # billed seconds and cost, outputs, metrics, error): one rule for what a run records.
    prices = ctx.ws.config.prices_usd_per_second
    refreshed = refresh({job: JobState(job).with_run(bound)}, {run_id: seen}, prices)
    run = next(r for r in refreshed[job].runs if r.run_id == run_id)
    updated = {job: current.with_run(run)}
    changes = state_changes(updated, state, version)
    ctx.store.save(version, changes, message(f"adopt {run_id} for {job}", []))
    return run
