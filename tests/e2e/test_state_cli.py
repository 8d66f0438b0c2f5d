"""`trainops history`, `state list`, `state show` and `state forget` as an operator types them,
on a state branch that real applies compacted."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.support.workspace import UserRepo, explain, manifest

WAIT = ("apply", "--wait", "--interval", "0.1")
REVISIONS = 8


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UserRepo]:
    made = UserRepo.create(tmp_path_factory.mktemp("state-cli"), {"keep": manifest("keep")})
    for n in range(REVISIONS):
        made.write_job("a", manifest("a", {"n": n}))
        made.commit(f"a: n={n}")
        result = made.trainops(*WAIT)
        assert result.returncode == 0, explain(result)
    yield made
    made.cleanup()


def test_history_lists_every_run_the_tip_no_longer_holds(repo: UserRepo) -> None:
    shown = json.loads(repo.trainops("state", "show", "a").stdout)
    assert len(shown["runs"]) < REVISIONS and shown["archive"]
    assert shown["file"].startswith("state/") and shown["file"].count("/") == 2

    result = repo.trainops("history", "a", "-o", "json")

    assert result.returncode == 0, explain(result)
    runs = json.loads(result.stdout)["runs"]
    assert len(runs) == REVISIONS and {r["health"] for r in runs} == {"Succeeded"}
    assert {r["run_id"] for r in runs} == {i for i in repo.run_ids() if i.startswith("a-")}


def test_state_list_shows_each_record(repo: UserRepo) -> None:
    result = repo.trainops("state", "list")
    assert result.returncode == 0, explain(result)
    lines = result.stdout.splitlines()
    assert lines[0].split()[:3] == ["JOB", "RUNS", "RETIRED"]
    assert [line.split()[0] for line in lines[1:]] == ["a", "keep"]


def test_forget_asks_first_and_then_drops_only_that_record(repo: UserRepo) -> None:
    refused = repo.trainops("state", "forget", "keep", input="n\n")
    assert refused.returncode == 1 and "nothing forgotten" in refused.stderr, explain(refused)

    result = repo.trainops("state", "forget", "keep", "--yes")

    assert result.returncode == 0 and "forgot keep" in result.stdout, explain(result)
    listed = repo.trainops("state", "list").stdout.splitlines()
    assert [line.split()[0] for line in listed[1:]] == ["a"]
    assert repo.trainops("history", "a").returncode == 0
    missing = repo.trainops("state", "show", "keep")
    assert missing.returncode == 2 and "no record of job 'keep'" in missing.stderr, explain(missing)
