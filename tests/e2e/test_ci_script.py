"""`.ci/run` as CI runs it: a fresh virtual environment on every run, the project installed into
it with its `[test]` extras, the README's test command with that interpreter, and pytest's exit 5
(no tests collected) as a failure. Run on a stub project so it takes seconds, not the suite."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]
PYPROJECT = """\
[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "stub"
version = "0"
[project.optional-dependencies]
test = ["pytest>=8"]
[tool.setuptools]
py-modules = []
"""
# The test the stub runs reports which interpreter ran it, and from where pytest came.
PROBE = """\
import sys
from pathlib import Path

import pytest


def test_probe() -> None:
    Path("probe.txt").write_text(f"{sys.prefix}\\n{pytest.__file__}\\n")
"""


def stub(root: Path, with_tests: bool) -> Path:
    (root / ".ci").mkdir(parents=True)
    shutil.copy(PROJECT / ".ci" / "run", root / ".ci" / "run")
    (root / "pyproject.toml").write_text(PYPROJECT)
    (root / "tests").mkdir()
    if with_tests:
        (root / "tests" / "test_probe.py").write_text(PROBE)
    return root


def ci(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", ".ci/run"],
        cwd=root,
        env={"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "HOME": str(root)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_each_run_tests_in_a_fresh_virtual_environment(tmp_path: Path) -> None:
    root = stub(tmp_path / "p", with_tests=True)
    prefixes = []
    for _ in range(2):
        result = ci(root)
        assert result.returncode == 0, result.stdout + result.stderr
        prefix, pytest_file = (root / "probe.txt").read_text().splitlines()
        assert pytest_file.startswith(prefix)  # pytest installed into that environment
        assert not Path(prefix).exists()  # and the environment removed afterwards
        prefixes.append(prefix)
    assert prefixes[0] != prefixes[1] and sys.prefix not in prefixes


def test_no_tests_collected_fails(tmp_path: Path) -> None:
    result = ci(stub(tmp_path / "p", with_tests=False))
    assert result.returncode == 1
    assert "pytest collected no tests: failing" in result.stderr
