"""Job chaining (DESIGN §2 `after` and `${{ jobs.NAME.output.KEY }}`): whether a job's upstream
jobs have succeeded at their current revision, and what their outputs are. An upstream that is
a sweep set (DESIGN §21) is its winner: a job after a set waits until every member is settled
(`plan.select`), and its references read the winner's outputs.

Inputs: a `Target`, the desired jobs and the refreshed state. Outputs: why a job waits ("" when
it need not), which referenced output does not exist, and the outputs a reference resolves
against (also used at submit, `reconcile.snapshot.resolve_input`).
"""

from __future__ import annotations

from collections.abc import Mapping

from trainops.manifest import output_refs
from trainops.plan.desired import Desired, Target
from trainops.plan.select import of_set
from trainops.state.model import Health, JobState


def waiting(target: Target, desired: Desired, state: Mapping[str, JobState]) -> str:
    for upstream in target.job.upstream():
        sweep_set = desired.sets.get(upstream)
        if sweep_set is not None:
            chosen = of_set(sweep_set, desired, state)
            if not chosen.complete:
                return (
                    f"waiting for set {upstream}: {chosen.settled} of "
                    f"{len(sweep_set.members)} members settled"
                )
            continue
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
    run of NAME's current revision, or of a set's winner (none when there is no such run)."""
    sweep_set = desired.sets.get(name)
    if sweep_set is not None:
        winner = of_set(sweep_set, desired, state).winner
        return winner.run.outputs if winner is not None and winner.run is not None else {}
    target = desired.targets.get(name)
    for run in reversed(state.get(name, JobState(name)).runs):
        if target and run.revision == target.revision and run.health is Health.SUCCEEDED:
            return run.outputs
    return {}


def missing_output(target: Target, desired: Desired, state: Mapping[str, JobState]) -> str:
    for upstream in target.job.upstream():
        sweep_set = desired.sets.get(upstream)
        if sweep_set is not None and sweep_set.sweep.select is not None:
            chosen = of_set(sweep_set, desired, state)
            if chosen.winner is None:
                return f"set {upstream} has no winner: no succeeded member reported {chosen.metric}"
    for upstream, key in output_refs(target.job.spec.input):
        outputs = upstream_outputs(upstream, desired, state)
        if key not in outputs:
            known = ", ".join(sorted(outputs)) or "none"
            if upstream in desired.sets:
                winner = of_set(desired.sets[upstream], desired, state).winner
                whose = f"the winner of {upstream}, {winner.member if winner else '?'},"
            else:
                whose = f"the run of {upstream}"
            return f"jobs.{upstream}.output.{key} does not exist: {whose} produced {known}"
    return ""
