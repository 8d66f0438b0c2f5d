"""Saved plans attacked (DESIGN §20, §13, §12): files a user did not get from `plan --out`, or
got and then edited, handed to `show` and `apply`. Each test is one attack that worked before its
fix; the attacks that held are covered by tests/e2e/test_saved_plan.py and
tests/unit/test_savedplan.py.
"""

from __future__ import annotations

import resource
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.workspace import UserRepo, cli_env, config

# Enough address space for the CLI and a plan at its size limit, not for an endless file.
ADDRESS_SPACE = 2 * 1024**3


def _limited() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))


@pytest.mark.parametrize("command", [["show"], ["apply"]])
def test_an_endless_plan_file_is_refused_by_its_size_not_read_to_its_end(
    tmp_path: Path, command: list[str]
) -> None:
    # /dev/zero (or a FIFO a process keeps writing) never ends: read whole, it takes all the
    # memory there is before the size limit is looked at.
    repo = UserRepo.create(tmp_path, {}, cfg=config())
    result = subprocess.run(
        [sys.executable, "-m", "trainops", *command, "/dev/zero"],
        cwd=repo.root,
        env=cli_env(repo.env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        preexec_fn=_limited,
    )
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    assert result.returncode == 1, result.stderr[-2000:]
    assert "/dev/zero: larger than 268435456 bytes" in result.stderr
    repo.cleanup()
