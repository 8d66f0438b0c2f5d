"""A provider that cannot be reached (DESIGN §12): `plan` shows the recorded state with a note,
and a job that would submit to that provider is Blocked with the reason instead of "to submit".
The official client talks to the Replicate emulator, then to a loopback port nothing listens on."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.emulators.replicate import ReplicateEmulator
from tests.integration.test_replicate_faults import ENV, TIMEOUT, FakeMonotonic, manifest
from tests.support.gitrepo import git, make_repo
from trainops.commands import reconciler
from trainops.plan import Submit, Sync
from trainops.providers.replicate import ReplicateProvider
from trainops.workspace import Workspace

NOWHERE = "http://127.0.0.1:9"


@pytest.fixture
def emu() -> Iterator[ReplicateEmulator]:
    with ReplicateEmulator(queue_seconds=5, run_seconds=600) as emulator:
        yield emulator


def provider(base_url: str, token: str) -> ReplicateProvider:
    fake = FakeMonotonic()  # backoff between retries on fake time
    return ReplicateProvider(
        token_env=ENV,
        environ={ENV: token, "REPLICATE_BASE_URL": base_url},
        timeout=TIMEOUT,
        sleep=fake.sleep,
        clock=fake,
        rng=random.Random(1),
    )


def test_an_unreachable_provider_blocks_new_submits_with_the_reason(
    tmp_path: Path, emu: ReplicateEmulator
) -> None:
    cfg = {"jobs": ["jobs/*.yaml"], "providers": {"replicate": {"token_env": ENV}}}
    root = make_repo(
        tmp_path / "repo",
        {"trainops.yaml": yaml.safe_dump(cfg), "jobs/job-000.yaml": manifest(0)},
    )
    first = reconciler(Workspace.open(root, ref="HEAD"), clock=emu.now)
    with provider(emu.base_url, emu.token) as reachable:
        first.providers.inject("replicate", reachable)
        first.apply()  # job-000 now has an active training
    (root / "jobs" / "job-001.yaml").write_text(manifest(1))
    git(root, "add", ".")
    git(root, "commit", "-qm", "a second job")

    later = reconciler(Workspace.open(root), clock=emu.now)
    with provider(NOWHERE, emu.token) as unreachable:
        later.providers.inject("replicate", unreachable)
        result = later.preview()

    assert [n for n in result.notes if "could not observe 1 run(s)" in n], result.notes
    view = result.plan.jobs["job-001"]
    assert (view.sync, view.refused) == (Sync.BLOCKED, False)
    assert view.reason.startswith("replicate cannot be reached: ")
    assert not [a for a in result.plan.actions if isinstance(a, Submit)]
    assert len(emu.trainings) == 1
