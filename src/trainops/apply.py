"""Executes a plan against the providers, with intents, adoption and compare-and-swap (§8).

One pass: read state, observe active runs, refresh, plan, then act in phases — adopt, record
intents (runs to start, and why runs are canceled: a state commit that must win the swap before
any run is started or canceled), cancel, submit, deliver — and write the outcome as one more
state commit. A lost swap before the provider calls means another reconciler is at work: re-read
and re-plan. A lost swap after them merges this pass's run records onto the newer state, never
dropping a run id.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, runtime_checkable

from trainops.errors import (
    OutcomeUnknown,
    Problem,
    ProviderError,
    StateConflict,
    TrainopsError,
)
from trainops.faults import crashpoint
from trainops.fingerprints import Checked, Observer
from trainops.plan import (
    Action,
    Adopt,
    Cancel,
    Deliver,
    Desired,
    Limits,
    Op,
    Plan,
    Promote,
    Submit,
    plan,
    refresh,
)
from trainops.processes import identity, is_alive
from trainops.providers import Providers, check_run
from trainops.providers.base import (
    Adoptable,
    Health,
    Intent,
    Located,
    Observation,
    OutputFolder,
    OutputPrefix,
    Owned,
    Reaper,
    Submission,
    input_hash,
)
from trainops.scrub import scrubber
from trainops.snapshot import resolve_input, snapshot_text, stage_data
from trainops.state.base import StateStore
from trainops.state.model import (
    JobState,
    Run,
    parse_state,
    snapshot_path,
    state_path,
    state_problems,
)
from trainops.state.retention import state_changes
from trainops.workspace import Workspace

MAX_SWAPS = 5
ADOPTION_GRACE_SECONDS = 600.0  # DESIGN §8, unless the provider says otherwise (Adoptable)


@dataclass(frozen=True)
class Outcome:
    """What happened to one action."""

    action: Action
    ok: bool
    detail: str = ""


@dataclass
class Pass:
    """The result of one reconcile pass."""

    plan: Plan
    state: dict[str, JobState]
    outcomes: list[Outcome] = field(default_factory=list)
    version: str = ""
    notes: list[str] = field(default_factory=list)  # what a preview could not see
    # The snapshots a preview read (DESIGN §9: only those a diff needs), by path, so a plan
    # report can diff each job's spec against the snapshot it last submitted. Empty after apply.
    files: Mapping[str, str] = field(default_factory=dict)
    # Per job, each input whose object changed behind its URL since the current revision's run
    # saw it (DESIGN §18): `input drift: KEY changed behind its URL`. Only `preview(drift=True)`.
    drift: Mapping[str, list[str]] = field(default_factory=dict)

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.ok]

    @property
    def problems(self) -> list[Problem]:
        """State files that failed validation (their jobs were left alone)."""
        return state_problems(self.state)


def owner_id() -> str:
    """`host:pid:start-time` of this process, recorded with the intents it writes."""
    return f"{socket.gethostname()}:{os.getpid()}:{identity(os.getpid())}"


def _owner_alive(owner: str) -> bool:
    host, pid, ident = [*owner.split(":"), "", ""][:3]
    if host != socket.gethostname() or not pid.isdigit():
        return False  # another machine: only the grace period can tell
    if int(pid) == os.getpid():
        return False
    return is_alive(int(pid), ident)


class RunReporter(Protocol):
    """Where health changes are reported (GitHub commit statuses and comments, DESIGN §11).

    Each run records the health last reported, so the state branch is the outbox: a report that
    fails is sent by a later apply, and a report is never a reason to hold back provider actions.
    """

    def report(self, job: str, run: Run, log_tail: str) -> bool:
        """Report `run`'s current health; True once delivered. Must be safe to repeat (a crash
        after delivery and before the state write sends it again)."""
        ...


@runtime_checkable
class PromotionReporter(Protocol):
    """Optional, for a `RunReporter`: where a promotion decided after its run was reported (a
    revert moving an alias back, a move retried after a failure) is told, on the commit being
    applied. Must be safe to repeat."""

    def report_promotion(self, job: str, sha: str, lines: list[str]) -> bool:
        """Post `lines` (what each alias did and why) about `job` on commit `sha`."""
        ...


class Reconciler:
    """Drives the providers towards the desired state of one workspace."""

    def __init__(
        self,
        ws: Workspace,
        store: StateStore,
        providers: Providers,
        clock: Callable[[], float] = time.time,
        on_event: Callable[[str], None] | None = None,
        reporter: RunReporter | None = None,
        inputs: Observer | None = None,
    ) -> None:
        self.ws, self.store, self.providers, self.clock = ws, store, providers, clock
        self.inputs = inputs  # remote input fingerprints (DESIGN §18)
        self.desired: Desired = ws.desired()
        self.on_event = on_event or (lambda _msg: None)
        self.reporter = reporter
        # Deliveries that failed in this process: `apply --wait` must not hammer a target that
        # is down on every pass; the next apply retries them.
        self._failed_deliveries: set[tuple[str, str, str]] = set()
        self._failed_promotions: set[tuple[str, str, str]] = set()  # likewise for aliases
        self._repository = ""

    @property
    def repository(self) -> str:
        """This repository's id (`trainops.repoid`): the mark each submission carries, and
        that a recorded run's provider record must carry before it is acted on (DESIGN §9)."""
        if not self._repository:
            from trainops.repoid import repository_id

            self._repository = repository_id(self.ws.root)
        return self._repository

    def intent_of(self, job: str, run: Run, taken: frozenset[str] = frozenset()) -> Intent:
        """What `run`'s record claims it was submitted as: the marks its provider record must
        carry (`Owned.owns`), and what adoption looks for."""
        return Intent(
            job,
            run.revision,
            run.attempt,
            run.input_hash,
            run.created_at,
            run.provider,
            run.trainer,
            run.destination,
            taken,
            self.repository,
        )

    # ---- reading -------------------------------------------------------------------------

    def limits(self, unreachable: Mapping[str, str] | None = None) -> Limits:
        """Policy and prices, and which providers the desired jobs cannot use from here now:
        their own offline check (credentials, machine), plus those found `unreachable`."""
        used = {t.job.spec.provider for t in self.desired.targets.values()}
        unavailable = {**(unreachable or {}), **self.providers.unavailable(used)}
        return replace(self.ws.limits(), unavailable=unavailable)

    def here(self, state: Mapping[str, JobState]) -> dict[str, str]:
        """This reconciler's location for each provider whose recorded runs belong to one place
        (`Located`: a local run's clone). Read-only."""
        here: dict[str, str] = {}
        for name in sorted({r.provider for s in state.values() for r in s.runs if r.location}):
            try:
                provider = self.providers[name]
            except (KeyError, TrainopsError):
                continue  # no such provider here: none of its runs can be this reconciler's
            if isinstance(provider, Located):
                here[name] = provider.location()
        return here

    def observe(
        self,
        state: Mapping[str, JobState],
        notes: list[str] | None = None,
        here: Mapping[str, str] | None = None,
        reap: bool = False,
        unreachable: dict[str, str] | None = None,
        foreign: dict[str, str] | None = None,
    ) -> dict[str, Observation]:
        """Ask each provider, in one batch, about every active run that has a run id and lives
        where this reconciler can see it (`here`: a run of another clone is not asked about,
        and stays as recorded). Terminal runs are never polled again. With `reap` (apply only),
        providers that record vanished runs themselves (`Reaper`) do so first. With `notes`, a
        provider that cannot be asked (no token on a fork's pull request) is skipped and noted
        instead of failing, and added to `unreachable` with the reason. A run whose provider
        record is not the run its state record claims (`Owned`) is left out of the answer and
        its job named in `foreign` (job -> why): see `left_alone`."""
        here = self.here(state) if here is None else here
        claims: dict[str, dict[str, tuple[str, Run]]] = {}
        # run id -> when it was recorded: a provider that pages a shared list (Replicate) judges
        # from it how far back its asked runs reach; others read it as the ids it is.
        by_provider: dict[str, dict[str, float]] = {}
        for job_state in state.values():
            for run in job_state.runs:
                if not (run.run_id and run.health.active):
                    continue
                if run.location and here.get(run.provider) != run.location:
                    continue  # another clone's or machine's run: Unknown here (DESIGN §6)
                by_provider.setdefault(run.provider, {})[run.run_id] = run.created_at
                claims.setdefault(run.provider, {})[run.run_id] = (job_state.job, run)
        observed: dict[str, Observation] = {}
        clean = scrubber()
        for name, ids in sorted(by_provider.items()):
            try:
                provider = self.providers[name]
                if reap and isinstance(provider, Reaper):
                    provider.reap(list(ids))
                found = provider.observe(ids)
            except TrainopsError as exc:
                if notes is None:
                    raise
                notes.append(
                    f"{name}: showing recorded state, could not observe "
                    f"{len(ids)} run(s): {exc.message}"
                )
                if unreachable is not None:
                    unreachable[name] = f"{name} cannot be reached: {exc.message}"
                continue
            found = self._judge(provider, claims[name], found, foreign)
            # A run's error is its job's or provider's text: scrubbed here, before anything
            # shortens it (a secret cut in half would no longer be recognised).
            observed.update({k: replace(o, error=clean(o.error)) for k, o in found.items()})
            for run_id in ids:
                if run_id not in found and not _named(foreign, claims[name][run_id][0]):
                    observed[run_id] = Observation(
                        run_id, Health.FAILED, error="the provider no longer knows this run"
                    )
        return observed

    def _judge(
        self,
        provider: Any,
        claims: Mapping[str, tuple[str, Run]],
        found: Mapping[str, Observation],
        foreign: dict[str, str] | None,
    ) -> dict[str, Observation]:
        """The one place ownership is decided (DESIGN §9): each answer of an `Owned` provider
        is judged against the state record that named its run; one that is not that record's
        run is dropped, and its job named in `foreign` with why."""
        if not isinstance(provider, Owned):
            return dict(found)
        kept: dict[str, Observation] = {}
        for run_id, seen in found.items():
            if run_id not in claims:
                continue  # not asked about: nothing of ours says what it should be
            job, run = claims[run_id]
            why = provider.owns(self.intent_of(job, run), seen)
            if not why:
                kept[run_id] = seen
            elif foreign is not None:
                foreign.setdefault(job, f"run {run_id} is not this job's run: left alone ({why})")
            else:
                raise ProviderError(f"{job}: run {run_id} is not this job's run ({why})")
        return kept

    def confirm(self, runs: Collection[tuple[str, Run]], foreign: dict[str, str]) -> dict[str, str]:
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
                provider = self.providers[name]
                if not isinstance(provider, Owned):
                    continue
                found = self._judge(provider, asked, provider.observe(list(asked)), foreign)
            except TrainopsError as exc:
                for run_id in asked:
                    unproven[run_id] = f"could not ask {name} whose run it is: {exc.message}"
                continue
            for run_id, (job, _run) in asked.items():
                if run_id not in found and not _named(foreign, job):
                    unproven[run_id] = (
                        f"{name} has no record of run {run_id} to prove it is {job}'s (DESIGN §9)"
                    )
        return unproven

    def preview(self, drift: bool = False) -> Pass:
        """Plan without acting (`trainops plan`, `status`); with `drift` (plan), the remote
        inputs of each job's current run are observed again and compared."""
        version, recorded = self._read()
        notes: list[str] = []
        here = self.here(recorded)
        unreachable: dict[str, str] = {}
        foreign: dict[str, str] = {}
        observed = self.observe(recorded, notes, here, unreachable=unreachable, foreign=foreign)
        recorded = left_alone(recorded, foreign)
        state = refresh(recorded, observed, self.ws.config.prices_usd_per_second)
        the_plan = plan(self.desired, state, self.limits(unreachable), self.clock(), here)
        submitting = {a.job for a in the_plan.actions if a.op is Op.SUBMIT}
        return Pass(
            the_plan,
            state,
            version=version,
            notes=notes,
            files=self._snapshots_to_diff(recorded, version, submitting),
            drift=self._drift(state, notes) if drift else {},
        )

    def _drift(self, state: Mapping[str, JobState], notes: list[str]) -> dict[str, list[str]]:
        """Input drift (DESIGN §18): for each job whose current revision has a run that recorded
        fingerprints, the same URLs observed again in one batch; a changed fingerprint is drift
        (nothing retrains by itself: `rerun` or a `spec.digests` pin decides), a URL that cannot
        be observed now is a note."""
        from trainops.fingerprints import Observer, drifted, remote_inputs

        asked: dict[str, list[tuple[str, str, str]]] = {}
        for name, target in sorted(self.desired.targets.items()):
            job_state = state.get(name, JobState(name))
            runs = [
                r for r in job_state.of_revision(target.revision) if r.fingerprints and r.run_id
            ]
            if not runs or job_state.problem:
                continue
            try:
                current = remote_inputs(resolve_input(target.job, state, self.desired))
            except TrainopsError:
                continue
            asked[name] = [
                (key, current[key], recorded)
                for key, recorded in sorted(runs[-1].fingerprints.items())
                if key in current
            ]
        if not any(asked.values()):
            return {}
        if self.inputs is None:
            self.inputs = Observer(mode="named")
        seen = self.inputs.observe({url for items in asked.values() for _, url, _ in items})
        found: dict[str, list[str]] = {}
        for name, items in asked.items():
            for key, url, recorded in items:
                got = seen[url]
                if drifted(recorded, url, got.fingerprint):
                    found.setdefault(name, []).append(f"input drift: {key} changed behind its URL")
                elif not got.fingerprint and got.note and not got.skipped:
                    notes.append(f"{name}: input {key} not checked for drift: {got.note}")
        return found

    def _read(self) -> tuple[str, dict[str, JobState]]:
        """The state version and every job's validated record. The files' text is not kept
        beyond parsing (a pass over 30,000 jobs would hold every state file twice)."""
        snap = self.store.load()
        return snap.version, parse_state(snap.files, check_run, snap.unreadable)

    def _snapshots_to_diff(
        self, recorded: Mapping[str, JobState], version: str, submitting: Collection[str] = ()
    ) -> dict[str, str]:
        """The snapshots a plan report diffs against (DESIGN §9: read only when a diff needs
        one): each job's latest submitted one, for a job whose revision in git differs, that is
        about to be submitted, or that passes variables (`spec.env`: the reviewer sees which
        credentials it gets, DESIGN §13, even when the revision stays)."""
        wanted = []
        for name, target in self.desired.targets.items():
            runs = [r for r in recorded.get(name, JobState(name)).runs if r.snapshot]
            if runs and (
                runs[-1].revision != target.revision
                or name in submitting
                or getattr(target.job.spec, "env", None)
            ):
                wanted.append(runs[-1].snapshot)
        return self.store.read(version, wanted) if wanted else {}

    # ---- acting --------------------------------------------------------------------------

    def apply(self) -> Pass:
        """One reconcile pass. Raises `StateConflict` only after `MAX_SWAPS` lost swaps."""
        for _ in range(MAX_SWAPS):
            version, recorded = self._read()
            here = self.here(recorded)
            foreign: dict[str, str] = {}
            observed = self.observe(recorded, here=here, reap=True, foreign=foreign)
            recorded = left_alone(recorded, foreign)
            state = refresh(recorded, observed, self.ws.config.prices_usd_per_second)
            crashpoint("after-observe")
            the_plan = plan(self.desired, state, self.limits(), self.clock(), here)
            # Runs an action would touch that this pass did not observe (a terminal run's
            # delivery or promotion) are proven this job's first, in one batch.
            acted = _acted_on(the_plan, state, observed)
            unproven = self.confirm(acted, foreign) if acted else {}
            if foreign.keys() - {n for n, s in recorded.items() if s.problem}:
                recorded = left_alone(recorded, foreign)
                state = left_alone(state, foreign)
                the_plan = plan(self.desired, state, self.limits(), self.clock(), here)
            skipped = [a for a in the_plan.actions if getattr(a, "run_id", "") in unproven]
            if skipped:
                the_plan = replace(
                    the_plan, actions=tuple(a for a in the_plan.actions if a not in skipped)
                )
            result = Pass(the_plan, state, version=version)
            result.outcomes += [
                Outcome(a, False, unproven[getattr(a, "run_id", "")]) for a in skipped
            ]
            try:
                self._execute(result, recorded)
            except StateConflict:
                self.on_event("state moved while planning; re-reading and planning again")
                continue
            return result
        raise StateConflict(
            "state kept moving under this apply (another reconciler is busy)",
            "run apply again in a moment",
        )

    def _execute(self, result: Pass, recorded: Mapping[str, JobState]) -> None:
        state = result.state
        now = self.clock()
        for action in result.plan.actions:
            if isinstance(action, Adopt):
                state[action.job] = self._adopt(state[action.job], action, now, result)

        cancels = [a for a in result.plan.actions if isinstance(a, Cancel)]
        submits = [a for a in result.plan.actions if isinstance(a, Submit)]
        inputs: dict[str, dict[str, Any]] = {}
        if cancels or submits:
            # §8 step 1: the intents must win the swap before any provider is called. Why a run
            # is canceled is recorded with them: lost in a crash after the cancel, it would look
            # like a cancel made outside trainops, and the job would never be started again.
            for action in cancels:
                state[action.job] = _with_reason(state[action.job], action)
            inputs, snapshots = self._intents(submits, state, now, result)
            changes = state_changes(_changed(state, recorded), recorded, result.version)
            changes.update(snapshots)
            result.version = self.store.save(
                result.version, changes, _message("record intents", [*cancels, *submits])
            )
            crashpoint("after-intents")
            recorded = dict(state)
        for action in cancels:
            state[action.job] = self._cancel(state[action.job], action, result)
            crashpoint("after-cancel")
        for action in submits:
            if action.job in inputs:
                state[action.job] = self._submit(
                    state[action.job], action, inputs[action.job], result
                )
                crashpoint("after-submit")

        for action in result.plan.actions:
            if isinstance(action, Deliver) and (
                (action.job, action.run_id, action.target) not in self._failed_deliveries
            ):
                state[action.job] = self._deliver(state[action.job], action, result)
                crashpoint("after-deliver")

        for action in result.plan.actions:
            if isinstance(action, Promote) and (
                (action.job, action.candidate, action.target) not in self._failed_promotions
            ):
                state[action.job] = self._promote(state[action.job], action, result)
                crashpoint("after-promote")

        if self.reporter is not None:
            told = {
                (name, r.run_id)
                for name, s in state.items()
                for r in s.runs
                if r.run_id and r.reported == r.health.value
            }
            self._report(state, result)
            self._report_promotions(state, result, told)
        self._mark_pruned(state)

        updates = _changed(state, recorded)
        if updates:
            done = [o.action for o in result.outcomes]
            message = _message("reconcile", done, refreshed=len(updates))
            self._save_merging(result, updates, recorded, message)
            crashpoint("after-save")

    def _save_merging(
        self,
        result: Pass,
        updates: Mapping[str, JobState],
        recorded: Mapping[str, JobState],
        message: str,
    ) -> None:
        """Write run records; after provider calls a lost swap must not lose a run id, so
        this pass's runs are merged onto the newer state and written again."""
        changes = state_changes(updates, recorded, result.version)
        for _ in range(MAX_SWAPS * 4):
            try:
                result.version = self.store.save(result.version, changes, message)
                return
            except StateConflict:
                result.version, newer = self._read()
                merged_updates: dict[str, JobState] = {}
                for name, ours in updates.items():
                    merged = newer.get(name, JobState(name))
                    for run in ours.runs:
                        theirs = next(
                            (
                                r
                                for r in merged.runs
                                if (r.revision, r.attempt) == (run.revision, run.attempt)
                            ),
                            None,
                        )
                        merged = merged.with_run(_newest(run, theirs))
                    merged_updates[name] = merged
                changes = state_changes(merged_updates, newer, result.version)
        raise StateConflict(
            "could not record this apply's runs: state keeps moving",
            "run apply again; the runs started are adopted, never duplicated",
        )

    def _mark_pruned(self, state: dict[str, JobState]) -> None:
        """A job removed from git leaves plan and status once its runs have ended and (with a
        reporter) their end was reported; one back in git is shown again."""
        for name, job_state in state.items():
            if job_state.problem:
                continue  # an invalid state file is never rewritten (DESIGN §9)
            if name in self.desired.targets or name in self.desired.invalid:
                if job_state.pruned:
                    state[name] = replace(job_state, pruned=False)
                continue
            if job_state.pruned or not self.desired.complete:
                continue
            if any(r.active for r in job_state.runs):
                continue
            if self.reporter is not None and _unreported(job_state):
                continue
            state[name] = replace(job_state, pruned=True)

    def _adopt(self, job_state: JobState, action: Adopt, now: float, result: Pass) -> JobState:
        run = next(
            r
            for r in job_state.runs
            if (r.revision, r.attempt) == (action.revision, action.attempt)
        )
        provider = self.providers[run.provider]
        # A search by input and time also sees the runs already bound (an earlier attempt that
        # failed seconds before this intent, a job with the same input): never adopt those.
        taken = frozenset(r.run_id for s in result.state.values() for r in s.runs if r.run_id)
        intent = self.intent_of(action.job, run, taken)
        try:
            ref = provider.find(intent)
        except ProviderError as exc:
            result.outcomes.append(Outcome(action, False, str(exc)))
            return job_state
        if ref is not None:
            result.outcomes.append(Outcome(action, True, f"adopted run {ref.run_id}"))
            return job_state.with_run(replace(run, run_id=ref.run_id, health=Health.PENDING))
        grace = (
            provider.adoption_grace if isinstance(provider, Adoptable) else ADOPTION_GRACE_SECONDS
        )
        if _owner_alive(run.owner) or now - run.created_at < grace:
            result.outcomes.append(Outcome(action, True, "run not visible yet; will look again"))
            return job_state
        result.outcomes.append(Outcome(action, True, "no run was created: intent lost"))
        return job_state.with_run(
            replace(run, lost=True, error="submission never reached the provider")
        )

    def _cancel(self, job_state: JobState, action: Cancel, result: Pass) -> JobState:
        run = next(r for r in job_state.runs if r.run_id == action.run_id)
        try:
            self.providers[run.provider].cancel(action.run_id)
        except ProviderError as exc:
            result.outcomes.append(Outcome(action, False, str(exc)))
            return job_state
        result.outcomes.append(Outcome(action, True, action.reason))
        self.on_event(f"{action.job}: canceled run {action.run_id} ({action.reason})")
        return _with_reason(job_state, action)

    def _intents(
        self, submits: list[Submit], state: dict[str, JobState], now: float, result: Pass
    ) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
        """Record an intent run in `state` for each submit; return the resolved inputs and
        the snapshot files to commit with them."""
        inputs: dict[str, dict[str, Any]] = {}
        snapshots: dict[str, str] = {}
        resolved_inputs: dict[str, dict[str, Any]] = {}
        for action in submits:
            try:
                job = self.desired.targets[action.job].job
                resolved_inputs[action.job] = resolve_input(job, state, self.desired)
            except TrainopsError as exc:
                result.outcomes.append(Outcome(action, False, str(exc)))
        checked = self._check_inputs(resolved_inputs)
        for action in submits:
            if action.job not in resolved_inputs:
                continue
            target = self.desired.targets[action.job]
            job = target.job
            resolved = resolved_inputs[action.job]
            remote = checked[action.job]
            for note in remote.notes:
                self.on_event(f"{action.job}: {scrubber()(note)}")
            if remote.refused:  # a pin that does not hold: no intent, no upload, no run
                result.outcomes.append(Outcome(action, False, remote.refused))
                continue
            spec = job.spec
            try:
                provider = self.providers[spec.provider]
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
                source_commit=self.ws.commit,
                trainer=self.ws.trainer(spec) or "",
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
                job, action.revision, resolved, run, tree=self.ws.tree
            )
            inputs[action.job] = resolved
        return inputs, snapshots

    def _check_inputs(self, resolved: Mapping[str, Mapping[str, Any]]) -> dict[str, Checked]:
        """What stands behind each remote URL of the inputs about to be submitted, observed in
        one batch just before their intents (DESIGN §18), and each `spec.digests` pin checked."""
        from trainops.fingerprints import Observer, check_inputs

        if self.inputs is None:
            # Embedded without an observer: only the hosts the environment names are asked.
            self.inputs = Observer(mode="named")
        targets = self.desired.targets
        return check_inputs(
            self.inputs,
            resolved,
            {job: targets[job].job.spec.digests for job in resolved},
            {job: {k: p.digest for k, p in targets[job].packages.items()} for job in resolved},
        )

    def _submit(
        self, job_state: JobState, action: Submit, resolved: dict[str, Any], result: Pass
    ) -> JobState:
        run = next(
            r
            for r in job_state.runs
            if (r.revision, r.attempt) == (action.revision, action.attempt)
        )
        job = self.desired.targets[action.job].job
        packages = self.desired.targets[action.job].packages
        try:
            provider = self.providers[run.provider]
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
                self.repository,
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
        self.on_event(
            f"{action.job}: submitted revision {action.revision} "
            f"attempt {action.attempt} as run {ref.run_id}"
        )
        return job_state.with_run(replace(run, run_id=ref.run_id))

    def _report(self, state: dict[str, JobState], result: Pass) -> None:
        """Deliver every unreported health change (the outbox): each job's latest run, and any
        older run that was reported before (a replaced run must not stay pending for good)."""
        assert self.reporter is not None
        for name in sorted(state):
            runs = [r for r in state[name].runs if r.run_id]
            for i, run in enumerate(runs):
                latest = i == len(runs) - 1
                if run.reported == run.health.value or not (latest or run.reported):
                    continue
                if not self._report_one(name, run, state):
                    return  # the reporting side is down: stop for this pass, keep the rest

    def _report_one(self, name: str, run: Run, state: dict[str, JobState]) -> bool:
        assert self.reporter is not None and run.run_id
        tail = ""
        if run.health.terminal:
            try:
                tail = self.providers[run.provider].logs(run.run_id, 20)
            except TrainopsError:
                tail = ""
        try:
            delivered = self.reporter.report(name, run, tail)
        except TrainopsError as exc:
            self.on_event(f"reports not delivered ({exc.message}); the next apply sends them")
            return False
        if delivered:
            state[name] = state[name].with_run(replace(run, reported=run.health.value))
        return True

    def _deliver(self, job_state: JobState, action: Deliver, result: Pass) -> JobState:
        """Copy a succeeded run's outputs to one target. Targets check what they already hold,
        so a retry after a partial failure writes only what is missing."""
        from trainops.delivery import deliver

        run = next(r for r in job_state.runs if r.run_id == action.run_id)
        spec = self.desired.targets[action.job].job.spec
        target = next(t for t in spec.deliver if t.key == action.target)
        provider = self.providers[run.provider]
        folder = provider.output_dir(action.run_id) if isinstance(provider, OutputFolder) else None
        prefix = (
            provider.output_prefix(action.run_id) if isinstance(provider, OutputPrefix) else None
        )
        try:
            digests: dict[str, str] = {}
            where: dict[str, str] = {}
            summary = deliver(target, action.job, run, folder, digests, prefix, where)
        except TrainopsError as exc:
            result.outcomes.append(Outcome(action, False, exc.message))
            self._failed_deliveries.add((action.job, action.run_id, action.target))
            status = f"failed: {exc.message}"[:500]
        else:
            result.outcomes.append(Outcome(action, True, summary))
            self.on_event(f"{action.job}: delivered to {action.target} ({summary})")
            status = "done"
            run = replace(
                run, digests={**run.digests, **digests}, delivered={**run.delivered, **where}
            )
        deliveries = {**run.deliveries, action.target: status}
        return job_state.with_run(replace(run, deliveries=deliveries))

    def _report_promotions(
        self, state: dict[str, JobState], result: Pass, told: set[tuple[str, str]]
    ) -> None:
        """Promotions this pass carried out whose run's commit comment was posted before (or
        belongs to another commit than the one applied: a revert) are told on the applied
        commit; the others are in the run's own comment, posted just now."""
        if not isinstance(self.reporter, PromotionReporter):
            return
        by_job: dict[str, list[str]] = {}
        for outcome in result.outcomes:
            action = outcome.action
            if not (isinstance(action, Promote) and outcome.ok) or "waiting" in outcome.detail:
                continue
            run = next((r for r in state[action.job].runs if r.run_id == action.candidate), None)
            if run is None:
                continue
            if (action.job, action.candidate) not in told and run.source_commit == self.ws.commit:
                continue
            by_job.setdefault(action.job, []).append(f"{action.target}: {outcome.detail}")
        for job, lines in sorted(by_job.items()):
            try:
                self.reporter.report_promotion(job, self.ws.commit, lines)
            except TrainopsError as exc:
                self.on_event(f"promotion of {job} not reported ({exc.message})")
                return

    def _promote(self, job_state: JobState, action: Promote, result: Pass) -> JobState:
        """Carry out one alias decision (promotion.gate): once the candidate's deliveries are
        done (this pass may just have made them), point the alias at the holder — the target is
        read first, so a repeat moves nothing — then record the verdict on the candidate,
        `done` on the holder and `superseded` on the run the alias left."""
        from trainops.promotion import gate
        from trainops.promotion.targets import PromotionError, move

        spec = self.desired.targets[action.job].job.spec
        target = next(
            t for t in (spec.promote.to if spec.promote else ()) if t.key == action.target
        )
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
                summary = move(target, spec, action.job, holder, self.providers[holder.provider])
            except (PromotionError, TrainopsError) as exc:
                result.outcomes.append(Outcome(action, False, exc.message))
                self._failed_promotions.add((action.job, action.candidate, action.target))
                status = f"{gate.FAILED}{exc.message}"[:500]
                promotions = {**candidate.promotions, target.key: status}
                return job_state.with_run(replace(candidate, promotions=promotions))
            self.on_event(f"{action.job}: {summary}")
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


def _unreported(job_state: JobState) -> bool:
    """Some run's health is still in the outbox (the rule `_report` sends by)."""
    runs = [r for r in job_state.runs if r.run_id]
    return any(
        r.reported != r.health.value and (i == len(runs) - 1 or r.reported)
        for i, r in enumerate(runs)
    )


def _changed(
    state: Mapping[str, JobState], recorded: Mapping[str, JobState]
) -> dict[str, JobState]:
    """The records to write: an invalid one never is (DESIGN §9)."""
    return {name: s for name, s in state.items() if s != recorded.get(name) and not s.problem}


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


def _named(foreign: Mapping[str, str] | None, job: str) -> bool:
    return foreign is not None and job in foreign


def _acted_on(
    the_plan: Plan, state: Mapping[str, JobState], observed: Mapping[str, Observation]
) -> list[tuple[str, Run]]:
    """The recorded runs a delivery or promotion of `the_plan` acts on that were not observed
    (and so not judged) in this pass."""
    ids: dict[str, set[str]] = {}
    for action in the_plan.actions:
        if isinstance(action, Deliver | Promote):
            named = {action.run_id, getattr(action, "candidate", "")} - {""}
            ids.setdefault(action.job, set()).update(named - observed.keys())
    return [
        (job, run)
        for job, wanted in sorted(ids.items())
        for run in state[job].runs
        if run.run_id in wanted
    ]


def _with_reason(job_state: JobState, action: Cancel) -> JobState:
    run = next(r for r in job_state.runs if r.run_id == action.run_id)
    return job_state.with_run(replace(run, reason=action.reason))


def _newest(ours: Run, theirs: Run | None) -> Run:
    """Merge two records of one run: a run id is never dropped, a terminal health wins, and
    why trainops canceled it is kept whichever record says so."""
    if theirs is None:
        return ours
    if bool(ours.run_id) != bool(theirs.run_id):
        theirs_wins = bool(theirs.run_id)
    else:
        theirs_wins = theirs.health.terminal and not ours.health.terminal
    chosen, other = (theirs, ours) if theirs_wins else (ours, theirs)
    if not chosen.reason and other.reason:
        return replace(chosen, reason=other.reason)
    return chosen


def _message(title: str, actions: list[Any], refreshed: int = 0) -> str:
    lines = [f"trainops: {title}", ""]
    for action in actions:
        lines.append(f"- {describe(action)}")
    if not actions:
        lines.append(f"- refreshed {refreshed} job(s)")
    return "\n".join(lines) + "\n"


def describe(action: Action) -> str:
    if isinstance(action, Submit):
        return (
            f"submit {action.job} revision {action.revision} attempt {action.attempt} "
            f"({action.reason})"
        )
    if isinstance(action, Cancel):
        return f"cancel {action.job} run {action.run_id} ({action.reason})"
    if isinstance(action, Adopt):
        return f"adopt {action.job} revision {action.revision} attempt {action.attempt}"
    if isinstance(action, Promote):
        to = f"run {action.run_id}" if action.run_id else "nothing (held)"
        return f"promote {action.job} {action.target} to {to}"
    return f"deliver {action.job} run {action.run_id} to {action.target}"


__all__ = ["Outcome", "Pass", "Reconciler", "RunReporter", "describe"]
