"""Promotion survives a power cut (DESIGN §8, §19): `trainops apply` SIGKILLed around the
promotion step — before the alias is touched, between the Hub's delete and create of the `prod`
branch (the Hub has no move), in the middle of the S3 copy, after the move but before it was
recorded, after the state was saved — then applied again (three of the five by default,
every one with TRAINOPS_SWEEP=full). Each time the Hub branch and the S3
alias end on the newest passing run, and the branch was created there exactly once.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.test_promotion import ALIAS, HUB_REPO, TRAIN, alias_run, hub_run, job
from tests.emulators.huggingface import HubEmulator
from tests.emulators.s3 import MotoS3
from tests.support import sweep
from tests.support.workspace import UserRepo, explain

EVERY = [
    "after-deliver",  # delivered, nothing promoted
    "promote-moving#1",  # the Hub branch deleted, not yet created again
    "promote-moving#2",  # the S3 alias has the new files, not yet its manifest
    "after-promote#1",  # the Hub branch moved, nothing recorded
    "after-save",
]
# By default the points where a crash loses the most: mid-move on each target, and a move made
# but not recorded; TRAINOPS_SWEEP=full runs every point (tests/support/sweep.py).
POINTS = sweep.points(EVERY, ["promote-moving#1", "promote-moving#2", "after-promote#1"])


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[UserRepo, MotoS3, HubEmulator]]:
    with MotoS3() as s3, HubEmulator(namespaces={"acme"}) as hub:
        s3.client().create_bucket(Bucket="models")
        repo = UserRepo.create(tmp_path, {})
        repo.env.update({**s3.env(), **hub.env(), "HF_HOME": str(tmp_path / "hf-home")})
        repo.write("train_m.py", TRAIN)
        yield repo, s3, hub
        repo.cleanup()
        assert hub.errors == []


@pytest.mark.timeout(600)  # 16 CLI runs in a row; the default 120 s is per test
def test_a_killed_promotion_ends_where_it_should_having_moved_once(
    world: tuple[UserRepo, MotoS3, HubEmulator],
) -> None:
    repo, s3, hub = world
    for i, point in enumerate(["", *POINTS]):
        repo.write_job("m", job(0.2 - i / 100))  # each revision better than the last
        repo.commit(f"m: revision {i}")
        submitted = repo.trainops("apply")
        assert submitted.returncode == 0, explain(submitted)
        repo.wait_all_terminal()
        moves = len(hub.ref_moves(HUB_REPO, "prod"))
        if point:
            killed = repo.trainops("apply", env={"TRAINOPS_CRASHPOINT": point})
            assert killed.returncode == -9, f"{point}: {explain(killed)}"
        again = repo.trainops("apply")
        assert again.returncode == 0, f"{point}: {explain(again)}"
        newest = max(repo.state()["m"].runs, key=lambda r: r.created_at).run_id
        assert hub_run(hub, hub.ref(HUB_REPO, "prod")) == newest, point
        assert alias_run(s3) == newest, point
        assert [hub_run(hub, c) for c in hub.ref_moves(HUB_REPO, "prod")[moves:]] == [newest]
        prefix = ALIAS.removeprefix("s3://models/")
        keys = s3.client().list_objects_v2(Bucket="models", Prefix=prefix)["Contents"]
        assert sorted(o["Key"] for o in keys) == [
            f"{prefix}metrics.json",
            f"{prefix}trainops.json",
            f"{prefix}weights.bin",
        ]
    assert len(repo.run_ids()) == len(POINTS) + 1  # one training per revision
