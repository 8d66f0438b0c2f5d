"""Read-only commands are read-only, and trainops signals only its own processes (DESIGN §13).

The attacker here writes a local run's status file (as a pull request could when status lived in
the working tree, or a job can, running as the same user): a dead supervisor pid and a victim's
process group. `plan` and `status` must neither write that file nor signal anything; `apply`
may record the run as vanished, and a cancel stops the run's own processes only — those that
carry the TRAINOPS_* variables trainops set for it — never the victim.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.workspace import UserRepo, explain, manifest

DEAD_PID = 2**22 + 1  # above the default pid_max: no such process


@pytest.fixture
def victim() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(120)"], start_new_session=True
    )
    yield proc
    proc.kill()
    proc.wait()


def forged_run(
    tmp_path: Path, victim: subprocess.Popen[bytes], **spec: object
) -> tuple[UserRepo, Path]:
    """A real run of job `a`, stopped, whose status file then names the victim's group."""
    repo = UserRepo.create(tmp_path, {})
    repo.write_job("a", manifest("a", {"hold": repo.hold_path("a")}, **spec))
    repo.commit()
    repo.apply_ok()
    (run_id,) = repo.run_ids()
    status = repo.wait_status(run_id, {"running"})
    os.killpg(status["pgid"], signal.SIGKILL)  # the real run is gone
    status_file = repo.record_dir(run_id) / "status.json"
    status_file.write_text(json.dumps({**status, "supervisor_pid": DEAD_PID, "pgid": victim.pid}))
    return repo, status_file


def test_plan_and_status_neither_write_nor_signal(
    tmp_path: Path, victim: subprocess.Popen[bytes]
) -> None:
    repo, status_file = forged_run(tmp_path, victim)
    before = status_file.read_bytes()
    for command in (["plan"], ["status"], ["logs", "a"]):
        result = repo.trainops(*command)
        assert result.returncode in (0, 4), explain(result)
        assert victim.poll() is None, f"`trainops {command[0]}` killed the victim"
        assert status_file.read_bytes() == before, f"`trainops {command[0]}` wrote status.json"
    planned = repo.trainops("plan", "--output", "json")
    row = json.loads(planned.stdout)["jobs"][0]
    assert row["health"] == "Failed"  # what apply would find: the run vanished

    repo.apply_ok()  # apply records the verdict, and still signals nothing of the victim's
    assert victim.poll() is None
    assert json.loads(status_file.read_text())["status"] == "failed"


def test_a_cancel_signals_only_the_runs_own_processes(
    tmp_path: Path, victim: subprocess.Popen[bytes]
) -> None:
    repo, status_file = forged_run(tmp_path, victim)
    # Now the forged supervisor is "alive": the victim itself.
    status = json.loads(status_file.read_text())
    status_file.write_text(
        json.dumps({**status, "supervisor_pid": victim.pid, "supervisor_start": ""})
    )
    repo.write_job("a", manifest("a", {"hold": repo.hold_path("a")}, suspend=True))
    repo.commit()
    result = repo.apply_ok()
    assert "canceled run" in result.stdout, explain(result)
    assert victim.poll() is None, "the cancel signaled a process that is not the run's"
    assert json.loads(status_file.read_text())["status"] == "canceled"
