"""Job chaining (DESIGN §2 `after` and `${{ jobs.NAME.output.KEY }}`): whether a job's upstream
jobs have succeeded at their current revision, and what their outputs are.

Inputs: a `Target`, the desired jobs and the refreshed state. Outputs: why a job waits ("" when
it need not), which referenced output does not exist, and the outputs a reference resolves
against (also used at submit, `reconcile.snapshot.resolve_input`).
"""

from __future__ import annotations

from collections.abc import Mapping

from trainops.manifest import output_refs
from trainops.plan.desired import Desired, Target
from trainops.state.model import Health, JobState


def waiting(target: Target, desired: Desired, state: Mapping[str, JobState]) -> str:
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


def missing_output(target: Target, desired: Desired, state: Mapping[str, JobState]) -> str:
    for upstream, key in output_refs(target.job.spec.input):
        outputs = upstream_outputs(upstream, desired, state)
        if key not in outputs:
            known = ", ".join(sorted(outputs)) or "none"
            return (
                f"jobs.{upstream}.output.{key} does not exist: the run of {upstream} "
                f"produced {known}"
            )
    return ""
