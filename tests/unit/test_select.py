"""The winner of a sweep (DESIGN §21, plan.select): one row per case, whole-value assertions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from tests.support.factories import desired, run, state, target
from trainops.plan.select import MAXIMIZE, MINIMIZE, selection
from trainops.state.model import Health

M1, M3 = target("m1", input={"lr": 1}), target("m3")
M2 = target("m2", input={"lr": 2}, retries=1)
MEMBERS = ("m1", "m2", "m3")


def done(t: Any, value: float | None, completed: float | None = 100.0, **fields: Any) -> Any:
    metrics = {} if value is None else {"eval_loss": value}
    return run(t, Health.SUCCEEDED, metrics=metrics, completed_at=completed, **fields)


@dataclass
class Case:
    id: str
    state: Any
    winner: str | None
    order: tuple[str, ...]
    goal: str = MINIMIZE
    settled: int = 3


CASES = [
    Case(
        "lowest loss wins",
        state(m1=done(M1, 0.3), m2=done(M2, 0.1), m3=done(M3, 0.2)),
        "m2",
        ("m2", "m3", "m1"),
    ),
    Case(
        "maximize: highest wins",
        state(m1=done(M1, 0.3), m2=done(M2, 0.1), m3=done(M3, 0.2)),
        "m1",
        ("m1", "m3", "m2"),
        goal=MAXIMIZE,
    ),
    Case(
        "a member without the metric never wins, even alone",
        state(m1=done(M1, None), m2=run(M2, Health.FAILED, retryable=False), m3=done(M3, None)),
        None,
        ("m1", "m2", "m3"),
    ),
    Case(
        "without the metric ranks last whatever the goal",
        state(m1=done(M1, None), m2=done(M2, 5.0), m3=done(M3, 9.0)),
        "m3",
        ("m3", "m2", "m1"),
        goal=MAXIMIZE,
    ),
    Case(
        "tie: the earlier finish wins",
        state(m1=done(M1, 0.2, 300.0), m2=done(M2, 0.2, 200.0), m3=done(M3, 0.5)),
        "m2",
        ("m2", "m1", "m3"),
    ),
    Case(
        "tie and same finish: the member name decides",
        state(m1=done(M1, 0.2, 200.0), m2=done(M2, 0.2, 200.0), m3=done(M3, 0.5)),
        "m1",
        ("m1", "m2", "m3"),
    ),
    Case(
        "tie: a run without a finish time loses to one with",
        state(m1=done(M1, 0.2, None), m2=done(M2, 0.2, 500.0), m3=done(M3, 0.5)),
        "m2",
        ("m2", "m1", "m3"),
    ),
    Case(
        "a member still running: no winner yet, the best so far is known",
        state(m1=done(M1, 0.3), m2=run(M2), m3=done(M3, 0.2)),
        None,
        ("m3", "m1", "m2"),
        settled=2,
    ),
    Case(
        "a failed member with retries left is not settled",
        state(m1=done(M1, 0.3), m2=run(M2, Health.FAILED), m3=done(M3, 0.2)),
        None,
        ("m3", "m1", "m2"),
        settled=2,
    ),
    Case(
        "a failed member with its retries spent is settled",
        state(
            m1=done(M1, 0.3),
            m2=[run(M2, Health.FAILED), run(M2, Health.FAILED, 2)],
            m3=done(M3, 0.2),
        ),
        "m3",
        ("m3", "m1", "m2"),
    ),
    Case(
        "a member never submitted is not settled",
        state(m1=done(M1, 0.3), m3=done(M3, 0.2)),
        None,
        ("m3", "m1", "m2"),
        settled=2,
    ),
    Case(
        "a member canceled for a budget is settled; it never wins",
        state(
            m1=done(M1, 0.3),
            m2=run(M2, Health.CANCELED, reason="max_cost_usd exceeded", metrics={"eval_loss": 0}),
            m3=done(M3, 0.2),
        ),
        "m3",
        ("m3", "m1", "m2"),
    ),
    Case(
        "only the current revision counts: an old revision's better run does not",
        state(m1=done(M1, 0.3), m2=[done("0ld0ld0ld0ld", 0.01), done(M2, 0.5)], m3=done(M3, 0.4)),
        "m1",
        ("m1", "m3", "m2"),
    ),
    Case(
        "the latest succeeded attempt is the candidate",
        state(m1=done(M1, 0.3), m2=[done(M2, 0.9), done(M2, 0.1, attempt=2)], m3=done(M3, 0.4)),
        "m2",
        ("m2", "m1", "m3"),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_selection(case: Case) -> None:
    chosen = selection(MEMBERS, "eval_loss", case.goal, desired(M1, M2, M3), case.state)
    assert tuple(s.member for s in chosen.ranking) == case.order
    assert chosen.settled == case.settled
    assert (chosen.winner.member if chosen.winner else None) == case.winner


def test_best_so_far_while_running() -> None:
    chosen = selection(
        MEMBERS, "eval_loss", MINIMIZE, desired(M1, M2, M3), state(m1=done(M1, 0.3), m2=run(M2))
    )
    assert chosen.winner is None
    assert chosen.best is not None and (chosen.best.member, chosen.best.value) == ("m1", 0.3)


def test_member_not_valid_in_git_holds_the_set() -> None:
    chosen = selection(
        MEMBERS,
        "eval_loss",
        MINIMIZE,
        desired(M1, M3, invalid=("m2",)),
        state(m1=done(M1, 0.3), m3=done(M3, 0.2)),
    )
    assert (chosen.settled, chosen.winner) == (2, None)


def test_suspended_member_without_runs_is_settled() -> None:
    m2 = target("m2", input={"lr": 2}, retries=1, suspend=True)
    chosen = selection(
        MEMBERS,
        "eval_loss",
        MINIMIZE,
        desired(M1, m2, M3),
        state(m1=done(M1, 0.3), m3=done(M3, 0.2)),
    )
    assert chosen.winner is not None and chosen.winner.member == "m3"
