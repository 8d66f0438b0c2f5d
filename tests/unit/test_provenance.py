"""trace's one reading function: the state tip, then the store's history when it has one."""

from __future__ import annotations

from trainops.provenance import recorded_runs
from trainops.state.base import StateSnapshot
from trainops.state.model import Health, JobState, Run


def _run(revision: str, run_id: str) -> Run:
    return Run(revision, 1, "local", "h", 1.0, run_id=run_id, health=Health.SUCCEEDED)


TIP = _run("bbbbbbbbbbbb", "a-bbbbbbbbbbbb-1")
OLD = _run("aaaaaaaaaaaa", "a-aaaaaaaaaaaa-1")


class Store:
    def __init__(self, history: bool) -> None:
        if history:
            self.history = lambda job: [OLD, TIP] if job == "a" else []

    def load(self) -> StateSnapshot:
        return StateSnapshot("v1", {"state/a.json": JobState("a", (TIP,)).to_text()})


def test_history_adds_the_runs_the_tip_dropped_once() -> None:
    assert [r.run_id for _j, r in recorded_runs(Store(history=True))] == [TIP.run_id, OLD.run_id]


def test_without_history_the_tip_alone() -> None:
    assert [r.run_id for _j, r in recorded_runs(Store(history=False))] == [TIP.run_id]
