"""trace's one reading function: the state tip, then the store's history when it has one."""

from __future__ import annotations

import pytest

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


# ---- a sweep's member in trace (DESIGN §21): the snapshot's header names its set and values ----

VALUES = {"learning_rate": 0.0001, "rank": 8}


def _snapshot(line: str) -> str:
    return f"# trainops snapshot of x revision r\n{line}\n# schema: trainops/v1\napiVersion: v\n"


def test_a_member_s_snapshot_names_its_set_and_values() -> None:
    from trainops.manifest import Member
    from trainops.manifest.sweep import member_line, member_of_snapshot

    member = Member("lora", VALUES)
    assert member.name == "lora.0-0001-8-67d14dec05"
    found = member_of_snapshot(member.name, _snapshot(member_line(member)))
    assert found == member and list(found.values) == ["learning_rate", "rank"]


@pytest.mark.parametrize(
    "line",
    [
        '# sweep member: set lora, values {"learning_rate":0.0003,"rank":8}',  # not its hash
        '# sweep member: set lorb, values {"learning_rate":0.0001,"rank":8}',  # another set
        '# sweep member: set lora, values {"learning_rate":0.0001,"rank":8',  # not JSON
        "# sweep member: set lora, values [0.0001, 8]",  # not a mapping
        "# source file: jobs/lora.yaml",  # no such line: a run of an older trainops
    ],
)
def test_a_forged_or_missing_member_line_names_no_values(line: str) -> None:
    from trainops.manifest.sweep import member_of_snapshot

    assert member_of_snapshot("lora.0-0001-8-67d14dec05", _snapshot(line)) is None


def test_a_member_line_below_the_header_is_not_read() -> None:
    from trainops.manifest import Member
    from trainops.manifest.sweep import member_line, member_of_snapshot

    member = Member("lora", VALUES)
    body = _snapshot("# schema: trainops/v1") + "spec:\n" + member_line(member) + "\n"
    assert member_of_snapshot(member.name, body) is None
