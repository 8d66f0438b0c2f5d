"""Provider availability as a user meets it (DESIGN §10, §12): a local job on a GitHub-hosted
runner, whose disk vanishes after the workflow job, is Blocked with that reason; a self-hosted
runner runs it. Blocked is not a refusal: exit 0, nothing started, nothing recorded."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.workspace import UserRepo, explain, manifest
from trainops.providers.local import GITHUB_HOSTED


@pytest.fixture
def repo(tmp_path: Path) -> Iterator[UserRepo]:
    made = UserRepo.create(tmp_path, {"a": manifest("a")})
    yield made
    made.cleanup()


def test_local_jobs_on_a_github_hosted_runner_are_blocked(repo: UserRepo) -> None:
    hosted = {"RUNNER_ENVIRONMENT": "github-hosted"}
    for command in ("plan", "apply"):
        result = repo.trainops(command, env=hosted)
        assert result.returncode == 0, explain(result)
        assert GITHUB_HOSTED in result.stdout
    assert repo.run_ids() == []
    assert repo.state() == {}
    status = repo.trainops("status", "-o", "json", env=hosted)
    (row,) = json.loads(status.stdout)["jobs"]
    assert (row["sync"], row["health"], row["reason"]) == ("Blocked", "Missing", GITHUB_HOSTED)


def test_local_jobs_on_a_self_hosted_runner_run(repo: UserRepo) -> None:
    result = repo.trainops("apply", env={"RUNNER_ENVIRONMENT": "self-hosted"})
    assert result.returncode == 0, explain(result)
    assert len(repo.run_ids()) == 1
