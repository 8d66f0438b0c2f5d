"""The plan of a sweep set (DESIGN §21), one row per case: `max_parallel` (members beyond it wait,
admitted in the set's order), the set's total worst case, and `budget.max_cost_usd_total`
(over it, every new submission of the set is refused, each member saying why)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.support.factories import run
from tests.support.sweeps import members_of, sweep
from trainops.manifest import Policy
from trainops.plan import Cancel, Desired, Limits, Submit, Sync, plan
from trainops.state.model import Health, JobState

NOW = 10_000.0
# Four members on priced hardware, each $1.525 at worst (1000 s of gpu-h100, no retries).
PAID = {"hardware": "gpu-h100", "budget": {"max_duration": "1000s"}}
LR = [1e-4, 3e-4, 1e-3, 3e-3]


def _names(d: Desired, set_name: str = "lora") -> list[str]:
    return list(d.sets[set_name].members)


@dataclass
class Case:
    id: str
    desired: Desired
    # state by member index (into the set's order): the runs of that member
    runs: dict[int, Any] = field(default_factory=dict)
    submitted: list[int] = field(default_factory=list)  # member indexes, in plan order
    waiting: list[int] = field(default_factory=list)  # Blocked, not refused
    refused: list[int] = field(default_factory=list)
    reason: str = ""  # the reason of every waiting or refused member
    policy: Policy = field(default_factory=Policy)


def _cases() -> list[Case]:
    two = sweep("lora", LR, max_parallel=2)
    one = sweep("lora", LR[:2], max_parallel=1)
    wait2 = "max_parallel 2 of the set lora: waiting for a member"
    return [
        Case("no max_parallel: every member is submitted", sweep("lora", LR), {}, [0, 1, 2, 3]),
        Case(
            "max_parallel 2: the first two in the set's order", two, {}, [0, 1], [2, 3], [], wait2
        ),
        Case(
            "a running member takes a slot",
            two,
            {0: Health.RUNNING},
            [1],
            [2, 3],
            [],
            wait2,
        ),
        Case(
            "an ended member frees its slot",
            two,
            {0: Health.SUCCEEDED, 1: Health.FAILED},
            [2, 3],
        ),
        Case(
            "two running: the rest wait",
            two,
            {2: Health.RUNNING, 3: Health.PENDING},
            [],
            [0, 1],
            [],
            wait2,
        ),
        Case(
            "a member replacing its own old run keeps the slot it frees",
            one,
            {0: "old"},
            [0],
            [1],
            [],
            "max_parallel 1 of the set lora: waiting for a member",
        ),
        Case(
            "max_concurrent_runs below max_parallel: its reason",
            two,
            {},
            [0],
            [1, 2, 3],
            [],
            "max_concurrent_runs (1) reached; waiting for a slot",
            Policy(max_concurrent_runs=1),
        ),
        Case(
            "a total over max_cost_usd_total refuses every new submission",
            sweep("lora", LR, total=5, **PAID),
            {},
            [],
            [],
            [0, 1, 2, 3],
            "worst case of the set lora $6.10 (4 members) is over max_cost_usd_total $5.00",
        ),
        Case(
            "over the total: a running member is left alone, the others refused",
            sweep("lora", LR, total=5, **PAID),
            {1: Health.RUNNING},
            [],
            [],
            [0, 2, 3],
            "worst case of the set lora $6.10 (4 members) is over max_cost_usd_total $5.00",
        ),
        Case(
            "within the total: all admitted",
            sweep("lora", LR, total=6.1, **PAID),
            {},
            [0, 1, 2, 3],
        ),
        Case(
            "refused before waiting for a slot",
            sweep("lora", LR, total=5, max_parallel=1, **PAID),
            {},
            [],
            [],
            [0, 1, 2, 3],
            "worst case of the set lora $6.10 (4 members) is over max_cost_usd_total $5.00",
        ),
        Case(
            "an unbounded member: the total cannot be checked",
            sweep("lora", LR[:2], total=100, hardware="gpu-h100"),
            {},
            [],
            [],
            [0, 1],
            "the set lora has no bounded worst case (lora.0-0001-",
        ),
        Case(
            "max_cost_usd_per_job applies per member",
            sweep("lora", LR[:2], **PAID),
            {},
            [],
            [],
            [0, 1],
            "worst case $1.53 is over max_cost_usd_per_job $1.00",
            Policy(max_cost_usd_per_job=1),
        ),
    ]


def _state(d: Desired, runs: dict[int, Any]) -> dict[str, JobState]:
    """Each member's one run: of its current revision with that health, or ("old") a running
    run of an older revision."""
    names = _names(d)
    out = {}
    for index, health in runs.items():
        name = names[index]
        r = run("0ld0ld0ld0ld") if health == "old" else run(d.targets[name], health)
        out[name] = JobState(name, (r,))
    return out


@pytest.mark.parametrize("case", _cases(), ids=lambda c: c.id)
def test_set_admission(case: Case) -> None:
    d = case.desired
    names = _names(d)
    result = plan(d, _state(d, case.runs), Limits(case.policy), NOW)
    submits = [a.job for a in result.actions if isinstance(a, Submit)]
    assert submits == [names[i] for i in case.submitted]
    for i in case.waiting + case.refused:
        view = result.jobs[names[i]]
        assert view.sync is Sync.BLOCKED
        assert view.refused is (i in case.refused)
        assert view.reason.startswith(case.reason), view.reason
    for i in set(range(len(names))) - set(case.waiting + case.refused):
        assert result.jobs[names[i]].sync is not Sync.BLOCKED


def test_the_set_view_carries_the_total_and_bounds() -> None:
    d = sweep("lora", LR, total=5, max_parallel=2, **PAID)
    names = _names(d)
    result = plan(d, _state(d, {0: Health.RUNNING}), Limits(), NOW)
    view = result.sets["lora"]
    assert view.members == tuple(names)
    assert view.worst_usd == pytest.approx(4 * 1.525)
    assert (view.max_cost_usd_total, view.max_parallel, view.active) == (5, 2, 1)
    assert view.refused.startswith("worst case of the set lora $6.10")
    # the money of the plan counts no refused member
    assert result.money is not None and result.money.new_usd == 0.0


def test_admitted_members_count_in_the_plans_money() -> None:
    d = sweep("lora", LR, max_parallel=2, **PAID)
    result = plan(d, {}, Limits(), NOW)
    assert result.money is not None
    assert result.money.new_usd == pytest.approx(2 * 1.525)
    assert result.sets["lora"].refused == ""


def test_members_are_admitted_in_the_sets_order_not_by_name() -> None:
    """The set's order is its expansion order (axis order): `3e-3` first here, though its name
    sorts last."""
    d = sweep("lora", list(reversed(LR)), max_parallel=1)
    names = _names(d)
    assert sorted(names) != names
    result = plan(d, {}, Limits(), NOW)
    assert [a.job for a in result.actions if isinstance(a, Submit)] == [names[0]]


def test_an_old_revisions_cancel_frees_the_slot_of_its_member_only() -> None:
    d = sweep("lora", LR[:2], max_parallel=1)
    names = _names(d)
    result = plan(d, _state(d, {0: "old"}), Limits(), NOW)
    assert [type(a) for a in result.actions if a.job == names[0]] == [Cancel, Submit]
    assert result.jobs[names[1]].sync is Sync.BLOCKED


def test_members_of_two_sets_count_against_their_own_set() -> None:
    a, b = sweep("a", LR[:2], max_parallel=1), sweep("b", LR[:2], max_parallel=1)
    both = Desired({**a.targets, **b.targets}, sets={**a.sets, **b.sets})
    result = plan(both, {}, Limits(), NOW)
    submits = [x.job for x in result.actions if isinstance(x, Submit)]
    assert submits == [_names(a, "a")[0], _names(b, "b")[0]]
    assert members_of(both, "a") == _names(a, "a")
