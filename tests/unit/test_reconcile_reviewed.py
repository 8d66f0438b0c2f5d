"""The review phase's comparison (DESIGN §20, `reconcile.reviewed`): each submit against what the
reviewed plan(s) of the commit showed for its job, each kind of difference named."""

from __future__ import annotations

import pytest

from trainops.github.reviewed import DISPATCH, ReviewedAction, ReviewedPlan
from trainops.reconcile.reviewed import differences, unreviewed

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
