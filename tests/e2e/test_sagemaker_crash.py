"""Never twice with SageMaker (DESIGN §8, issue 31): `trainops apply` killed by SIGKILL at step
boundaries while it submits three training jobs, then applied again until every job succeeded.
Counted at the emulator: exactly one training job per (job, revision, attempt). A kill after
the create, before its run id was saved, is healed by one describe of the deterministic name
(adoption), never by a second create; the service itself would refuse one (ResourceInUse)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.emulators.sagemaker import SageMakerEmulator
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
SAGEMAKER = {
    "role_arn": "arn:aws:iam::123456789012:role/trainops",
    "output_uri": "s3://acme-models/sm",
}


def sm_job(name: str) -> str:
    spec = {
        "provider": "sagemaker",
        "image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/train:1",
        "hardware": "ml.g5.xlarge",
        "input": {"name": name, "epochs": 2},
        "budget": {"max_duration": "2h"},
    }
    doc = {"apiVersion": "trainops/v1", "kind": "TrainingJob", "metadata": {"name": name}}
    return yaml.safe_dump({**doc, "spec": spec}, sort_keys=False)


@pytest.fixture
def sagemaker() -> Iterator[SageMakerEmulator]:
    with SageMakerEmulator() as emu:
        yield emu
        assert emu.errors == []


# TRAINOPS_SWEEP=full: every point; by default the ones where a crash loses the most
@pytest.mark.parametrize("point", sweep.points(CRASHPOINTS, ["after-submit", "before-push#2"]))
def test_kill_at_each_step_boundary_then_apply_again(
    tmp_path: Path, sagemaker: SageMakerEmulator, point: str
) -> None:
    cfg = config() + yaml.safe_dump({"providers": {"sagemaker": SAGEMAKER}})
    repo = UserRepo.create(tmp_path, {name: sm_job(name) for name in JOBS}, cfg=cfg)
    repo.env = sagemaker.env()
    killed = repo.trainops("apply", env={"TRAINOPS_CRASHPOINT": point})
    assert killed.returncode == -9, f"apply was not killed at {point}\n{explain(killed)}"
    if point in ("after-intents", "after-submit"):
        # Intents saved, at most one created: the next apply adopts it by one describe and waits
        # the adoption grace (120 s of the CLI's real clock) for the rest: nothing more created.
        repo.apply_ok()
        created = Counter(j.tags["trainops-job"] for j in sagemaker.jobs.values())
        assert len(created) == (1 if point == "after-submit" else 0), created
        assert not created or max(created.values()) == 1
        repo.cleanup()
        return
    for _ in range(6):
        repo.apply_ok()
        sagemaker.advance(600)
        status = repo.trainops("status", "--output", "json")
        health = {j["job"]: j["health"] for j in json.loads(status.stdout)["jobs"]}
        if set(health.values()) == {"Succeeded"}:
            break
    assert set(health.values()) == {"Succeeded"}, health
    created = Counter(
        (j.tags["trainops-job"], j.tags["trainops-attempt"]) for j in sagemaker.jobs.values()
    )
    assert max(created.values()) == 1, created
    assert {job for job, _ in created} == set(JOBS)
    repo.cleanup()


def test_plan_shows_the_hyperparameter_strings_and_the_worst_case(
    tmp_path: Path, sagemaker: SageMakerEmulator
) -> None:
    cfg = config() + yaml.safe_dump({"providers": {"sagemaker": SAGEMAKER}})
    repo = UserRepo.create(tmp_path, {"a": sm_job("a")}, cfg=cfg)
    repo.env = sagemaker.env()
    shown = repo.trainops("plan")
    assert shown.returncode == 0, explain(shown)
    assert 'a: hyperparameter epochs = "2"' in shown.stdout
    assert 'a: hyperparameter name = "a"' in shown.stdout
    # ml.g5.xlarge at 1.408 USD/h for the 2h budget
    assert "$2.82" in shown.stdout, shown.stdout
    assert sagemaker.jobs == {}  # plan submits nothing
    repo.cleanup()


def test_status_shows_the_secondary_status_while_the_job_runs(tmp_path: Path) -> None:
    """DescribeTrainingJob/ListTrainingJobs `SecondaryStatus` is the reason while InProgress
    (the emulator's clock is the CLI's: max_duration is measured against it)."""
    import time

    with SageMakerEmulator(now=time.time()) as sagemaker:
        cfg = config() + yaml.safe_dump({"providers": {"sagemaker": SAGEMAKER}})
        repo = UserRepo.create(tmp_path, {"a": sm_job("a")}, cfg=cfg)
        repo.env = sagemaker.env()
        repo.apply_ok()
        sagemaker.advance(20)  # Downloading
        status = repo.trainops("status", "--output", "json")
        assert [j["reason"] for j in json.loads(status.stdout)["jobs"]] == ["Downloading"]
        sagemaker.advance(100)
        assert "Training" in repo.trainops("status").stdout
        assert sagemaker.errors == []
        repo.cleanup()


def test_a_secondary_status_change_writes_no_state_and_starts_no_attempt(tmp_path: Path) -> None:
    """Starting -> Downloading -> Training is what the job is doing, not a change of its run:
    apply writes no state commit for it (the state branch is not a log of provider chatter) and
    creates no second training job; status, which observes, still shows the live word."""
    import time

    with SageMakerEmulator(now=time.time()) as sagemaker:
        cfg = config() + yaml.safe_dump({"providers": {"sagemaker": SAGEMAKER}})
        repo = UserRepo.create(tmp_path, {"a": sm_job("a")}, cfg=cfg)
        repo.env = sagemaker.env()
        repo.apply_ok()
        sagemaker.advance(20)  # Downloading
        repo.apply_ok()
        commits = repo.state_commits()
        recorded = repo.state()["a"].runs
        sagemaker.advance(100)  # Training
        repo.apply_ok()
        assert repo.state_commits() == commits
        assert repo.state()["a"].runs == recorded and recorded[0].detail == ""
        status = repo.trainops("status", "--output", "json")
        assert [j["reason"] for j in json.loads(status.stdout)["jobs"]] == ["Training"]
        assert [j.tags["trainops-attempt"] for j in sagemaker.jobs.values()] == ["1"]
        assert sagemaker.errors == []
        repo.cleanup()
