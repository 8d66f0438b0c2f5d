"""The review phase's comparison (DESIGN §20, `reconcile.reviewed`): each submit against what the
reviewed plan(s) of the commit showed for its job, each kind of difference named."""

from __future__ import annotations

from collections.abc import Mapping
from types import SimpleNamespace
from typing import Any

import pytest

from tests.support.factories import target
from trainops.github.reviewed import DISPATCH, ReviewedAction, ReviewedPlan, reviewed_actions
from trainops.manifest import Config, Policy
from trainops.plan import Desired, Limits, Submit, Sync, Target, plan
from trainops.reconcile.result import Pass
from trainops.reconcile.reviewed import differences, review, unreviewed

REV, OTHER = "a1b2c3d4e5f6a7b8", "c3d4e5f6a7b8c9d0"
SHOWN = ReviewedAction("portraits", REV, 1, 5.49, ("HF_TOKEN",))
HEAD = "c" * 40


def submit(**changed: object) -> ReviewedAction:
    fields = {
        "job": "portraits",
        "revision": REV,
        "attempt": 1,
        "worst_case_usd": 5.49,
        "credentials": ("HF_TOKEN",),
    }
    fields.update(changed)
    return ReviewedAction(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("now", "said"),
    [
        pytest.param(submit(revision=OTHER), ["revision a1b2c3d4e5f6 -> c3d4e5f6a7b8"], id="rev"),
        pytest.param(submit(attempt=2), ["attempt 1 -> 2"], id="attempt"),
        pytest.param(submit(worst_case_usd=11.02), ["cost $5.49 -> $11.02"], id="cost"),
        pytest.param(submit(worst_case_usd=2.0), ["cost $5.49 -> $2.00"], id="cheaper"),
        pytest.param(submit(worst_case_usd=None), ["cost $5.49 -> no worst case"], id="unbounded"),
        pytest.param(
            submit(worst_case_usd=5.4901), ["cost $5.490000 -> $5.490100"], id="under-a-cent"
        ),
        pytest.param(
            submit(credentials=("HF_TOKEN", "WANDB_API_KEY")),
            ["credentials +WANDB_API_KEY"],
            id="credential-added",
        ),
        pytest.param(submit(credentials=()), ["credentials -HF_TOKEN"], id="credential-removed"),
        pytest.param(
            submit(revision=OTHER, worst_case_usd=11.02, credentials=("AWS_SECRET",)),
            [
                "revision a1b2c3d4e5f6 -> c3d4e5f6a7b8",
                "cost $5.49 -> $11.02",
                "credentials +AWS_SECRET -HF_TOKEN",
            ],
            id="several",
        ),
    ],
)
def test_each_difference_is_named(now: ReviewedAction, said: list[str]) -> None:
    assert differences(SHOWN, now) == said


def plans(*actions: ReviewedAction, pull: int = 12) -> list[ReviewedPlan]:
    return [ReviewedPlan(pull, HEAD, {a.job: a for a in actions})]


@pytest.mark.parametrize(
    ("now", "reviewed", "note", "why"),
    [
        pytest.param(submit(), plans(SHOWN), "", None, id="shown-exactly"),
        pytest.param(
            submit(worst_case_usd=11.02),
            plans(SHOWN),
            "",
            "not in the reviewed plan of #12 (cost $5.49 -> $11.02)",
            id="cost-differs",
        ),
        pytest.param(
            submit(),
            plans(ReviewedAction("captions", REV, 1, 1.0, ())),
            "",
            "not in the reviewed plan of #12 (no submit of it shown)",
            id="not-shown",
        ),
        pytest.param(submit(), [], "", "no reviewed plan: pushed directly", id="direct-push"),
        pytest.param(
            submit(),
            [],
            "#12: trainops posted no plan",
            "no reviewed plan: #12: trainops posted no plan",
            id="pull-request-without-a-plan",
        ),
        pytest.param(
            submit(attempt=2),
            [*plans(SHOWN), *plans(submit(attempt=2), pull=DISPATCH)],
            "",
            None,
            id="a-plan-of-the-commit-shows-it",
        ),
        pytest.param(
            submit(attempt=3),
            [*plans(SHOWN), *plans(submit(attempt=2), pull=DISPATCH)],
            "",
            f"not in the reviewed plan of commit {HEAD[:12]} (attempt 2 -> 3)",
            id="the-commit-plan-is-compared-first",
        ),
    ],
)
def test_a_submit_is_reviewed_only_when_a_plan_showed_it_exactly(
    now: ReviewedAction, reviewed: list[ReviewedPlan], note: str, why: str | None
) -> None:
    expected = {} if why is None else {"portraits": why}
    assert unreviewed({"portraits": now}, reviewed, note) == expected


# ---- the phase: hold, plan again, until nothing unreviewed is submitted ------------------------


class Reviews:
    """A `Reviews` answering from memory, counting what is asked."""

    def __init__(self, plans: list[ReviewedPlan]) -> None:
        self.answer, self.asked = plans, 0

    def plans(self, commit: str) -> tuple[list[ReviewedPlan], str]:
        self.asked += 1
        return self.answer, ""

    def report(self, commit: str, unreviewed: object, held: bool) -> None:
        raise AssertionError("the phase reports after acting, not while planning")


def phase(mode: str, reviewed: set[str], *, jobs: tuple[str, ...] = ("a", "b")) -> tuple[Any, Any]:
    """One slot, jobs in `jobs` wanting it oldest first; `reviewed` the jobs a plan showed."""
    targets = {name: target(name) for name in jobs}
    wanted = Desired(targets, changed_at={n: float(i) for i, n in enumerate(jobs)})
    shown = reviewed_actions(
        [_submit(t) for name, t in targets.items() if name in reviewed], wanted
    )
    reviews = Reviews([ReviewedPlan(12, HEAD, shown)])
    config = Config.model_validate({"policy": {"require_reviewed_plan": mode}})
    ctx = SimpleNamespace(
        reviews=reviews, desired=wanted, ws=SimpleNamespace(config=config, commit=HEAD)
    )

    def make(held: Mapping[str, str]) -> Pass:
        limits = Limits(Policy(max_concurrent_runs=1), held=held)
        return Pass(plan(wanted, {}, limits, 0.0), {})

    return review(ctx, make({}), make), reviews  # type: ignore[arg-type]


def _submit(t: Target) -> Any:
    return SimpleNamespace(
        op="submit", job=t.name, revision=t.revision, attempt=1, worst_case_usd=0.0
    )


def submits(result: Pass) -> list[str]:
    return [a.job for a in result.plan.actions if isinstance(a, Submit)]


def test_warn_submits_what_no_plan_showed_and_names_it() -> None:
    result, reviews = phase("warn", reviewed={"b"})
    assert submits(result) == ["a"]
    assert result.unreviewed == {"a": "not in the reviewed plan of #12 (no submit of it shown)"}
    assert not result.held_unreviewed and reviews.asked == 1
    assert result.notes == [
        "not reviewed, submitted: a: not in the reviewed plan of #12 (no submit of it shown)"
    ]


def test_block_holds_it_and_the_slot_it_frees_goes_to_a_reviewed_job() -> None:
    result, reviews = phase("block", reviewed={"b"})
    assert submits(result) == ["b"]
    view = result.plan.jobs["a"]
    assert (view.sync, view.refused) == (Sync.BLOCKED, True)
    assert view.reason == "not in the reviewed plan of #12 (no submit of it shown)"
    assert result.held_unreviewed and reviews.asked == 1  # GitHub asked once per pass


def test_block_holds_each_unreviewed_job_the_freed_slot_would_start() -> None:
    result, _ = phase("block", reviewed=set(), jobs=("a", "b", "c"))
    assert submits(result) == []
    assert sorted(result.unreviewed) == ["a", "b", "c"]
    assert {v.sync for v in result.plan.jobs.values()} == {Sync.BLOCKED}


def test_nothing_to_submit_asks_github_nothing() -> None:
    result, reviews = phase("block", reviewed=set(), jobs=())
    assert (result.unreviewed, reviews.asked) == ({}, 0)
