"""What the end-to-end tests of runs nobody declared (DESIGN §20, issue 29 part 3) share, whatever
the provider: the user's repository as a fixture, the CLI's census of undeclared runs, and the
two ways the state branch goes wrong under a run (it forgets the run; someone forges its record).

A provider's test module states its part in a `provider_setup` fixture and imports the shared
`repo` fixture (listing it in `__all__`, as tests/e2e/conftest.py does with `ray_head`):

    from tests.support.undeclared import ProviderSetup, census, undeclared_repo

    __all__ = ["undeclared_repo"]  # the fixture `repo`

    @pytest.fixture
    def provider_setup(hub: HubEmulator) -> ProviderSetup:
        return ProviderSetup({"portraits": hf_job("portraits")}, cfg=..., env=hub.env())

    def test_something(repo: UserRepo) -> None:
        found = census(repo)
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

from tests.support.workspace import UserRepo, explain

__all__ = ["HOUR", "ProviderSetup", "census", "forge_runs", "forget", "ok", "undeclared_repo"]

HOUR = 3600.0  # how long ago a test's stray runs were made: well past any grace


@dataclass(frozen=True)
class ProviderSetup:
    """One provider's repository: its jobs (name -> manifest text), its `trainops.yaml` (None:
    the default) and the environment every CLI run gets (its emulator's endpoints)."""

    jobs: Mapping[str, str]
    cfg: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)


@pytest.fixture(name="repo")
def undeclared_repo(tmp_path: Path, provider_setup: ProviderSetup) -> Iterator[UserRepo]:
    """The user's repository as the module's `provider_setup` fixture describes it."""
    made = UserRepo.create(tmp_path, provider_setup.jobs, cfg=provider_setup.cfg)
    made.env.update(provider_setup.env)
    yield made
    made.cleanup()


def ok(repo: UserRepo, *args: str) -> str:
    """`trainops ARGS` in `repo`, which must succeed without a traceback; its stdout."""
    result = repo.trainops(*args)
    assert result.returncode == 0, explain(result)
    assert "Traceback" not in result.stderr
    return result.stdout


def census(repo: UserRepo) -> dict[str, Any]:
    """The `undeclared` part of `status --all -o json`."""
    return dict(json.loads(ok(repo, "status", "--all", "-o", "json"))["undeclared"])


def forget(repo: UserRepo, *jobs: str) -> None:
    """The state branch loses `jobs`' files (a reset, a crash before the run id was recorded):
    their runs go on existing at the provider."""
    from trainops.state.git import GitStateStore
    from trainops.state.layout import job_of_path

    assert repo.remote is not None
    store = GitStateStore(repo.remote, branch=repo.branch, remote=None)
    snap = store.load()
    gone: dict[str, str | None] = {p: None for p in snap.files if job_of_path(p) in jobs}
    assert gone
    store.save(snap.version, gone, "state reset\n")


def forge_runs(repo: UserRepo, job: str, run_id: str) -> None:
    """Someone with push access rewrites `job`'s record, not as trainops: each of its runs is now
    `run_id`, running."""
    from trainops.state.git import GitStateStore
    from trainops.state.layout import job_of_path
    from trainops.state.model import Health
    from trainops.state.schema import read_state_file

    assert repo.remote is not None
    store = GitStateStore(repo.remote, branch=repo.branch, remote=None)
    snap = store.load()
    changes: dict[str, str | None] = {}
    for path, text in snap.files.items():
        if job_of_path(path) == job:
            record = read_state_file(text)
            forged = tuple(
                replace(r, run_id=run_id, health=Health.RUNNING, completed_at=None)
                for r in record.runs
            )
            changes[path] = replace(record, runs=forged).to_text()
    store.save(snap.version, changes, "not trainops\n")
