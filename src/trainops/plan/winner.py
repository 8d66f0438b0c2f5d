"""What a sweep does with its winner (DESIGN §21): the set's `promote` moves its aliases to the
winner (`crown`, through the promotion gate of DESIGN §19: no second gate), and
`stop_when` cancels a running member already out of the race (`stop_early`).

Inputs: a `SweepSet`, the desired jobs, the refreshed state. Outputs: `Promote` actions for the
winner, the spec a member's aliases are decided with (`promoting_spec`), the reason to stop a
run early ("" when there is none). Pure: values in, values out.

- Promotion waits for the set to be settled (`plan.select`): an alias never moves to an early
  finisher only to move again when a better member ends. The winner's `spec` with the set's
  `promote` goes through `gate.decide` as any job's does, so `promote.when` holds or the alias
  stays where it is; a run of another member that the alias left is marked superseded.
- Early stop compares what a running member reported so far (`Run.progress`) with the best
  final value among the set's succeeded members; only providers that report metrics while a run
  runs (local; Ray with a shared output folder) can be stopped early.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from trainops import metrics
from trainops.manifest import AnySpec, SweepSet, set_of
from trainops.plan.actions import STOPPED_EARLY, Promote
from trainops.plan.desired import Desired, Target
from trainops.plan.select import MAXIMIZE, of_set, selection
from trainops.plan.views import JobView, Sync
from trainops.promotion import gate
from trainops.state.model import JobState, Run


def promoting_spec(desired: Desired, job: str) -> AnySpec | None:
    """The spec `job`'s aliases are decided with: its own, or, for a member of a set with a
    `promote`, the member's with the set's `promote` (which members do not carry)."""
    target = desired.targets.get(job)
    if target is None:
        return None
    spec = target.job.spec
    sweep_set = desired.sets.get(set_of(job))
    if sweep_set is None or sweep_set.promote is None:
        return spec
    updated: AnySpec = spec.model_copy(update={"promote": sweep_set.promote})
    return updated


def crown(
    sweep_set: SweepSet,
    desired: Desired,
    state: Mapping[str, JobState],
    views: Mapping[str, JobView],
) -> tuple[list[Promote], JobView | None]:
    """The set's winner, once it has one: a `Promote` for each alias of the set's `promote`
    whose records differ from where the gate puts it for the winner's run, and the winner's
    view saying it won (None: no winner, nothing to change)."""
    chosen = of_set(sweep_set, desired, state)
    winner = chosen.winner
    view = views.get(winner.member) if winner is not None else None
    if winner is None or winner.run is None or winner.value is None or view is None:
        return [], None
    if view.sync is Sync.INVALID:
        return [], None
    promotes = _promotions(sweep_set, desired, state, winner.member, winner.run)
    why = f"winner of {sweep_set.name} ({chosen.metric} {metrics.fmt(winner.value)})"
    if view.reason:
        why += f"; {view.reason}"
    if promotes:
        why += "; promoting: " + ", ".join(p.target for p in promotes)
        view = replace(view, sync=Sync.OUT_OF_SYNC)
    return promotes, replace(view, reason=why)


def _promotions(
    sweep_set: SweepSet,
    desired: Desired,
    state: Mapping[str, JobState],
    member: str,
    candidate: Run,
) -> list[Promote]:
    spec = promoting_spec(desired, member)
    if spec is None or sweep_set.promote is None:
        return []
    runs = state.get(member, JobState(member)).runs
    out = []
    for d in gate.decide(spec, runs, candidate, member):
        holder = d.holder.run_id or "" if d.holder is not None else ""
        left = d.holder is not None and bool(left_by(sweep_set, state, member, d.target))
        if not d.settled(runs) or left:
            out.append(Promote(member, d.target, holder, candidate.run_id or "", d.verdict))
    return out


def left_by(
    sweep_set: SweepSet, state: Mapping[str, JobState], member: str, key: str
) -> list[tuple[str, Run]]:
    """(member, run) of the set's other members' runs that the alias `key` points at (`done`),
    which it leaves once it moves to `member`'s run."""
    return [
        (m, r)
        for m in sweep_set.members
        if m != member
        for r in state.get(m, JobState(m)).runs
        if r.run_id and r.promotions.get(key) == gate.DONE
    ]


def stop_early(target: Target, desired: Desired, state: Mapping[str, JobState], run: Run) -> str:
    """Why `run` (a running run of `target`'s current revision) is stopped early: its reported
    `stop_when.metric` is worse than the best succeeded member's by more than the margin ("":
    it is not, or the job is not a member of a set with `stop_when`)."""
    member = target.job.member
    sweep_set = desired.sets.get(member.set) if member is not None else None
    if sweep_set is None or sweep_set.sweep.stop_when is None:
        return ""
    stop, select = sweep_set.sweep.stop_when, sweep_set.sweep.select
    value = run.progress.get(stop.metric)
    if value is None or select is None:
        return ""
    best = selection(sweep_set.members, stop.metric, select.goal, desired, state).best
    if best is None or best.value is None or best.member == target.name:
        return ""
    gap = best.value - value if select.goal == MAXIMIZE else value - best.value
    if gap <= stop.worse_than_best_by:
        return ""
    return (
        f"{STOPPED_EARLY}{stop.metric} {metrics.fmt(value)} so far is worse than "
        f"{metrics.fmt(best.value)} of {best.member} by more than "
        f"{metrics.fmt(stop.worse_than_best_by)}"
    )


__all__ = [
    "crown",
    "left_by",
    "promoting_spec",
    "stop_early",
]
