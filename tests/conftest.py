"""Session set-up shared by every test directory.

The suite runs the CLI as a subprocess hundreds of times (`python -m trainops ...`). An editable
install leaves the package's sources uncompiled, and where `PYTHONDONTWRITEBYTECODE` is set (as
on this project's CI machines) no process ever writes their bytecode: each CLI run would compile
every trainops module again, about a quarter of a second each time. Compiling them once here, as
pip does for a package it installs, lets every subprocess read the cached bytecode instead. It
changes no behaviour: Python checks each cached file against its source before using it.
"""

from __future__ import annotations

import compileall
from pathlib import Path

import pytest

import trainops

PACKAGE = Path(trainops.__file__).parent


def pytest_sessionstart(session: pytest.Session) -> None:
    compileall.compile_dir(PACKAGE, quiet=1)
