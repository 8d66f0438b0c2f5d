"""Session set-up shared by every test directory.

The suite runs the CLI as a subprocess hundreds of times (`python -m trainops ...`). An editable
install leaves the package's sources uncompiled, and where `PYTHONDONTWRITEBYTECODE` is set (as
on this project's CI machines) no process ever writes their bytecode: each CLI run would compile
every trainops module again, about a quarter of a second each time. Compiling them once here, as
pip does for a package it installs, lets every subprocess read the cached bytecode instead. It
changes no behaviour: Python checks each cached file against its source before using it.

The suite runs on every core (`-n auto --dist loadgroup` in pyproject.toml, pytest-xdist). A
fixture of session or module scope defined by this suite (the Ray head, the fresh clone, a
module's shared repository) is built once per worker that uses it, so every test that uses one is
put in that fixture's xdist group and runs on a single worker: a Ray head is still started once
per session, and a module's fixture once. pytest 9.2 and xdist 3.8 disagree on where a test's id
lives, so xdist's own way of passing a group to its scheduler does nothing there:
tests/support/xdistgroups.py passes it (tests/unit/test_xdist_groups.py checks the scheduling).
"""

from __future__ import annotations

import compileall
from pathlib import Path

import pytest

import trainops
from tests.support import xdistgroups

PACKAGE = Path(trainops.__file__).parent


TESTS = Path(__file__).parent


def pytest_configure(config: pytest.Config) -> None:
    xdistgroups.register(config)


def pytest_sessionstart(session: pytest.Session) -> None:
    if not hasattr(session.config, "workerinput"):  # once, in the controller (or a serial run)
        compileall.compile_dir(PACKAGE, quiet=1)


def shared_resource(item: pytest.Item) -> str | None:
    """The xdist group of `item`: the widest-scoped fixture of this suite it uses, if any."""
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return None
    callspec = getattr(item, "callspec", None)
    if callspec is not None and callspec.params.get("provider") == "ray":
        return "session-ray_head"  # tests/contract: `provider` asks for ray_harness by name
    module = None
    for name in item.fixturenames:
        for fixturedef in info.name2fixturedefs.get(name, ()):
            source = Path(getattr(fixturedef.func, "__code__", compile("", "", "exec")).co_filename)
            if TESTS not in source.parents:
                continue  # pytest's and plugins' own fixtures (tmp_path_factory, ...)
            if fixturedef.scope == "session":
                return f"session-{name}"
            if fixturedef.scope in ("module", "package", "class"):
                module = f"module-{item.nodeid.split('::')[0]}"
    return module


@pytest.hookimpl(tryfirst=True)  # before xdist's worker reads the marks
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        group = shared_resource(item)
        if group is not None and item.get_closest_marker("xdist_group") is None:
            item.add_marker(pytest.mark.xdist_group(group))
