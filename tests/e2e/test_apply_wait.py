"""`apply --wait` as CI gates on it (DESIGN §12): exit 0 only when every current run Succeeded;
a run that ended Failed or Canceled, or `--timeout` reached, exits 1 with the reason."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.workspace import UserRepo, explain, manifest

WAIT = ("apply", "--wait", "--interval", "0.1")


@pytest.fixture
def repo(tmp_path: Path) -> Iterator[UserRepo]:
    made = UserRepo.create(tmp_path, {})
    yield made
    made.cleanup()


def test_wait_exits_0_when_every_run_succeeded(repo: UserRepo) -> None:
    repo.write_job("a", manifest("a"))
    repo.write_job("b", manifest("b"))
    repo.commit()
    result = repo.trainops(*WAIT)
    assert (result.returncode, result.stderr) == (0, ""), explain(result)


def test_wait_exits_1_naming_the_run_that_failed(repo: UserRepo) -> None:
    repo.write_job("ok", manifest("ok"))
    broken = {"fail_times": 99, "counter": repo.counter_path("broken")}
    repo.write_job("broken", manifest("broken", broken, retries=1))
    repo.commit()
    result = repo.trainops(*WAIT)
    assert result.returncode == 1, explain(result)
    assert "error: broken: Failed (failed after 2 attempt(s) (retries: 1)" in result.stderr
    assert "ok:" not in result.stderr
    assert len([r for r in repo.run_ids() if r.startswith("broken-")]) == 2


def test_wait_exits_1_when_the_timeout_is_reached(repo: UserRepo) -> None:
    repo.write_job("held", manifest("held", {"hold": repo.hold_path("held")}))
    repo.commit()
    result = repo.trainops(*WAIT, "--timeout", "0.3")
    assert result.returncode == 1, explain(result)
    assert "--timeout 0.3s reached before every run ended" in result.stderr
    (run_id,) = repo.run_ids()
    assert repo.status(run_id).get("status") in ("starting", "running")  # the run goes on


def test_without_wait_a_failed_run_is_not_apply_s_error(repo: UserRepo) -> None:
    # Plain apply only acts; judging runs is what --wait is for.
    repo.write_job(
        "broken", manifest("broken", {"fail_times": 99, "counter": repo.counter_path("b")})
    )
    repo.commit()
    assert repo.trainops("apply").returncode == 0
