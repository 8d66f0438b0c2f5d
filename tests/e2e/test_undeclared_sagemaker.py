"""Runs nobody declared (DESIGN §20, issue 29 part 3) on SageMaker, through the CLI and the
SageMaker emulator: `status --all` lists, from `Search` pages, the training jobs whose tags are a
job's marks (with this repository's) but that no state file knows (orphaned), and jobs without
any trainops repository tag writing under our output folder, or tagged with this repository
but not ours (foreign); `adopt` binds only an orphaned one, at the attempt its tags name, and
records its metrics as apply does (a name the state takes); apply and prune never stop a
foreign one, even under a forged state file; another repository's run is not adoptable.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
import yaml

from tests.e2e.test_sagemaker_crash import SAGEMAKER, sm_job
from tests.emulators.sagemaker import SageMakerEmulator
from tests.support.undeclared import (
    HOUR,
    ProviderSetup,
    census,
    forge_runs,
    forget,
    ok,
    undeclared_repo,
)
from tests.support.workspace import UserRepo, config, explain
from trainops.providers.sagemaker.listing import CANNOT_TELL

__all__ = ["undeclared_repo"]  # the fixture `repo` (tests/support/undeclared.py)
OTHER = "github.com/other/models"


@pytest.fixture
def sagemaker() -> Iterator[SageMakerEmulator]:
    with SageMakerEmulator(now=time.time() - HOUR) as emu:
        yield emu
        assert emu.errors == []


@pytest.fixture
def provider_setup(sagemaker: SageMakerEmulator) -> ProviderSetup:
    cfg = config() + yaml.safe_dump({"providers": {"sagemaker": SAGEMAKER}})
    return ProviderSetup({"portraits": sm_job("portraits")}, cfg=cfg, env=sagemaker.env())


def someone_runs(
    emu: SageMakerEmulator, name: str, tags: dict[str, str] | None = None, to: str = ""
) -> str:
    """A training job someone created by hand in the account, writing to `to` (by default
    our output folder, `providers.sagemaker.output_uri`)."""
    import boto3

    env = emu.env()
    client = boto3.client(
        "sagemaker",
        endpoint_url=emu.url,
        region_name=env["AWS_REGION"],
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    client.create_training_job(
        TrainingJobName=name,
        AlgorithmSpecification={"TrainingImage": "acme/train:1", "TrainingInputMode": "File"},
        RoleArn=SAGEMAKER["role_arn"],
        OutputDataConfig={"S3OutputPath": to or SAGEMAKER["output_uri"]},
        ResourceConfig={"InstanceType": "ml.g5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 30},
        StoppingCondition={"MaxRuntimeInSeconds": 86400},
        Tags=[{"Key": k, "Value": v} for k, v in (tags or {}).items()],
    )
    return name


def orphaned(repo: UserRepo, emu: SageMakerEmulator, after: float = HOUR - 5) -> str:
    """Portraits' job as trainops started it, `after` seconds ago (by default an hour: it has
    finished); then the state forgets it."""
    ok(repo, "apply")
    [name] = emu.jobs
    emu.advance(after)
    forget(repo, "portraits")
    return name


def test_status_all_lists_orphaned_and_foreign_jobs_then_adopt_binds_the_orphan(
    repo: UserRepo, sagemaker: SageMakerEmulator
) -> None:
    ours = orphaned(repo, sagemaker, after=HOUR - 300)  # the emulator's clock 5 min behind
    theirs = someone_runs(sagemaker, "portraits-by-hand")
    someone_runs(sagemaker, "elsewhere", {"team": "vision"}, to="s3://vision/out")  # not ours
    sagemaker.advance(100)  # theirs is training
    sagemaker.calls.clear()
    found = census(repo)
    runs = {r["run_id"]: r for r in found["runs"]}
    assert set(runs) == {ours, theirs}
    assert (runs[ours]["kind"], runs[ours]["health"]) == ("orphaned", "Succeeded")
    assert (runs[theirs]["kind"], runs[theirs]["job"]) == ("foreign", "portraits")
    assert runs[ours]["age_seconds"] > 3000 and runs[ours]["cost_usd"] > 0
    assert runs[theirs]["cost_usd"] > 0  # running since it was made, at ml.g5.xlarge's price
    assert found["notes"] == [f"sagemaker: {CANNOT_TELL}"]
    assert found["list_calls"] == {"sagemaker": 1} and sagemaker.calls.get("Search") == 1
    refused = repo.trainops("adopt", "portraits", theirs)
    assert refused.returncode == 1 and "sagemaker has no run" in refused.stderr, explain(refused)
    ok(repo, "adopt", "portraits", ours)
    [run] = repo.state()["portraits"].runs
    assert (run.run_id, run.attempt, run.health.value) == (ours, 1, "Succeeded")
    # As apply records it: SageMaker's `train:loss` under a name the state schema takes.
    assert run.metrics == {"train_loss": 0.25} and run.billed_seconds and run.cost_usd
    assert run.outputs["weights"].endswith(f"/{ours}/output/model.tar.gz")
    status = json.loads(ok(repo, "status", "-o", "json"))  # the state file reads back
    assert [(j["job"], j["health"]) for j in status["jobs"]] == [("portraits", "Succeeded")]
    assert [r["run_id"] for r in census(repo)["runs"]] == [theirs]
    ok(repo, "apply")
    assert len(sagemaker.jobs) == 3  # nothing created again
    assert sagemaker.calls.get("StopTrainingJob", 0) == 0


def test_a_running_orphan_is_adopted_once_its_tags_are_read(
    repo: UserRepo, sagemaker: SageMakerEmulator
) -> None:
    ours = orphaned(repo, sagemaker, after=200)  # training, past the adoption grace (120 s)
    [listed] = census(repo)["runs"]
    assert (listed["run_id"], listed["kind"], listed["health"]) == (ours, "orphaned", "Running")
    ok(repo, "adopt", "portraits", ours)
    [run] = repo.state()["portraits"].runs
    assert (run.run_id, run.attempt, run.health.value) == (ours, 1, "Running")
    sagemaker.advance(HOUR)
    ok(repo, "apply")
    [run] = repo.state()["portraits"].runs
    assert (run.health.value, run.metrics) == ("Succeeded", {"train_loss": 0.25})
    assert len(sagemaker.jobs) == 1


def test_a_job_with_another_repositorys_marks_is_not_adoptable(
    repo: UserRepo, sagemaker: SageMakerEmulator
) -> None:
    from trainops.providers.sagemaker import training_job_name
    from trainops.repoid import scope

    ours = orphaned(repo, sagemaker)
    tags = dict(sagemaker.jobs[ours].tags)
    job, revision = tags["trainops-job"], tags["trainops-revision"]
    # Another repository's trainops, same job name, revision and input: its own name and tags,
    # writing beside ours.
    theirs = someone_runs(
        sagemaker,
        training_job_name(job, revision, 2, OTHER),
        {**tags, "trainops-attempt": "2", "trainops-repository": scope(OTHER)},
    )
    # Someone copying our tags, repository too, on a name that is not ours for the attempt.
    forged = someone_runs(
        sagemaker, training_job_name(job, revision, 3, OTHER), {**tags, "trainops-attempt": "3"}
    )
    found = {r["run_id"]: r["kind"] for r in census(repo)["runs"]}
    assert found == {ours: "orphaned", forged: "foreign"}
    for name in (theirs, forged):
        refused = repo.trainops("adopt", "portraits", name)
        assert refused.returncode == 1, explain(refused)
        assert "not this repository's" in refused.stderr
    assert "portraits" not in repo.state()


def test_apply_and_prune_never_stop_a_foreign_job_even_under_a_forged_state_file(
    repo: UserRepo, sagemaker: SageMakerEmulator
) -> None:
    from trainops.providers.sagemaker import training_job_name

    ours = orphaned(repo, sagemaker)
    ok(repo, "adopt", "portraits", ours)
    tags = dict(sagemaker.jobs[ours].tags)
    running = someone_runs(
        sagemaker,
        training_job_name(tags["trainops-job"], tags["trainops-revision"], 1, OTHER),
        tags,
    )
    forge_runs(repo, "portraits", running)  # the adopted job's record now names the foreign one
    refused = repo.trainops("adopt", "portraits", running)
    assert refused.returncode == 1, explain(refused)
    repo.write_job("portraits", sm_job("portraits").replace("epochs: 2", "epochs: 3"))
    repo.commit("new revision")
    repo.trainops("apply")
    repo.remove_job("portraits")
    repo.commit("drop portraits")
    repo.trainops("apply")
    assert sagemaker.jobs[running].stop_at is None


def test_the_search_follows_pages_and_stops_at_max_calls(sagemaker: SageMakerEmulator) -> None:
    from trainops.manifest import SageMakerConfig
    from trainops.providers.base import Intent
    from trainops.providers.sagemaker import SageMakerProvider

    for n in range(150):
        someone_runs(sagemaker, f"by-hand-{n}")
        sagemaker.advance(1)  # newest first
    provider = SageMakerProvider(SageMakerConfig(**SAGEMAKER))
    probe = Intent("by-hand-0", "0" * 12, 0, "h", 0.0, "sagemaker", repository=OTHER)
    env = sagemaker.env()
    with pytest.MonkeyPatch.context() as mp:
        for name, value in env.items():
            mp.setenv(name, value)
        cut = provider.list_runs([probe], max_calls=1)
        whole = provider.list_runs([probe], max_calls=10)
    assert (cut.calls, cut.complete, len(cut.runs)) == (1, False, 100)
    assert cut.runs[0].seen.run_id == "by-hand-149"  # newest first
    assert (whole.calls, whole.complete, len(whole.runs)) == (2, True, 150)
    assert {r.job for r in whole.runs} == {"by-hand-0"} and all(r.foreign for r in whole.runs)
