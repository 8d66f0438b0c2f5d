"""Input drift (DESIGN §18), for `trainops plan`: the remote inputs each job's current run saw,
observed again in one batch and compared with the fingerprints its record kept.

Inputs: the `Context` (desired jobs, the input observer) and the refreshed state. Outputs: per
job, `input drift: KEY changed behind its URL` for each changed input; a URL that cannot be
observed now is a note. Nothing retrains by itself: `rerun` or a `spec.digests` pin decides.
"""

from __future__ import annotations

from collections.abc import Mapping

from trainops.errors import TrainopsError
from trainops.reconcile.context import Context
from trainops.reconcile.snapshot import resolve_input
from trainops.state.model import JobState


def input_drift(
    ctx: Context, state: Mapping[str, JobState], notes: list[str]
) -> dict[str, list[str]]:
    """For each job whose current revision has a run that recorded fingerprints, the same URLs
    observed again; a changed fingerprint is drift."""
    from trainops.fingerprints import drifted, remote_inputs

    asked: dict[str, list[tuple[str, str, str]]] = {}
    for name, target in sorted(ctx.desired.targets.items()):
        job_state = state.get(name, JobState(name))
        runs = [r for r in job_state.of_revision(target.revision) if r.fingerprints and r.run_id]
        if not runs or job_state.problem:
            continue
        try:
            current = remote_inputs(resolve_input(target.job, state, ctx.desired))
        except TrainopsError:
            continue
        asked[name] = [
            (key, current[key], recorded)
            for key, recorded in sorted(runs[-1].fingerprints.items())
            if key in current
        ]
    if not any(asked.values()):
        return {}
    seen = ctx.observer().observe({url for items in asked.values() for _, url, _ in items})
    found: dict[str, list[str]] = {}
    for name, items in asked.items():
        for key, url, recorded in items:
            got = seen[url]
            if drifted(recorded, url, got.fingerprint):
                found.setdefault(name, []).append(f"input drift: {key} changed behind its URL")
            elif not got.fingerprint and got.note and not got.skipped:
                notes.append(f"{name}: input {key} not checked for drift: {got.note}")
    return found
