"""Report phase (DESIGN §11, §6): every health change not yet reported is sent (the state branch
is the outbox), promotions decided after their run was reported are told on the applied commit,
and a job removed from git leaves plan and status once its end is reported.

Inputs: the `Context` (its `RunReporter`, or none) and the pass's state and outcomes. Outputs:
`reported` recorded on each run whose report went out, `pruned` set or cleared on each job. A
report that fails never holds back provider actions: a later pass sends it.
"""

from __future__ import annotations

from dataclasses import replace

from trainops.errors import TrainopsError
from trainops.manifest import set_of
from trainops.plan import Promote, SetOutcome, set_outcome
from trainops.reconcile.context import Context, PromotionReporter, SetReporter
from trainops.reconcile.result import Pass
from trainops.state.model import JobState, Run


def report_health(ctx: Context, result: Pass) -> None:
    """With a reporter: the outbox delivered, then the promotions it did not cover."""
    if ctx.reporter is None:
        return
    state = result.state
    told = {
        (name, r.run_id)
        for name, s in state.items()
        for r in s.runs
        if r.run_id and r.reported == r.health.value
    }
    _report(ctx, state)
    _report_promotions(ctx, state, result, told)


def mark_pruned(ctx: Context, state: dict[str, JobState]) -> None:
    """A job removed from git leaves plan and status once its runs have ended and (with a
    reporter) their end was reported; one back in git is shown again."""
    desired = ctx.desired
    for name, job_state in state.items():
        if job_state.problem:
            continue  # an invalid state file is never rewritten (DESIGN §9)
        if name in desired.targets or desired.is_invalid(name):
            if job_state.pruned:
                state[name] = replace(job_state, pruned=False)
            continue
        if job_state.pruned or not desired.complete:
            continue
        if any(r.active for r in job_state.runs):
            continue
        if ctx.reporter is not None and _unreported(job_state):
            continue
        state[name] = replace(job_state, pruned=True)


def _report(ctx: Context, state: dict[str, JobState]) -> None:
    """Deliver every unreported health change (the outbox): each job's latest run, and any
    older run that was reported before (a replaced run must not stay pending for good)."""
    for name in sorted(state):
        runs = [r for r in state[name].runs if r.run_id]
        for i, run in enumerate(runs):
            latest = i == len(runs) - 1
            if run.reported == run.health.value or not (latest or run.reported):
                continue
            if not _report_one(ctx, name, run, state):
                return  # the reporting side is down: stop for this pass, keep the rest


def _report_one(ctx: Context, name: str, run: Run, state: dict[str, JobState]) -> bool:
    assert ctx.reporter is not None and run.run_id
    tail = ""
    if run.health.terminal:
        try:
            tail = ctx.providers[run.provider].logs(run.run_id, 20)
        except TrainopsError:
            tail = ""
    try:
        delivered = ctx.reporter.report(name, run, tail)
        if delivered and run.health.terminal:
            _report_set(ctx, name, state)
    except TrainopsError as exc:
        ctx.on_event(f"reports not delivered ({exc.message}); the next apply sends them")
        return False
    if delivered:
        state[name] = state[name].with_run(replace(run, reported=run.health.value))
    return True


def _report_set(ctx: Context, name: str, state: dict[str, JobState]) -> None:
    """DESIGN §21: when the end of member `name` leaves its set settled, the set's one table,
    on the commit its newest run came from (before the member's end counts as reported, so a
    failure sends both again on the next pass)."""
    sweep_set = ctx.desired.sets.get(set_of(name))
    if not isinstance(ctx.reporter, SetReporter) or sweep_set is None:
        return
    if name not in sweep_set.members:
        return
    settled = set_outcome(sweep_set, ctx.desired, state)
    if settled is not None:
        ctx.reporter.report_set(settled, set_commit(settled))


def set_commit(outcome: SetOutcome) -> str:
    """The source commit of the newest run the set's table shows ("" when none has one)."""
    runs = [m.run for m in outcome.members if m.run is not None and m.run.source_commit]
    newest = max(runs, key=lambda r: r.created_at, default=None)
    return newest.source_commit if newest is not None else ""


def _report_promotions(
    ctx: Context, state: dict[str, JobState], result: Pass, told: set[tuple[str, str]]
) -> None:
    """Promotions this pass carried out whose run's commit comment was posted before (or
    belongs to another commit than the one applied: a revert) are told on the applied
    commit; the others are in the run's own comment, posted just now."""
    if not isinstance(ctx.reporter, PromotionReporter):
        return
    by_job: dict[str, list[str]] = {}
    for outcome in result.outcomes:
        action = outcome.action
        if not (isinstance(action, Promote) and outcome.ok) or "waiting" in outcome.detail:
            continue
        run = next((r for r in state[action.job].runs if r.run_id == action.candidate), None)
        if run is None:
            continue
        if (action.job, action.candidate) not in told and run.source_commit == ctx.ws.commit:
            continue
        by_job.setdefault(action.job, []).append(f"{action.target}: {outcome.detail}")
    for job, lines in sorted(by_job.items()):
        try:
            ctx.reporter.report_promotion(job, ctx.ws.commit, lines)
        except TrainopsError as exc:
            ctx.on_event(f"promotion of {job} not reported ({exc.message})")
            return


def _unreported(job_state: JobState) -> bool:
    """Some run's health is still in the outbox (the rule `_report` sends by)."""
    runs = [r for r in job_state.runs if r.run_id]
    return any(
        r.reported != r.health.value and (i == len(runs) - 1 or r.reported)
        for i, r in enumerate(runs)
    )
