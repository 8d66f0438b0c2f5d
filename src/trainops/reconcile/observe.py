"""Observe phase (DESIGN §6, §7 "terminal runs are never polled again"): one batch per provider
about every active run this reconciler can see, each answer judged for ownership (§9).

Inputs: the `Context`, the recorded `JobState`s, `here` (`read.locations`). Outputs: the
providers' `Observation`s by run id, ready for `plan.refresh`; with `notes` (a preview), a
provider that cannot be asked is noted and named in `unreachable` instead of failing; a run that
is not its record's run is left out and its job named in `foreign` (`ownership.left_alone`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from trainops.errors import TrainopsError
from trainops.providers.base import Observation, Reaper
from trainops.reconcile.context import Context
from trainops.reconcile.ownership import judge, named
from trainops.scrub import scrubber
from trainops.state.model import Health, JobState, Run


def observe(
    ctx: Context,
    state: Mapping[str, JobState],
    here: Mapping[str, str],
    notes: list[str] | None = None,
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
            provider = ctx.providers[name]
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
        found = judge(ctx, provider, claims[name], found, foreign)
        # A run's error is its job's or provider's text: scrubbed here, before anything
        # shortens it (a secret cut in half would no longer be recognised).
        observed.update({k: replace(o, error=clean(o.error)) for k, o in found.items()})
        for run_id in ids:
            if run_id not in found and not named(foreign, claims[name][run_id][0]):
                observed[run_id] = Observation(
                    run_id, Health.FAILED, error="the provider no longer knows this run"
                )
    return observed
