"""Runs nobody declared (DESIGN §20, issue 29 part 3) on the local provider, through the CLI:
`status --all` lists this clone's runs that carry a job's marks (its record's job, revision,
input hash, repository, this clone's location) but that no state file knows, says there are no
foreign local runs, and skips a malformed or symlinked record with a note; `adopt` binds only
such a run, checked on its record; apply and prune never cancel one it does not record.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.support.undeclared import ProviderSetup, census, forget, ok, undeclared_repo
from tests.support.workspace import UserRepo, explain, manifest
from trainops.providers.local.listing import NO_FOREIGN

__all__ = ["undeclared_repo"]  # the fixture `repo` (tests/support/undeclared.py)


@pytest.fixture
def provider_setup() -> ProviderSetup:
    return ProviderSetup({"portraits": manifest("portraits"), "other": manifest("other", {"n": 1})})


def run_of(repo: UserRepo, job: str) -> str:
    [run_id] = [r for r in repo.run_ids() if r.startswith(f"{job}-")]
    return run_id


def test_an_orphaned_local_run_is_listed_adopted_and_never_started_again(
    repo: UserRepo,
) -> None:
    repo.write_job("portraits", manifest("portraits", {"ledger": repo.ledger_path()}))
    repo.commit("count trainings")
    ok(repo, "apply")
    repo.wait_all_terminal()
    ok(repo, "apply")
    ours = run_of(repo, "portraits")
    forget(repo, "portraits")
    found = census(repo)
    assert [(r["kind"], r["job"], r["run_id"], r["health"]) for r in found["runs"]] == [
        ("orphaned", "portraits", ours, "Succeeded")
    ]
    assert found["list_calls"] == {"local": 1} and found["not_listable"] == []
    assert found["notes"] == [f"local: {NO_FOREIGN}"]
    table = ok(repo, "status", "--all")
    assert ours in table and "orphaned" in table and NO_FOREIGN in table
    ok(repo, "adopt", "portraits", ours)
    [run] = repo.state()["portraits"].runs
    assert (run.run_id, run.attempt, run.health.value) == (ours, 1, "Succeeded")
    assert census(repo)["runs"] == []
    ok(repo, "apply")
    assert repo.ledger() == [ours]  # trained once, adopted, never started again


def test_a_running_orphan_is_never_canceled_by_apply_nor_prune(repo: UserRepo) -> None:
    hold = {"hold": repo.hold_path("portraits")}
    repo.write_job("portraits", manifest("portraits", hold))
    repo.commit("hold")
    ok(repo, "apply")
    ours = run_of(repo, "portraits")
    repo.wait_status(ours, {"running"})
    forget(repo, "portraits")
    [listed] = census(repo)["runs"]
    assert (listed["run_id"], listed["kind"], listed["health"]) == (ours, "orphaned", "Running")
    repo.remove_job("portraits")
    repo.commit("drop portraits")
    ok(repo, "apply")
    assert repo.status(ours)["status"] == "running"
    repo.release("portraits")
    assert repo.wait_status(ours, {"succeeded"})["status"] == "succeeded"


def test_adopt_refuses_another_jobs_run_another_revisions_and_an_unknown_one(
    repo: UserRepo,
) -> None:
    ok(repo, "apply")
    repo.wait_all_terminal()
    ok(repo, "apply")
    old, other = run_of(repo, "portraits"), run_of(repo, "other")
    repo.write_job("portraits", manifest("portraits", {"steps": 2}))
    repo.commit("new revision")
    forget(repo, "portraits", "other")
    # An earlier revision's run does not carry the current revision's marks: not listed.
    assert {r["run_id"] for r in census(repo)["runs"]} == {other}
    for run_id, why in [
        (old, "its record revision is"),
        (other, "its record job is 'other', not 'portraits'"),
        ("portraits-0123456789ab-1", "local has no run portraits-0123456789ab-1"),
    ]:
        refused = repo.trainops("adopt", "portraits", run_id)
        assert refused.returncode == 1 and why in refused.stderr, explain(refused)
        assert "Traceback" not in refused.stderr
    assert "portraits" not in repo.state()


def test_malformed_symlinked_and_copied_records_are_skipped_with_a_note(
    repo: UserRepo, tmp_path: Path
) -> None:
    ok(repo, "apply")
    repo.wait_all_terminal()
    ok(repo, "apply")
    ours = run_of(repo, "portraits")
    forget(repo, "portraits", "other")
    records = repo.records_dir()
    bad = records / "portraits-badbadbadbad-1"
    bad.mkdir()
    (bad / "meta.json").write_text("{not json")
    outside = tmp_path / "elsewhere"
    (outside / "rec").mkdir(parents=True)
    (outside / "rec" / "meta.json").write_text((records / ours / "meta.json").read_text())
    os.symlink(outside / "rec", records / "portraits-linkedlinked-1")
    # Another clone's record copied here: its location is not this clone's.
    other = run_of(repo, "other")
    meta = json.loads((records / other / "meta.json").read_text())
    (records / other / "meta.json").write_text(json.dumps({**meta, "location": "h:/x#1"}))
    work = repo.run_dir(ours)
    found = census(repo)
    assert [r["run_id"] for r in found["runs"]] == [ours]
    notes = found["notes"]
    assert "local: skipped 'portraits-badbadbadbad-1': its record (meta.json) is malformed" in notes
    assert (
        "local: skipped 'portraits-linkedlinked-1': its record is a symlink (never followed)"
        in notes
    )
    refused = repo.trainops("adopt", "other", other)
    assert refused.returncode == 1 and "claimed by another clone" in refused.stderr
    refused = repo.trainops("adopt", "portraits", "portraits-linkedlinked-1")
    assert refused.returncode == 1 and "no well-formed record" in refused.stderr, explain(refused)
    # A work folder swapped for a symlink out of the runs folder: skipped, never followed.
    moved = tmp_path / "moved"
    work.rename(moved)
    os.symlink(moved, work)
    found = census(repo)
    assert found["runs"] == []
    assert any(n.startswith(f"local: skipped {ours!r}: its work folder") for n in found["notes"])
    assert "Traceback" not in repo.trainops("status", "--all", "-o", "markdown").stderr
