"""A sweep's winner in the planner (DESIGN §21): a job chained after a set, the set's promote, and
stop_when. Whole-value assertions on the actions, as tests/unit/test_plan.py."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from tests.support.factories import run, target
from tests.support.sweeps import sweep
from trainops.manifest import Promote as PromoteSpec
from trainops.manifest import Select, StopWhen, Sweep
from trainops.plan import Cancel, Desired, Limits, Promote, Submit, Sync, plan, upstream_outputs
from trainops.state.model import Health, JobState

NOW = 10_000.0
ALIAS = "s3:s3://models/prod/"
DELIVERY = "s3:s3://models/lora/"


def lora(select: bool = True, stop: float | None = None, promote: bool = False) -> Desired:
    """A set `lora` of three members (lr 1, 2, 3), delivering to S3; with a downstream job `d`
    that takes the winner's weights."""
    spec: dict[str, Any] = {"deliver": [{"s3": {"uri": "s3://models/lora/"}}]}
    desired = sweep("lora", [1, 2, 3], **spec)
    settings = Sweep(
        select=Select(metric="eval_loss", goal="minimize") if select else None,
        stop_when=StopWhen(metric="eval_loss", worse_than_best_by=stop)
        if stop is not None
        else None,
    )
    aliases = PromoteSpec.model_validate(
        {"when": {"eval_loss": "< 0.5"}, "to": [{"s3": {"uri": "s3://models/prod/"}}]}
    )
    sweep_set = replace(desired.sets["lora"], sweep=settings, promote=aliases if promote else None)
    d = target("d", input={"w": "${{ jobs.lora.output.weights }}"})
    return Desired({**desired.targets, "d": d}, sets={"lora": sweep_set})


M1, M2, M3 = lora().sets["lora"].members


def done(desired: Desired, member: str, loss: float | None, **fields: Any) -> Any:
    t = desired.targets[member]
    metrics = {} if loss is None else {"eval_loss": loss}
    where = f"s3://models/lora/{member}/{t.revision}/"
    return run(
        t,
        Health.SUCCEEDED,
        metrics=metrics,
        completed_at=2000.0,
        outputs={"weights": f"/w/{member}"},
        deliveries={DELIVERY: "done"},
        delivered={DELIVERY: where},
        **fields,
    )


def states(**runs: Any) -> dict[str, JobState]:
    return {
        name: JobState(name, tuple(r if isinstance(r, list) else [r])) for name, r in runs.items()
    }


def of(desired: Desired, **by_index: Any) -> dict[str, JobState]:
    names = {"m1": M1, "m2": M2, "m3": M3}
    return states(**{names[k]: v(desired) for k, v in by_index.items()})


def test_a_job_after_a_set_waits_until_every_member_is_settled() -> None:
    desired = lora()
    state = of(
        desired,
        m1=lambda d: done(d, M1, 0.3),
        m2=lambda d: run(d.targets[M2]),
        m3=lambda d: done(d, M3, 0.2),
    )
    result = plan(desired, state, Limits(), NOW)
    assert not [a for a in result.actions if a.job == "d"]
    view = result.jobs["d"]
    assert (view.sync, view.reason) == (
        Sync.BLOCKED,
        "waiting for set lora: 2 of 3 members settled",
    )
    assert upstream_outputs("lora", desired, state) == {}


def test_a_job_after_a_set_takes_the_winners_output() -> None:
    desired = lora()
    state = of(
        desired,
        m1=lambda d: done(d, M1, 0.3),
        m2=lambda d: done(d, M2, 0.1),
        m3=lambda d: run(d.targets[M3], Health.FAILED, retryable=False),
    )
    result = plan(desired, state, Limits(), NOW)
    assert [a for a in result.actions if a.job == "d"] == [
        Submit("d", desired.targets["d"].revision, 1, "new revision")
    ]
    assert upstream_outputs("lora", desired, state) == {"weights": f"/w/{M2}"}
    assert result.jobs[M2].reason == "winner of lora (eval_loss 0.1)"


def test_a_settled_set_without_a_winner_refuses_the_job_after_it() -> None:
    desired = lora()
    state = of(
        desired,
        m1=lambda d: done(d, M1, None),
        m2=lambda d: done(d, M2, None),
        m3=lambda d: done(d, M3, None),
    )
    view = plan(desired, state, Limits(), NOW).jobs["d"]
    assert (view.sync, view.refused) == (Sync.BLOCKED, True)
    assert view.reason == "set lora has no winner: no succeeded member reported eval_loss"


def test_a_key_the_winner_did_not_produce_refuses_the_job_after_it() -> None:
    desired = lora()
    d = target("d", input={"w": "${{ jobs.lora.output.adapter }}"})
    desired = replace(desired, targets={**desired.targets, "d": d})
    state = of(
        desired,
        m1=lambda d: done(d, M1, 0.3),
        m2=lambda d: done(d, M2, 0.1),
        m3=lambda d: done(d, M3, 0.2),
    )
    view = plan(desired, state, Limits(), NOW).jobs["d"]
    assert view.refused and view.reason == (
        f"jobs.lora.output.adapter does not exist: the winner of lora, {M2}, produced weights"
    )


def promotes(result: Any) -> list[Promote]:
    return [a for a in result.actions if isinstance(a, Promote)]


def test_the_set_promotes_its_winner_once_settled_and_only_it() -> None:
    desired = lora(promote=True)
    unsettled = of(desired, m1=lambda d: done(d, M1, 0.3), m2=lambda d: done(d, M2, 0.1))
    assert promotes(plan(desired, unsettled, Limits(), NOW)) == []

    state = {**unsettled, **of(desired, m3=lambda d: done(d, M3, 0.2))}
    result = plan(desired, state, Limits(), NOW)
    winner = state[M2].runs[-1].run_id
    assert promotes(result) == [Promote(M2, ALIAS, winner, winner, "done")]
    assert result.jobs[M2].sync is Sync.OUT_OF_SYNC
    assert result.jobs[M2].reason == f"winner of lora (eval_loss 0.1); promoting: {ALIAS}"
    assert result.jobs[M1].sync is Sync.SYNCED

    # carried out: the records agree, nothing more to do
    moved = state[M2].with_run(replace(state[M2].runs[-1], promotions={ALIAS: "done"}))
    assert promotes(plan(desired, {**state, M2: moved}, Limits(), NOW)) == []


def test_a_winner_that_fails_promote_when_leaves_the_alias_where_it_is() -> None:
    desired = lora(promote=True)
    old = lambda d: done(d, M1, 0.6, promotions={ALIAS: "done"}, run_id="r-old")  # noqa: E731
    state = of(
        desired,
        m1=old,
        m2=lambda d: done(d, M2, 0.55),
        m3=lambda d: done(d, M3, 0.7),
    )
    [action] = promotes(plan(desired, state, Limits(), NOW))
    assert (action.job, action.run_id) == (M2, "")  # "": the alias is not moved
    assert action.verdict.startswith("held: eval_loss 0.55 is not < 0.5")


def test_a_new_winner_takes_the_alias_from_the_old_one() -> None:
    desired = lora(promote=True)
    state = of(
        desired,
        m1=lambda d: done(d, M1, 0.3, promotions={ALIAS: "done"}),
        m2=lambda d: done(d, M2, 0.1, promotions={ALIAS: "done"}),  # moved, but m1 still says so
        m3=lambda d: done(d, M3, 0.2),
    )
    winner = state[M2].runs[-1].run_id
    assert promotes(plan(desired, state, Limits(), NOW)) == [
        Promote(M2, ALIAS, winner, winner, "done")
    ]


STOP_CASES = [
    # (id, best succeeded loss, running member's loss so far, margin, stopped)
    ("worse than the best by more than the margin", 0.2, 0.5, 0.1, True),
    ("worse, but within the margin", 0.2, 0.25, 0.1, False),
    ("better than the best", 0.2, 0.1, 0.1, False),
    ("no succeeded member yet", None, 9.0, 0.1, False),
]


@pytest.mark.parametrize(
    ("best", "so_far", "margin", "stopped"),
    [c[1:] for c in STOP_CASES],
    ids=[c[0] for c in STOP_CASES],
)
def test_stop_when_cancels_a_running_member_out_of_the_race(
    best: float | None, so_far: float, margin: float, stopped: bool
) -> None:
    desired = lora(stop=margin)
    t = desired.targets[M2]
    running = run(t, progress={"eval_loss": so_far})
    state = states(**{M2: running})
    if best is not None:
        state.update(of(desired, m1=lambda d: done(d, M1, best)))
    cancels = [a for a in plan(desired, state, Limits(), NOW).actions if isinstance(a, Cancel)]
    if not stopped:
        assert cancels == []
        return
    reason = (
        f"stopped early: eval_loss {so_far:g} so far is worse than {best:g} of {M1} by more "
        f"than {margin:g}"
    )
    assert cancels == [Cancel(M2, running.run_id or "", t.revision, 1, reason)]


def test_an_early_stopped_member_is_settled_and_never_resubmitted() -> None:
    desired = lora(stop=0.1)
    stopped = run(desired.targets[M2], Health.CANCELED, reason="stopped early: eval_loss ...")
    state = of(desired, m1=lambda d: done(d, M1, 0.2), m3=lambda d: done(d, M3, 0.3))
    state[M2] = JobState(M2, (stopped,))
    result = plan(desired, state, Limits(), NOW)
    assert not [a for a in result.actions if a.job == M2]
    assert result.jobs[M2].sync is Sync.SYNCED
    assert [a.job for a in result.actions if isinstance(a, Submit)] == ["d"]
