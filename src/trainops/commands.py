"""What each CLI command does, below the click layer: open the workspace, the state store and the
providers, run a reconcile pass, and hand back values for rendering.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trainops.errors import InvalidInput, ProviderError, TrainopsError, UsageError
from trainops.manifest import Config
from trainops.providers import Providers
from trainops.providers.base import Located, LogFollower, Provider
from trainops.reconcile import Pass, Reconciler
from trainops.state.base import ReadsAhead, StateStore
from trainops.state.model import Health, month_of
from trainops.workspace import Workspace

if TYPE_CHECKING:
    from trainops.plan import Desired, JobView
    from trainops.savedplan.model import AppliedPlan, Binding, SavedPlanDoc


def open_store(ws: Workspace) -> StateStore:
    return _store(ws.root, ws.config)


def _store(root: Path, config: Config) -> StateStore:
    cfg = config.state
    if cfg.backend != "git":
        raise UsageError(
            f"state backend {cfg.backend!r} is not available yet",
            "use state: {backend: git} in trainops.yaml",
        )
    from trainops.repo import require_git

    require_git()
    from trainops.state.git import GitStateStore

    remote = cfg.remote if cfg.remote is not None else "origin"
    return GitStateStore(root, branch=cfg.branch, remote=remote)


class _EarlyStore:
    """`Workspace.open`'s `on_config` for plan and apply: the state store, opened as soon as
    the config names it, reading the state branch ahead (`GitStateStore.read_ahead`: fetch,
    list and read are git's work) while the manifests are validated, rather than after."""

    def __init__(self) -> None:
        self.store: StateStore | None = None

    def __call__(self, root: Path, config: Config) -> None:
        try:
            store = _store(root, config)
        except TrainopsError:
            return  # said by `reconciler`, in its place among the checks
        if isinstance(store, ReadsAhead):
            store.read_ahead()
        self.store = store


def reconciler(
    ws: Workspace,
    on_event: Callable[[str], None] | None = None,
    clock: Callable[[], float] = time.time,
    store: StateStore | None = None,
) -> Reconciler:
    if ws.validation.problems and not ws.validation.jobs and not ws.validation.invalid:
        raise InvalidInput(ws.validation.problems)
    refuse_bad_config(ws)
    from trainops.fingerprints import Observer

    providers = Providers(ws.root, ws.config, ws.lock)
    store = store if store is not None else open_store(ws)
    return Reconciler(ws, store, providers, clock, on_event, inputs=Observer())


def refuse_bad_config(ws: Workspace) -> None:
    """Stop with `InvalidInput` when `trainops.yaml` or `trainops.lock` has a problem: no command
    that reads or writes state runs on a configuration it cannot trust."""
    from trainops.repo import CONFIG_FILE, LOCK_FILE

    fatal = [p for p in ws.validation.problems if p.file in (CONFIG_FILE, LOCK_FILE)]
    if fatal:
        raise InvalidInput(fatal)


def plan_workspace(root: Path) -> tuple[Workspace, Pass]:
    early = _EarlyStore()
    ws = Workspace.open(root, on_config=early)
    return ws, reconciler(ws, store=early.store).preview(drift=True)


def status_all(root: Path) -> tuple[Workspace, Pass, Any]:
    """`status --all`: the status pass and the runs nobody declared (DESIGN §20) on every
    provider this repository's jobs use (`reconcile.orphans.census`)."""
    from trainops.reconcile.orphans import census

    early = _EarlyStore()
    ws = Workspace.open(root, on_config=early)
    rec = reconciler(ws, store=early.store)
    result = rec.preview(drift=True)
    return ws, result, census(rec, result.state, rec.clock())


def adopt_run(root: Path, job: str, run_id: str) -> Any:
    """`adopt JOB RUN_ID`: bind an orphaned run after checking its marks on the provider's
    record (`reconcile.orphans.adopt`)."""
    from trainops.reconcile.orphans import adopt

    early = _EarlyStore()
    ws = Workspace.open(root, on_config=early)
    rec = reconciler(ws, store=early.store)
    return adopt(rec, job, run_id, rec.clock())


def plan_to_save(root: Path) -> tuple[Workspace, Pass, Binding]:
    """`plan --out`: the plan of HEAD (a saved plan is bound to a commit, DESIGN §20), refusing
    a working tree whose manifests differ from it, and what the plan is bound to."""
    from trainops.reconcile.binding import binding

    early = _EarlyStore()
    ws = Workspace.open(root, ref="HEAD", on_config=early)
    _refuse_dirty(ws, "a saved plan is of a commit: commit them, then plan --out again")
    rec = reconciler(ws, store=early.store)
    return ws, rec.preview(drift=True), binding(rec)


def read_saved_plan(file: Path) -> SavedPlanDoc:
    """The saved plan in `file`, checked (`savedplan.read.load`): a usage error when it cannot be
    read, an invalid input when it is not a plan trainops wrote."""
    from trainops.savedplan.read import load

    return load(_plan_bytes(file), str(file))


def read_plan_to_apply(file: Path) -> AppliedPlan:
    """`read_saved_plan` for `apply FILE`: its report is not modelled (`AppliedPlan`)."""
    from trainops.savedplan.read import load_to_apply

    return load_to_apply(_plan_bytes(file), str(file))


def _plan_bytes(file: Path) -> bytes:
    from trainops.savedplan.model import MAX_BYTES

    try:
        # At most one byte past the limit: /dev/zero, or a FIFO a process keeps writing, never
        # ends, and read whole it takes all the memory there is before the size is looked at.
        with file.open("rb") as f:
            raw = f.read(MAX_BYTES + 1)
    except OSError as exc:
        raise UsageError(
            f"cannot read the plan file {file}: {exc.strerror or exc}",
            "write one with `trainops plan --out FILE`",
        ) from None
    return raw


def apply_workspace(
    root: Path,
    *,
    ref: str = "HEAD",
    allow_dirty: bool = False,
    on_event: Callable[[str], None] | None = None,
) -> tuple[Workspace, Reconciler]:
    """Open HEAD's manifests for apply, refusing a dirty working tree (DESIGN §3)."""
    early = _EarlyStore()
    ws = Workspace.open(root, ref=ref, on_config=early)
    if not allow_dirty:
        _refuse_dirty(
            ws,
            "commit them (apply reads desired state from git), or pass --allow-dirty "
            "to apply the commit anyway",
        )
    return ws, reconciler(ws, on_event, store=early.store)


def review_on_github(rec: Reconciler, on_note: Callable[[str], None], client: Any = None) -> None:
    """`apply --github`, `serve --github`: each pass compares its submissions with the reviewed
    plans of the commit it applies, and holds them under `policy.require_reviewed_plan: block`
    (DESIGN §20, `reconcile.reviewed`). `client`: a `GitHubClient` to use (serve counts its
    calls)."""
    from functools import partial

    from trainops.github.unreviewed import github_reviews
    from trainops.repo import is_ancestor

    ws = rec.ws
    rec.reviews = github_reviews(
        ws.config.github.status_context,
        ws.config.providers.replicate.token_env,
        ancestor=partial(is_ancestor, ws.root),
        on_note=on_note,
        client=client,
    )


def _refuse_dirty(ws: Workspace, hint: str) -> None:
    dirty = ws.dirty_manifests()
    if dirty:
        raise UsageError(
            "manifests in the working tree differ from the commit being applied: "
            + ", ".join(dirty[:5])
            + (" ..." if len(dirty) > 5 else ""),
            hint,
        )


def follow(
    rec: Reconciler,
    *,
    wait: bool,
    interval: float,
    timeout: float,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[Pass]:
    """One apply pass, then (with `wait`) more passes until `settled` or `timeout` seconds."""
    deadline = time.monotonic() + timeout if timeout else None
    result = rec.apply()
    yield result
    while wait and not settled(result):
        if deadline is not None and time.monotonic() > deadline:
            return
        sleep(interval)
        before = {name: view.health for name, view in result.plan.jobs.items()}
        result = rec.apply()
        for name, view in sorted(result.plan.jobs.items()):
            if before.get(name) != view.health:
                rec.on_event(
                    f"{name}: {view.health.value}" + (f" ({view.reason})" if view.reason else "")
                )
        yield result


def settled(result: Pass) -> bool:
    """Nothing left to do, and no run of a job in git still going. A delivery or promotion
    that just failed (or a promotion waiting for a failed delivery) does not hold `--wait`: the
    next apply retries it."""
    from trainops.plan import Deliver, Promote, Sync

    for action in result.plan.actions:
        if not isinstance(action, (Deliver, Promote)):
            return False
        run = result.plan.jobs[action.job].run
        if run is None:
            return False
        failed = [k for k, v in run.deliveries.items() if v.startswith("failed")]
        if isinstance(action, Promote):
            if not (failed or run.promotions.get(action.target, "").startswith("failed")):
                return False
        elif action.target not in failed:
            return False
    for view in result.plan.jobs.values():
        if view.sync is Sync.INVALID or view.revision == "":
            continue  # left alone, or removed from git
        if view.health is Health.UNKNOWN:
            continue  # another clone's run: this one cannot follow it to its end
        if view.health.active or (view.run is not None and view.run.is_intent):
            return False
    return True


def unsucceeded(result: Pass, desired: Desired | None = None) -> list[str]:
    """Why `apply --wait` must not exit 0 (DESIGN §12): each job in git whose current run
    ended Failed or Canceled, or is another clone's run (Unknown: this apply cannot see it end),
    with its reason. Jobs left alone (invalid, suspended, blocked with no run) have no current
    run to judge, and neither has a member of a sweep that its set's `stop_when` stopped early
    (DESIGN §21: the set did what it was written to do)."""
    from trainops.plan import Sync

    out = []
    for name, view in sorted(result.plan.jobs.items()):
        if view.sync is Sync.INVALID or view.revision == "":
            continue
        if desired is not None and stopped_early(name, view, desired):
            continue
        if view.health in (Health.FAILED, Health.CANCELED, Health.UNKNOWN):
            why = f" ({view.reason})" if view.reason else ""
            out.append(f"{name}: {view.health.value}{why}")
    return out


def stopped_early(name: str, view: JobView, desired: Desired) -> bool:
    """`name` is a member of a set with `stop_when` in git whose current run was canceled by
    it (the reason the cancel recorded: `plan.actions.STOPPED_EARLY`)."""
    from trainops.manifest import set_of
    from trainops.plan import STOPPED_EARLY

    sweep_set = desired.sets.get(set_of(name))
    if sweep_set is None or sweep_set.sweep.stop_when is None or name not in sweep_set.members:
        return False
    run = view.run
    return (
        view.health is Health.CANCELED
        and run is not None
        and run.revision == view.revision
        and run.reason.startswith(STOPPED_EARLY)
    )


def run_logs(root: Path, job: str, tail: int, follow: bool, interval: float = 2.0) -> Iterator[str]:
    """The latest run's log tail; with `follow`, new lines until the run is terminal."""
    from trainops.providers import check_run
    from trainops.state.trust import parse_state, state_problems

    ws = Workspace.open(root)
    refuse_bad_config(ws)
    store = open_store(ws)
    snap = store.load()
    state = parse_state(snap.files, check_run, snap.unreadable)
    if job in state and state[job].problem:
        raise InvalidInput(state_problems({job: state[job]}))
    runs = [r for r in state[job].runs if r.run_id] if job in state else []
    if not runs:
        known = ", ".join(sorted(state)) or "none"
        raise UsageError(f"job {job!r} has no run yet", f"jobs with runs: {known}")
    run = runs[-1]
    assert run.run_id is not None
    provider = Providers(ws.root, ws.config, ws.lock)[run.provider]
    if run.location and isinstance(provider, Located) and provider.location() != run.location:
        raise UsageError(
            f"run {run.run_id} of {job} lives on {run.where}: its log is there",
            "run `trainops logs` in that clone",
        )
    if isinstance(provider, LogFollower):
        yield from _follow_offsets(provider, provider, run.run_id, tail, follow, interval)
        return
    # A provider without offsets: its log is bounded by its own API (Replicate's `logs`).
    lines = _lines(provider.logs(run.run_id, tail if not follow else _ALL))
    yield "".join(lines[-tail:])
    shown = len(lines)
    while follow:
        obs = provider.observe([run.run_id]).get(run.run_id)
        done = obs is None or obs.health.terminal
        if not done:
            time.sleep(interval)
        lines = _lines(provider.logs(run.run_id, _ALL))
        if len(lines) > shown:
            yield "".join(lines[shown:])
            shown = len(lines)
        if done:
            return


def _follow_offsets(
    provider: Provider, log: LogFollower, run_id: str, tail: int, follow: bool, interval: float
) -> Iterator[str]:
    """The tail, then what the log gains, read from where the last read ended."""
    text, offset = log.log_tail(run_id, tail)
    yield "".join(_lines(text))
    while follow:
        obs = provider.observe([run_id]).get(run_id)
        done = obs is None or obs.health.terminal
        if not done:
            time.sleep(interval)
        while True:  # drain: a burst longer than one read comes in several
            text, after = log.log_after(run_id, offset, final=done)
            if after == offset:
                break
            offset = after
            yield "".join(_lines(text))
        if done:
            return


_ALL = 1_000_000


def _lines(text: str) -> list[str]:
    """Every line newline-terminated: providers may or may not end a log with one, and a line
    printed while following must not be glued to the next."""
    return [line + "\n" for line in text.splitlines()]


def spend(root: Path, month: str | None, by: str) -> dict[str, Any]:
    """`trainops cost`: spend in one month from the runs recorded on the state branch."""
    import re

    from trainops import cost
    from trainops.providers import check_run
    from trainops.state.trust import parse_state, state_problems

    now = time.time()
    month = month or month_of(now)
    if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", month):
        raise UsageError(f"--month {month!r} is not a month", "write it as YYYY-MM, e.g. 2026-11")
    ws = Workspace.open(root)
    refuse_bad_config(ws)
    snap = open_store(ws).load()
    states = parse_state(snap.files, check_run, snap.unreadable)
    groups = cost.spend_by(states.values(), ws.config.prices_usd_per_second, month, by, now)
    rows = [{"group": k, "runs": n, "usd": round(v, 6)} for k, (n, v) in sorted(groups.items())]
    return {
        "month": month,
        "by": by,
        "groups": rows,
        "total_usd": round(sum(v for _n, v in groups.values()), 6),
        "problems": state_problems(states),
    }


def lock_workspace(
    root: Path, check: bool, notes: list[str] | None = None
) -> tuple[list[str], str]:
    """`trainops lock`: pin every Replicate trainer and store its input schema (DESIGN §5).
    With `check`, only compare (offline) and return why the lock is stale; what the check left
    out is added to `notes`."""
    notes = [] if notes is None else notes
    import os

    from trainops.lockfile import Lock, is_stale, resolve_lock
    from trainops.manifest import ReplicateSpec
    from trainops.repo import LOCK_FILE
    from trainops.validate import validate_source

    ws = Workspace.open(root)
    refuse_bad_config(ws)
    # The manifests as the lock sees them: valid apart from what the lock itself decides.
    structural = validate_source(ws.source)
    if structural.problems:
        raise InvalidInput(structural.problems)
    replicate = [j.spec for j in structural.jobs.values() if isinstance(j.spec, ReplicateSpec)]
    trainers = sorted({spec.trainer for spec in replicate})
    path = ws.root / LOCK_FILE
    if check:
        lock = ws.lock if ws.lock is not None else Lock()
        # A suspended job cannot start, so its trainer need not be locked yet (init's Replicate
        # example waits for a token); once it is unsuspended the check asks for it.
        running = {spec.trainer for spec in replicate if not spec.suspend}
        unchecked = sorted(t for t in set(trainers) - running if lock.key_for(t) is None)
        for trainer in unchecked:
            notes.append(
                f"{trainer} is not in the lock; only suspended jobs use it, so it is not "
                "checked (run `trainops lock` before unsuspending them)"
            )
        return is_stale(lock, sorted(set(trainers) - set(unchecked))), str(path)
    cfg = ws.config.providers.replicate
    token = os.environ.get(cfg.token_env, "")
    if not token:
        raise UsageError(
            f"{cfg.token_env} is not set",
            f"trainops lock asks Replicate for each trainer's versions: export {cfg.token_env}",
        )
    from replicate.client import Client

    from trainops.providers.replicate import endpoint

    client = Client(api_token=token, base_url=endpoint(os.environ))
    try:
        lock = resolve_lock(trainers, client)
    except ProviderError:
        raise
    except Exception as exc:  # the client's own errors: never echo the token
        raise ProviderError(
            f"could not resolve trainers: {type(exc).__name__}", "check the token and the network"
        ) from None
    lock.dump(path)
    return [f"{t} -> {lock.trainers[t].version[:12]}" for t in trainers], str(path)
