"""The state package's two halves stay apart (issue 28): the record format (what the files mean,
read as input: DESIGN §9) never reaches git, and within the git backend every git process is
run by `trainops.state.git.plumbing`, the one place git's stderr is scrubbed (DESIGN §13).
Lazy imports count: an import inside a function still ties the modules together.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import trainops.state

STATE = Path(trainops.state.__file__).resolve().parent
RECORDS = ["admin", "base", "history", "layout", "model", "retention", "schema", "trust"]
GIT_BACKEND = sorted(p.stem for p in (STATE / "git").glob("*.py"))
PROCESSES = {"git", "subprocess"}  # GitPython and running git by hand


def imported(path: Path) -> set[str]:
    """Every module `path` imports, anywhere in it, as absolute dotted names."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path.name}: relative import"
            names.add(node.module or "")
    return names


def test_the_lists_name_every_module_of_the_state_package() -> None:
    found = {p.stem for p in STATE.glob("*.py")} - {"__init__"}
    assert found == set(RECORDS) and "plumbing" in GIT_BACKEND and "store" in GIT_BACKEND


@pytest.mark.parametrize("module", RECORDS)
def test_the_record_format_never_reaches_git(module: str) -> None:
    names = imported(STATE / f"{module}.py")
    backend = {n for n in names if n == "trainops.state.git" or n.startswith("trainops.state.git.")}
    assert (backend, {n.split(".")[0] for n in names} & PROCESSES) == (set(), set())


@pytest.mark.parametrize("module", [m for m in GIT_BACKEND if m != "plumbing"])
def test_only_the_plumbing_runs_git(module: str) -> None:
    roots = {n.split(".")[0] for n in imported(STATE / "git" / f"{module}.py")}
    assert roots & PROCESSES == set()


def test_the_plumbing_is_what_runs_git() -> None:  # the check above would pass vacuously without
    assert {n.split(".")[0] for n in imported(STATE / "git" / "plumbing.py")} >= PROCESSES
