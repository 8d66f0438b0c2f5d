"""Never twice with Hugging Face Jobs (DESIGN §8): `trainops apply` killed by SIGKILL at every
step boundary while it submits three HF jobs, then applied again until every job succeeded.
Counted at the emulator: exactly one HF job per (job, revision, attempt), and each recorded in
state. A kill after the create but before its run id was saved is healed by adoption (labels),
never by a second create; a kill after the intents, before any create, creates nothing until the
adoption grace has passed."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.emulators.huggingface import HubEmulator
from tests.support import sweep
from tests.support.workspace import UserRepo, config, explain

CRASHPOINTS = [
    "after-observe",
    "before-push#1",
    "after-intents",
    "after-submit",
    "before-push#2",
    "after-save",
]
JOBS = ["a", "b", "c"]


def hf_job(name: str) -> str:
    spec = {
        "provider": "huggingface",
        "image": "python:3.12",
        "command": ["python", "train.py"],
        "hardware": "t4-small",
        "input": {"name": name},
    }
    doc = {"apiVersion": "trainops/v1", "kind": "TrainingJob", "metadata": {"name": name}}
    return yaml.safe_dump({**doc, "spec": spec}, sort_keys=False)


@pytest.fixture
def hub() -> Iterator[HubEmulator]:
    with HubEmulator(namespaces={"acme"}) as emu:
        yield emu
        assert emu.errors == []


# TRAINOPS_SWEEP=full: every point; by default the ones where a crash loses the most
@pytest.mark.parametrize(
    "point", sweep.points(CRASHPOINTS, ["after-intents", "after-submit", "before-push#2"])
)
def test_kill_at_each_step_boundary_then_apply_again(
    tmp_path: Path, hub: HubEmulator, point: str
) -> None:
    cfg = config() + yaml.safe_dump({"providers": {"huggingface": {"namespace": "acme"}}})
    repo = UserRepo.create(tmp_path, {name: hf_job(name) for name in JOBS}, cfg=cfg)
    repo.env = hub.env()
    killed = repo.trainops("apply", env={"TRAINOPS_CRASHPOINT": point})
    assert killed.returncode == -9, f"apply was not killed at {point}\n{explain(killed)}"
    if point in ("after-intents", "after-submit"):
        # Intents saved, at most one created: the next apply adopts what exists (by label) and
        # finds nothing for the rest; those become lost only after the adoption grace (10 min of
        # the CLI's real clock, not the emulator's), so until then nothing more is created.
        repo.apply_ok()
        created = Counter(j["labels"]["trainops-job"] for j in hub.created_jobs())
        assert len(created) == (1 if point == "after-submit" else 0), created
        assert not created or max(created.values()) == 1
        repo.cleanup()
        return
    for _ in range(6):
        repo.apply_ok()
        hub.advance(600)
        status = repo.trainops("status", "--output", "json")
        health = {j["job"]: j["health"] for j in json.loads(status.stdout)["jobs"]}
        if set(health.values()) == {"Succeeded"}:
            break
    assert set(health.values()) == {"Succeeded"}, health
    created = Counter(
        (j["labels"]["trainops-job"], j["labels"]["trainops-attempt"]) for j in hub.created_jobs()
    )
    assert max(created.values()) == 1, created
    assert {job for job, _ in created} == set(JOBS)
    repo.cleanup()
