"""spec.promote's gate and its place in the pure planner (DESIGN §19): which metric failed and
why, fail-closed on a missing metric, a worse run leaves the alias on the better one, a revert
moves it back to the previous run that passed, and a settled alias plans nothing."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from tests.support.factories import desired, run, state, target
from trainops.plan import Limits, Promote, plan
from trainops.promotion.gate import decide, failures, source
from trainops.provenance import hub_ref
from trainops.state.model import Health

HUB = "huggingface:acme/m"
PROD = "huggingface:acme/m@prod"
PROMOTE: dict[str, Any] = {
    "deliver": [{"huggingface": {"repo": "acme/m"}}],
    "promote": {
        "when": {"eval_loss": "< 0.25"},
        "to": [{"huggingface": {"repo": "acme/m", "ref": "prod"}}],
    },
}


@pytest.mark.parametrize(
    ("when", "metrics", "failed"),
    [
        ({"eval_loss": "< 0.25"}, {"eval_loss": 0.2}, []),
        ({"eval_loss": "< 0.25"}, {"eval_loss": 0.25}, ["eval_loss 0.25 is not < 0.25"]),
        ({"eval_loss": "<= 0.25"}, {"eval_loss": 0.25}, []),
        ({"acc": ">= 0.9"}, {"acc": 0.95}, []),
        ({"acc": "> 0.9"}, {"acc": 0.9}, ["acc 0.9 is not > 0.9"]),
        ({"epochs": "== 3"}, {"epochs": 3.0}, []),
        ({"epochs": "!= 3"}, {"epochs": 3.0}, ["epochs 3 is not != 3"]),
        ({"acc": ">= 0.9"}, {}, ["acc was not reported (needs >= 0.9)"]),  # fails closed
    ],
    ids=["lt", "lt-equal", "le", "ge", "gt-equal", "eq", "ne", "missing"],
)
def test_failures_name_the_metric_its_value_and_the_threshold(
    when: dict[str, str], metrics: dict[str, float], failed: list[str]
) -> None:
    assert failures(when, metrics) == failed


def delivered(t: Any, loss: float | None, created: float, run_id: str, **fields: Any) -> Any:
    metrics = {} if loss is None else {"eval_loss": loss}
    return run(
        t,
        Health.SUCCEEDED,
        run_id=run_id,
        created_at=created,
        metrics=metrics,
        deliveries={HUB: "done"},
        delivered={HUB: f"commit-of-{run_id}"},
        **fields,
    )


def promotes(t: Any, runs: list[Any]) -> list[Any]:
    p = plan(desired(t), state(m=runs), Limits(), 5000.0)
    return [a for a in p.actions if isinstance(a, Promote)]


def test_a_passing_run_is_promoted_and_then_settled() -> None:
    t = target("m", input={"loss": 1}, **PROMOTE)
    first = delivered(t, 0.2, 1000, "r1")
    assert promotes(t, [first]) == [Promote("m", PROD, "r1", "r1", "done")]
    assert promotes(t, [replace(first, promotions={PROD: "done"})]) == []


def test_a_worse_run_keeps_the_alias_on_the_better_one() -> None:
    old = target("m", input={"loss": 1}, **PROMOTE)
    t = target("m", input={"loss": 2}, **PROMOTE)
    first = delivered(old, 0.2, 1000, "r1", promotions={PROD: "done"})
    worse = delivered(t, 0.31, 2000, "r2")
    [action] = promotes(t, [first, worse])
    assert (action.run_id, action.candidate) == ("r1", "r2")
    assert action.verdict == ("held: eval_loss 0.31 is not < 0.25; the alias stays on run r1")


def test_a_missing_metric_holds_and_no_earlier_run_leaves_the_alias_alone() -> None:
    t = target("m", input={"loss": 1}, **PROMOTE)
    [action] = promotes(t, [delivered(t, None, 1000, "r1")])
    assert action.run_id == ""
    assert action.verdict.startswith("held: eval_loss was not reported (needs < 0.25)")


def test_a_revert_moves_the_alias_back_to_the_previous_run_that_passed_without_training() -> None:
    one, two, three = (target("m", input={"loss": i}, **PROMOTE) for i in (1, 2, 3))
    runs = [
        delivered(one, 0.2, 1000, "r1", promotions={PROD: "superseded by run r3"}),
        delivered(two, 0.31, 2000, "r2", promotions={PROD: "held: ..."}),
        delivered(three, 0.1, 3000, "r3", promotions={PROD: "done"}),
    ]
    p = plan(desired(two), state(m=runs), Limits(), 5000.0)  # git revert of the third
    assert [a for a in p.actions if not isinstance(a, Promote)] == []  # nothing trains
    [action] = [a for a in p.actions if isinstance(a, Promote)]
    assert (action.run_id, action.candidate) == ("r1", "r2")
    [decision] = decide(two.job.spec, runs, runs[1], "m")
    assert decision.expected(runs[2]) == "superseded by run r1"
    assert decision.expected(runs[0]) == "done"


def test_an_undelivered_run_waits_for_its_delivery() -> None:
    t = target("m", input={"loss": 1}, **PROMOTE)
    pending = run(t, Health.SUCCEEDED, run_id="r1", metrics={"eval_loss": 0.1})
    [decision] = decide(t.job.spec, [pending], pending, "m")
    assert decision.waiting


def test_a_hugging_face_job_promotes_the_commit_it_pushed_itself() -> None:
    spec: dict[str, Any] = {
        "provider": "huggingface",
        "image": "python:3.12",
        "command": ["python", "train.py"],
        "output_repo": "acme/m",
        "promote": {"to": [{"huggingface": {"repo": "acme/m", "ref": "prod"}}]},
    }
    t = target("m", **spec)
    pushed = run(t, Health.SUCCEEDED, run_id="j1", outputs={"weights": "acme/m@abc1234"})
    [decision] = decide(t.job.spec, [pushed], pushed, "m")
    assert (decision.holder, decision.waiting) == (pushed, False)
    assert source(t.job.spec, t.job.spec.promote.to[0], pushed, "m") == "abc1234"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("ref", "parsed"),
    [
        ("acme/m@prod", ("acme/m", "prod")),
        ("acme/m@0123abcd", ("acme/m", "0123abcd")),
        ("acme/m", None),
        ("https://example.com/a@b", None),
        ("owner/name:version", None),
        ("a/b/c@prod", None),
    ],
)
def test_trace_reads_a_hub_revision_reference(ref: str, parsed: Any) -> None:
    assert hub_ref(ref) == parsed


def test_an_s3_alias_copies_only_from_where_the_jobs_delivery_writes() -> None:
    # The state branch is input: a record naming another prefix as "delivered" is not copied.
    spec: dict[str, Any] = {
        "deliver": [{"s3": {"uri": "s3://models/m/"}}],
        "promote": {"to": [{"s3": {"uri": "s3://models/prod/"}}]},
    }
    t = target("m", **spec)
    alias = t.job.spec.promote.to[0]  # type: ignore[union-attr]
    own = f"s3://models/m/m/{t.revision}/"
    for where, expected in ((own, own), ("s3://secrets/keys/", "")):
        r = run(
            t,
            Health.SUCCEEDED,
            deliveries={"s3:s3://models/m/": "done"},
            delivered={"s3:s3://models/m/": where},
        )
        assert source(t.job.spec, alias, r, "m") == expected
