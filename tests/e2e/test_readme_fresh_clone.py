"""The README's first shell block, exactly as written (extracted from README.md, not copied), run
from the root of a fresh `git clone` of this repository in a fresh virtual environment, as a
newcomer types it (issue 10): it installs trainops and trains on the embedded default.

The second block is the test command, this suite itself: `.ci/run` reads it from README.md and
runs it as written in a fresh venv from the root of CI's clean checkout (tests/e2e/test_ci_script.py
checks that it does), so it is not run again from inside the suite.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.workspace import kill_run_groups

PROJECT = Path(__file__).resolve().parents[2]


def readme_blocks() -> list[str]:
    blocks = re.findall(r"```sh\n(.*?)\n```", (PROJECT / "README.md").read_text(), re.S)
    assert len(blocks) >= 2, "the README's first two sh blocks are the two commands"
    return blocks[:2]


class Newcomer:
    """A fresh clone of the committed HEAD and a fresh venv, with the venv first on PATH."""

    def __init__(self, base: Path) -> None:
        self.clone = base / "trainops"
        subprocess.run(
            ["git", "clone", "--quiet", str(PROJECT), str(self.clone)], check=True, timeout=120
        )
        self.venv = base / "venv"
        subprocess.run([sys.executable, "-m", "venv", str(self.venv)], check=True, timeout=120)
        path = f"{self.venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "PYTEST_"))},
            "VIRTUAL_ENV": str(self.venv),
            "PATH": path,
            "HOME": str(base / "home"),  # no user git identity: init must commit on its own
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_CONFIG_NOSYSTEM": "1",
        }
        self.env.pop("PYTHONPATH", None)
        (base / "home").mkdir()

    def run(self, block: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", "-c", block],
            cwd=self.clone,
            env={**self.env, **env},
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )


@pytest.fixture(scope="session")
def newcomer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Newcomer]:
    made = Newcomer(tmp_path_factory.mktemp("newcomer"))
    yield made
    kill_run_groups(made.clone / "demo" / ".trainops" / "runs")


@pytest.mark.timeout(600)
def test_first_block_trains_from_the_clones_root(newcomer: Newcomer) -> None:
    first, _ = readme_blocks()
    result = newcomer.run(first)
    assert result.returncode == 0, result.stdout + result.stderr
    status = {
        line.split()[0]: line.split()[1:3] for line in result.stdout.splitlines() if line.strip()
    }
    assert status["tiny-regression"] == ["Synced", "Succeeded"]
    assert status["portraits-lora"] == ["Synced", "Suspended"]
    demo = newcomer.clone / "demo"
    (weights,) = (demo / ".trainops" / "runs").glob("tiny-regression-*/outputs/weights.json")
    assert weights.is_file()
    trainops = newcomer.venv / "bin" / "trainops"
    assert trainops.is_file()  # the venv's own trainops ran, not this environment's
    git = subprocess.run(
        ["git", "-C", str(newcomer.clone), "status", "--porcelain"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert git.stdout == ""  # demo/ is ignored by the clone, and a repository of its own
