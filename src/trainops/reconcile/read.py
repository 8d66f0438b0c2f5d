"""Read phase (DESIGN §9, §7 inputs): the state branch at one version, where this reconciler is,
and what it may use from here.

Inputs: the `Context` (store, providers, workspace). Outputs: the state version and every job's
validated record (`read_state`); this reconciler's location per provider whose runs belong to
one place (`locations`); the planner's `Limits` (`limits`); the snapshots a plan report diffs
against (`snapshots_to_diff`, read only when a diff needs one).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import replace

from trainops.errors import TrainopsError
from trainops.plan import Limits
from trainops.providers import check_run
from trainops.providers.base import Located
from trainops.reconcile.context import Context
from trainops.state.model import JobState
from trainops.state.trust import parse_state


def read_state(ctx: Context) -> tuple[str, dict[str, JobState]]:
    """The state version and every job's validated record. The files' text is not kept
    beyond parsing (a pass over 30,000 jobs would hold every state file twice)."""
    snap = ctx.store.load()
    return snap.version, parse_state(snap.files, check_run, snap.unreadable)


def locations(ctx: Context, state: Mapping[str, JobState]) -> dict[str, str]:
    """This reconciler's location for each provider whose recorded runs belong to one place
    (`Located`: a local run's clone). Read-only."""
    here: dict[str, str] = {}
    for name in sorted({r.provider for s in state.values() for r in s.runs if r.location}):
        try:
            provider = ctx.providers[name]
        except (KeyError, TrainopsError):
            continue  # no such provider here: none of its runs can be this reconciler's
        if isinstance(provider, Located):
            here[name] = provider.location()
    return here


def limits(
    ctx: Context,
    unreachable: Mapping[str, str] | None = None,
    held: Mapping[str, str] | None = None,
) -> Limits:
    """Policy and prices, and which providers the desired jobs cannot use from here now:
    their own offline check (credentials, machine), plus those found `unreachable`; the jobs
    `held` (no reviewed plan showed their submit, DESIGN §20) and why."""
    used = {t.job.spec.provider for t in ctx.desired.targets.values()}
    unavailable = {**(unreachable or {}), **ctx.providers.unavailable(used)}
    return replace(ctx.ws.limits(), unavailable=unavailable, held=dict(held or {}))


def snapshots_to_diff(
    ctx: Context, recorded: Mapping[str, JobState], version: str, submitting: Collection[str] = ()
) -> dict[str, str]:
    """The snapshots a plan report diffs against (DESIGN §9: read only when a diff needs
    one): each job's latest submitted one, for a job whose revision in git differs, that is
    about to be submitted, or that passes variables (`spec.env`: the reviewer sees which
    credentials it gets, DESIGN §13, even when the revision stays)."""
    wanted = []
    for name, target in ctx.desired.targets.items():
        runs = [r for r in recorded.get(name, JobState(name)).runs if r.snapshot]
        if runs and (
            runs[-1].revision != target.revision
            or name in submitting
            or getattr(target.job.spec, "env", None)
        ):
            wanted.append(runs[-1].snapshot)
    return ctx.store.read(version, wanted) if wanted else {}
