"""`--dist loadgroup` keeps an xdist group on one worker (tests/support/xdistgroups.py).

A generated test directory runs under `-n 2 --dist loadgroup` with this suite's conftest as a
plugin (the same hooks every run of the suite has); each test writes the worker it ran on.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]

TESTS = """
import os
from pathlib import Path

import pytest

LOG = Path(os.environ["GROUPS_LOG"])


def record(kind):
    with LOG.open("a") as out:
        out.write(f"{kind} {os.environ['PYTEST_XDIST_WORKER']}\\n")


@pytest.mark.xdist_group("ray")
@pytest.mark.parametrize("i", range(6))
def test_grouped(i):
    record("ray")


@pytest.mark.parametrize("i", range(6))
def test_free(i):
    record("free")
"""


@pytest.mark.timeout(120)
def test_a_group_runs_on_one_worker_and_the_rest_on_both(tmp_path: Path) -> None:
    for name in ("test_one.py", "test_two.py"):  # a group spans modules
        (tmp_path / name).write_text(textwrap.dedent(TESTS))
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    log = tmp_path / "workers.log"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        "GROUPS_LOG": str(log),
    }
    env.pop("PYTEST_ADDOPTS", None)
    env.pop("PYTEST_XDIST_WORKER", None)
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "tests.conftest",
            "-n",
            "2",
            "--dist",
            "loadgroup",
            "-rA",
            str(tmp_path),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=110,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    workers: dict[str, set[str]] = defaultdict(set)
    runs: dict[str, int] = defaultdict(int)
    for line in log.read_text().splitlines():
        kind, worker = line.split()
        workers[kind].add(worker)
        runs[kind] += 1
    assert runs == {"ray": 12, "free": 12}
    assert len(workers["ray"]) == 1, run.stdout
    # The id the scheduler read (`LoadGroupScheduling._split_scope`: what follows the last `@`).
    # pytest's terminal rebuilds a parametrized id from its parts, `[0]@ray` shown as `[0]@ray]`.
    assert "PASSED test_one.py::test_grouped[0]@ray" in run.stdout
