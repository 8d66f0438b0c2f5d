"""Retention (DESIGN §9): what stays at the tip, and that `cost` does not change when a run
leaves it."""

from __future__ import annotations

import pytest

from tests.support.factories import run
from trainops import cost
from trainops.state.model import Health, JobState, Run, month_of
from trainops.state.retention import KEEP_TERMINAL, retain
from trainops.state.schema import read_state_file

VERSION = "a" * 40
MONTH = 30 * 86400.0
PRICES = {"gpu": 0.001}


def old_runs(n: int, **fields: object) -> list[Run]:
    """`n` ended, reported runs of distinct old revisions, one every ~10 days."""
    return [
        run(
            f"{i:012x}",
            Health.SUCCEEDED if i % 2 else Health.FAILED,
            created_at=1_780_000_000.0 + i * MONTH / 3,
            completed_at=1_780_000_000.0 + i * MONTH / 3 + 600,
            reported=(Health.SUCCEEDED if i % 2 else Health.FAILED).value,
            **fields,
        )
        for i in range(n)
    ]


def test_a_small_record_is_left_as_it_is() -> None:
    state = JobState("a", tuple(old_runs(2 * KEEP_TERMINAL)))
    assert retain(state, state, VERSION) == state


def test_old_terminal_runs_leave_the_tip_and_the_archive_names_where_they_are() -> None:
    runs = old_runs(12)
    state = JobState("a", tuple(runs))

    kept = retain(state, state, VERSION)

    assert kept.runs == tuple(runs[-KEEP_TERMINAL:])
    assert kept.archive == VERSION
    assert sum(t.runs for t in kept.totals) == 12 - KEEP_TERMINAL


@pytest.mark.parametrize(
    "needed",
    [
        {"health": Health.RUNNING, "reported": ""},
        {"health": Health.PENDING, "run_id": None},  # an intent
        {"health": Health.SUCCEEDED, "deliveries": {"hub:acme/m": "error: 502"}},  # undelivered
        {"health": Health.FAILED, "reported": Health.RUNNING.value},  # unreported
    ],
    ids=["active", "intent", "undelivered", "unreported"],
)
def test_retention_never_drops_an_active_undelivered_or_unreported_run(needed: dict) -> None:
    runs = old_runs(12)
    special = run("f" * 12, created_at=runs[0].created_at - 1, **needed)
    state = JobState("a", (special, *runs))

    kept = retain(state, state, VERSION)

    assert special in kept.runs
    assert len(kept.runs) == KEEP_TERMINAL + 1


def test_every_run_of_the_current_revision_stays() -> None:
    runs = old_runs(9)
    current = [run("c" * 12, Health.FAILED, attempt=i, created_at=2e9 + i) for i in (1, 2, 3, 4)]
    state = JobState("a", (*runs, *current))
    assert set(map(repr, current)) <= set(map(repr, retain(state, state, VERSION).runs))


def test_only_a_run_recorded_unchanged_at_the_base_version_is_dropped() -> None:
    runs = old_runs(12)
    base = JobState("a", tuple(runs[1:]))  # runs[0] was never committed in this form
    state = JobState("a", tuple(runs))
    kept = retain(state, base, VERSION)
    assert runs[0] in kept.runs and runs[1] not in kept.runs


@pytest.mark.parametrize("by", ["job", "team"])
def test_cost_of_past_months_is_identical_after_compaction(by: str) -> None:
    billed = old_runs(
        20, provider="replicate", hardware="gpu", labels={"team": "nlp"}, billed_seconds=3600.5
    )
    dollars = [
        run(
            f"{i:012x}",
            Health.SUCCEEDED,
            run_id=f"b-{i}",
            created_at=1_780_000_000.0 + i * 9e5,
            completed_at=1_780_000_000.0 + i * 9e5 + 60,
            cost_usd=0.25 * i,
            reported="Succeeded",
            labels={"team": "vision"} if i % 2 else {},
        )
        for i in range(20)
    ]
    before = [JobState("a", tuple(billed)), JobState("b", tuple(dollars))]
    after = [retain(s, s, VERSION) for s in before]
    assert all(len(s.runs) < 20 for s in after)

    def spend(states: list[JobState], month: str) -> dict[str, tuple[int, float]]:
        groups = cost.spend_by(states, PRICES, month, by, 2e9)
        return {k: (n, round(v, 6)) for k, (n, v) in groups.items()}  # as `cost` prints it

    months = {month_of(r.completed_at or 0) for s in before for r in s.runs}
    assert len(months) > 3
    for month in sorted(months):
        assert spend(after, month) == spend(before, month), month
    assert sum(v for m in months for _n, v in spend(after, m).values()) > 0


def test_totals_round_trip_and_are_validated() -> None:
    state = JobState("a", tuple(old_runs(12, hardware="gpu")))
    kept = retain(state, state, VERSION)
    assert read_state_file(kept.to_text()) == kept
    forged = kept.to_text().replace('"runs": 3', '"runs": -3')
    with pytest.raises(ValueError, match="totals"):
        read_state_file(forged)


def test_a_parsed_state_shares_repeated_text_and_refuses_a_health_that_is_not_text() -> None:
    import json

    from trainops.state.schema import StateFileError
    from trainops.state.trust import parse_state

    runs = {
        name: run("0123456789ab", Health.SUCCEEDED, run_id=f"{name}-1", owner="host:1")
        for name in ("a", "b")
    }
    files = {f"state/{n}.json": JobState(n, (r,)).to_text() for n, r in runs.items()}
    jobs = parse_state(files)
    a, b = jobs["a"].runs[0], jobs["b"].runs[0]
    assert a.provider is b.provider and a.owner is b.owner  # one string, not one per run
    assert a == runs["a"] and dict(a.labels) == {}
    bad = json.loads(files["state/a.json"])
    bad["runs"][0]["health"] = ["Succeeded"]
    with pytest.raises(StateFileError, match="health must be one of"):
        read_state_file(json.dumps(bad))
