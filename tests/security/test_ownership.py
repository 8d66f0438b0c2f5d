"""Ownership comes from the provider's record (DESIGN §9 "Ownership marks", issue 26 findings 1
and 9a): a state file can name any run id, so before trainops cancels, adopts, delivers or
promotes a recorded run, the provider's own record must carry this job's marks (HF Jobs labels,
Ray metadata and a submission id scoped to the repository, Replicate's trainer, source, time
and input). A run that is not this job's is left alone, its state file named as a problem, and
apply exits non-zero. A Hub commit a promotion points a ref at must be one trainops' delivery
wrote for that run; an S3 promotion source must hold that run's delivery manifest.

The attacker pushes to the state branch (anyone with push rights can); the "colleague" uses the
same shared namespace, account or cluster through the official clients, as a person would.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.emulators.huggingface import HubEmulator
from tests.emulators.replicate import (
    CANCEL_PATH,
    FLUX_LORA_VERSION,
    ReplicateEmulator,
    SimClock,
)
from tests.security.test_state_branch import forge
from tests.support.gitrepo import git
from tests.support.workspace import UserRepo, config, explain, manifest
from trainops.providers.base import Intent, Observation
from trainops.state.layout import state_path
from trainops.state.model import Health

REV = "0123456789ab"
R8_TOKEN = "r8_" + "OwnershipT0ken" * 2


def ghost(provider: str, run_id: str, **fields: Any) -> dict[str, str]:
    """A state file for a job that is not in git, naming `run_id` as its active run."""
    run = {
        "revision": REV,
        "attempt": 1,
        "provider": provider,
        "input_hash": "0" * 16,
        "created_at": time.time() - 60,
        "run_id": run_id,
        "health": "Running",
        **fields,
    }
    return {state_path("ghost"): json.dumps({"format": 1, "job": "ghost", "runs": [run]})}


def left_alone(result: Any, run_id: str) -> bool:
    return f"{state_path('ghost')}: run {run_id} is not this job's run: left alone" in (
        result.stderr
    )


# ---- Hugging Face Jobs: a colleague's job in the shared namespace ----------------------------


@pytest.fixture
def hub() -> Iterator[HubEmulator]:
    with HubEmulator(namespaces={"acme"}) as emu:
        yield emu
        assert emu.errors == []


def hf_repo(tmp_path: Path, hub: HubEmulator, jobs: dict[str, str] | None = None) -> UserRepo:
    cfg = config() + yaml.safe_dump({"providers": {"huggingface": {"namespace": "acme"}}})
    repo = UserRepo.create(tmp_path, jobs or {}, cfg=cfg)
    repo.env = hub.env()
    return repo


def colleague_job(hub: HubEmulator, labels: dict[str, str] | None = None) -> str:
    """A job someone started by hand in the shared namespace (no trainops labels unless given)."""
    from huggingface_hub import HfApi

    api = HfApi(endpoint=hub.url, token=hub.token)
    info = api.run_job(
        image="python:3.12",
        command=["python", "finetune.py"],
        flavor="cpu-basic",
        labels=labels,
        namespace="acme",
    )
    return str(info.id)


def test_a_ghost_naming_a_colleagues_hf_job_never_cancels_it(
    tmp_path: Path, hub: HubEmulator
) -> None:
    repo = hf_repo(tmp_path, hub)
    theirs = colleague_job(hub)
    hub.advance(10)  # it is RUNNING
    forge(repo, ghost("huggingface", theirs))

    result = repo.trainops("apply")

    assert result.returncode == 1, explain(result)
    assert left_alone(result, theirs), result.stderr
    assert "no trainops labels" in result.stderr
    assert hub.calls("job-cancel") == []
    assert hub.jobs[theirs].stage(hub.now)[0] == "RUNNING"
    plan = repo.trainops("plan")  # the plan says the same, and plans no cancel
    assert plan.returncode == 1 and left_alone(plan, theirs), explain(plan)
    assert "cancel" not in plan.stdout
    repo.cleanup()


def test_an_hf_job_of_another_repository_with_the_same_job_is_left_alone(
    tmp_path: Path, hub: HubEmulator
) -> None:
    """The same job name, revision and attempt, submitted by another repository's trainops:
    every label matches but the repository's."""
    from trainops.providers.huggingface import labels_of

    repo = hf_repo(tmp_path, hub)
    theirs = colleague_job(hub, labels_of("ghost", REV, 1, "0" * 16, "github.com/other/repo"))
    hub.advance(10)
    forge(repo, ghost("huggingface", theirs))

    result = repo.trainops("apply")

    assert result.returncode == 1, explain(result)
    assert left_alone(result, theirs) and "another repository" in result.stderr, result.stderr
    assert hub.calls("job-cancel") == []
    repo.cleanup()


def test_an_hf_job_carries_this_repositorys_mark_and_is_followed(
    tmp_path: Path, hub: HubEmulator
) -> None:
    """The marks trainops writes are the ones it checks: a job of this repository is observed,
    succeeds and is recorded as usual (nothing left alone)."""
    job = {
        "apiVersion": "trainops/v1",
        "kind": "TrainingJob",
        "metadata": {"name": "a"},
        "spec": {
            "provider": "huggingface",
            "image": "python:3.12",
            "command": ["python", "train.py"],
            "hardware": "a10g-small",
            "budget": {"max_duration": "1h"},
        },
    }
    repo = hf_repo(tmp_path, hub, {"a": yaml.safe_dump(job, sort_keys=False)})
    repo.apply_ok()
    (created,) = hub.created_jobs(**{"trainops-job": "a"})
    assert created["labels"]["trainops-repository"]  # the repository's digest
    hub.advance(3600)
    done = repo.apply_ok()
    assert "left alone" not in done.stderr
    assert repo.state()["a"].runs[-1].health is Health.SUCCEEDED
    repo.cleanup()


def test_a_forged_succeeded_record_never_delivers_a_colleagues_weights(
    tmp_path: Path, hub: HubEmulator
) -> None:
    """A record of a job in git claims a colleague's finished job (which pushed to their private
    repository) as its succeeded run: its delivery would copy their weights into this job's
    target. The terminal run was not observed this pass, so it is observed before delivery."""
    from huggingface_hub import HfApi

    job = {
        "apiVersion": "trainops/v1",
        "kind": "TrainingJob",
        "metadata": {"name": "a"},
        "spec": {
            "provider": "huggingface",
            "image": "python:3.12",
            "command": ["python", "train.py"],
            "hardware": "a10g-small",
            "budget": {"max_duration": "1h"},
            "deliver": [{"huggingface": {"repo": "acme/a-delivered"}}],
        },
    }
    repo = hf_repo(tmp_path, hub, {"a": yaml.safe_dump(job, sort_keys=False)})
    api = HfApi(endpoint=hub.url, token=hub.token)
    info = api.run_job(
        image="python:3.12",
        command=["python", "finetune.py"],
        flavor="cpu-basic",
        env={"TRAINOPS_OUTPUT_REPO": "acme/private-out"},
        namespace="acme",
    )
    hub.advance(3600)
    api.inspect_job(job_id=info.id, namespace="acme")  # completed: it pushed its weights
    sha = hub.commits("acme/private-out")[-1].oid
    record = ghost("huggingface", str(info.id), health="Succeeded")
    run = json.loads(record.pop(state_path("ghost")))["runs"][0]
    run.update(revision=repo.revisions()["a"], outputs={"weights": f"acme/private-out@{sha}"})
    forge(repo, {state_path("a"): json.dumps({"format": 1, "job": "a", "runs": [run]})})

    result = repo.trainops("apply")

    assert result.returncode == 1, explain(result)
    assert f"{state_path('a')}: run {info.id} is not this job's run: left alone" in result.stderr
    assert "acme/a-delivered" not in hub.repos
    assert hub.created_jobs(**{"trainops-job": "a"}) == []  # nor started on that record's word
    repo.cleanup()


# ---- Replicate: a training started on the website with another trainer ----------------------


def test_a_ghost_naming_someone_elses_replicate_training_never_cancels_it(
    tmp_path: Path,
) -> None:
    with ReplicateEmulator(
        token=R8_TOKEN, queue_seconds=5, run_seconds=100, clock=SimClock(time.time())
    ) as emu:
        theirs = emu.create_training(
            f"someone/sdxl-trainer:{'ab' * 32}", "someone/sdxl-tuned", {"steps": 10}
        )
        repo = UserRepo.create(tmp_path, {})
        repo.env.update({"REPLICATE_BASE_URL": emu.base_url, "REPLICATE_API_TOKEN": R8_TOKEN})
        trainer = f"ostris/flux-dev-lora-trainer:{FLUX_LORA_VERSION}"
        forge(repo, ghost("replicate", theirs, trainer=trainer, destination="acme/portraits"))

        result = repo.trainops("apply")

        assert result.returncode == 1, explain(result)
        assert left_alone(result, theirs), result.stderr
        assert emu.count("POST", CANCEL_PATH) == 0
        assert [t.status for t in emu.trainings] == ["starting"]
        repo.cleanup()


# ---- promotion: a forged Hub commit in state (finding 9a) ------------------------------------

TRAIN = """\
import json, os
out = os.environ["TRAINOPS_OUTPUT_DIR"]
open(os.path.join(out, "weights.bin"), "w").write("weights of " + os.environ["TRAINOPS_RUN_ID"])
json.dump({"eval_loss": 0.1}, open(os.path.join(out, "metrics.json"), "w"))
"""


def test_a_forged_hub_commit_in_state_never_moves_the_prod_ref(
    tmp_path: Path, hub: HubEmulator
) -> None:
    key = "huggingface:acme/m"
    repo = UserRepo.create(tmp_path, {})
    repo.env.update({**hub.env(), "HF_HOME": str(tmp_path / "hf-home")})
    repo.write("train_m.py", TRAIN)
    promote = {
        "when": {"eval_loss": "< 0.25"},
        "to": [{"huggingface": {"repo": "acme/m", "ref": "prod"}}],
    }
    repo.write_job(
        "m",
        manifest(
            "m",
            command=["python", "train_m.py"],
            deliver=[{"huggingface": {"repo": "acme/m"}}],
            promote=promote,
        ),
    )
    repo.commit("m, promoted to prod")
    repo.apply_ok()
    repo.wait_all_terminal()
    repo.apply_ok()  # delivered and promoted
    ours = hub.ref("acme/m", "prod")
    first = hub.commits("acme/m")[0].oid  # the repository's initial commit: not a delivery
    assert ours and ours != first

    assert repo.remote is not None
    record = json.loads(git(repo.remote, "show", f"{repo.branch}:{state_path('m')}"))
    run = record["runs"][-1]
    run["delivered"] = {**run["delivered"], key: first}
    run["promotions"] = {}  # so the planner promotes it again
    forge(repo, {state_path("m"): json.dumps(record)})

    result = repo.trainops("apply")

    assert result.returncode != 0, explain(result)
    assert f"commit {first[:12]} of acme/m is not the one trainops delivered run" in result.stderr
    assert hub.ref("acme/m", "prod") == ours
    assert hub.ref_moves("acme/m", "prod") == [ours]
    repo.cleanup()


# ---- the marks themselves: every way a record can differ from the provider's -----------------


def _intent(**kw: Any) -> Intent:
    fields: dict[str, Any] = {
        "job": "a",
        "revision": REV,
        "attempt": 2,
        "input_hash": "f" * 16,
        "created_at": 1_700_000_000.0,
        "provider": "huggingface",
        "repository": "github.com/acme/models",
    }
    return Intent(**{**fields, **kw})


@pytest.mark.parametrize(
    ("labels", "why"),
    [
        ({}, "no trainops labels"),
        ({"job": "b"}, "trainops-job"),  # our own run, recorded under another job's name
        ({"attempt": 1}, "trainops-attempt"),  # another attempt's run
        ({"input_hash": "e" * 16}, "trainops-intent"),  # same attempt, another input
        ({"repository": "github.com/evil/fork"}, "another repository"),
    ],
)
def test_hf_labels_of_any_other_run_are_refused(labels: dict[str, Any], why: str) -> None:
    from trainops.providers.huggingface import labels_of, not_owned

    intent = _intent()
    if labels:
        kw = {"job": "a", "revision": REV, "attempt": 2, "input_hash": "f" * 16}
        kw["repository"] = "github.com/acme/models"
        given = labels_of(**{**kw, **labels})
    else:
        given = {}
    assert why in not_owned(given, intent)
    ours = labels_of("a", REV, 2, "f" * 16, "github.com/acme/models")
    assert not_owned(ours, intent) == ""
    legacy = {k: v for k, v in ours.items() if k != "trainops-repository"}
    assert not_owned(legacy, intent) == ""  # started before the repository label existed


def test_ray_ids_are_scoped_to_the_repository_and_old_ids_are_still_followed() -> None:
    from trainops.providers.ray import not_owned, submission_id

    intent = _intent(provider="ray")
    ours = submission_id("a", REV, 2, intent.repository)
    theirs = submission_id("a", REV, 2, "github.com/other/models")
    legacy = submission_id("a", REV, 2)
    assert len({ours, theirs, legacy}) == 3
    meta = {"trainops-job": "a", "trainops-revision": REV, "trainops-attempt": "2"}
    scoped = {**meta, "trainops-repository": intent.repository}
    assert not_owned(ours, scoped, intent) == ""
    assert not_owned(legacy, meta, intent) == ""  # a run recorded before ids were scoped
    assert "not this repository's" in not_owned(theirs, scoped, intent)
    other = {**meta, "trainops-repository": "github.com/other/models"}
    assert "unscoped id" in not_owned(legacy, other, intent)
    assert "metadata" in not_owned(ours, {**scoped, "trainops-attempt": "1"}, intent)
    assert not_owned(ours, {**scoped, "trainops-input-hash": "e" * 16}, intent)


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"model": "someone/other"}, "made with"),
        ({"version": "0" * 64}, "another version"),
        ({"source": "web"}, "website"),
        ({"created_at": "2023-11-14T21:00:00Z"}, "before this job's intent"),
        ({"output": {"version": "evil/sink:" + "1" * 64}}, "output goes to"),
        ({"input": {"steps": 2}}, "input is not the one"),
    ],
)
def test_replicate_marks_of_any_other_training_are_refused(
    change: dict[str, Any], why: str
) -> None:
    from trainops.providers.base import input_hash
    from trainops.providers.replicate import ReplicateProvider

    provider = ReplicateProvider(environ={})
    given = {"steps": 1}
    intent = _intent(
        provider="replicate",
        trainer=f"ostris/flux-dev-lora-trainer:{FLUX_LORA_VERSION}",
        destination="acme/portraits",
        input_hash=input_hash(given),
    )
    item = {
        "model": "ostris/flux-dev-lora-trainer",
        "version": FLUX_LORA_VERSION,
        "input": given,
        "created_at": "2023-11-14T22:15:00Z",  # 1_700_000_100: after the intent
        "source": "api",
        "output": None,
    }
    seen = Observation("r" * 26, Health.RUNNING, marks=item)
    assert provider.owns(intent, seen) == ""
    assert why in provider.owns(
        intent, Observation("r" * 26, Health.RUNNING, marks={**item, **change})
    )
    removed = Observation("r" * 26, Health.SUCCEEDED, marks={**item, "input": {}})
    assert provider.owns(intent, removed) == ""  # the API dropped the input after a while


def test_the_repository_id_never_comes_from_the_tree_and_drops_credentials(tmp_path: Path) -> None:
    from trainops.repoid import repository_id

    root = tmp_path / "clone"
    root.mkdir()
    git(root, "init", "-q")
    git(
        root,
        "remote",
        "add",
        "origin",
        "https://x-access-token:ghs_secret@GitHub.com/Acme/Models.git",
    )
    (root / "trainops.yaml").write_text("repository: github.com/victim/repo\n")
    assert repository_id(root, {}) == "github.com/acme/models"
    actions = {"GITHUB_ACTIONS": "true", "GITHUB_REPOSITORY": "Acme/Models"}
    assert repository_id(root, actions) == "github.com/acme/models"  # the same in CI
    assert repository_id(root, {"TRAINOPS_REPOSITORY_ID": "models"}) == "models"


def test_a_colleague_copying_a_jobs_labels_without_the_repository_is_never_adopted(
    hub: HubEmulator,
) -> None:
    """Labels are visible to everyone in the namespace. A colleague who starts a job with this
    job's labels but no repository label (or another's) is not found by adoption: an intent of
    this trainops is always submitted with the repository label."""
    from trainops.providers.huggingface import HuggingFaceProvider, labels_of

    ours = "github.com/acme/models"
    provider = HuggingFaceProvider(namespace="acme", environ=hub.env())
    intent = Intent("portraits", REV, 1, "0" * 16, 0.0, "huggingface", repository=ours)
    copied = labels_of("portraits", REV, 1, "0" * 16)
    colleague_job(hub, copied)
    colleague_job(hub, labels_of("portraits", REV, 1, "0" * 16, "github.com/other/repo"))
    assert provider.find(intent) is None
    mine = colleague_job(hub, labels_of("portraits", REV, 1, "0" * 16, ours))
    found = provider.find(intent)
    assert found is not None and found.run_id == mine


# ---- SageMaker: a training job of this name that trainops did not submit ---------------------

SAGEMAKER = {
    "role_arn": "arn:aws:iam::123456789012:role/trainops",
    "output_uri": "s3://acme-models/sm",
}
OURS = "github.com/acme/ours"


def colleague_training_job(emu: Any, name: str, tags: dict[str, str]) -> None:
    """A training job started with boto3 by hand in the shared account, under `name`."""
    import boto3

    client = boto3.session.Session().client("sagemaker", endpoint_url=emu.url, **_aws(emu))
    client.create_training_job(
        TrainingJobName=name,
        AlgorithmSpecification={"TrainingImage": "acme/train:1", "TrainingInputMode": "File"},
        RoleArn=SAGEMAKER["role_arn"],
        OutputDataConfig={"S3OutputPath": "s3://their-bucket/out"},
        ResourceConfig={"InstanceType": "ml.g5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 30},
        StoppingCondition={"MaxRuntimeInSeconds": 3600},
        Tags=[{"Key": k, "Value": v} for k, v in tags.items()],
    )


def _aws(emu: Any) -> dict[str, str]:
    env = emu.env()
    return {
        "region_name": env["AWS_REGION"],
        "aws_access_key_id": env["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": env["AWS_SECRET_ACCESS_KEY"],
    }


@pytest.mark.parametrize(
    ("tags", "repository"),
    [
        ({}, OURS),  # this repository's very name for the ghost's run, untagged
        ({"trainops-job": "ghost", "trainops-revision": REV, "trainops-attempt": "2"}, OURS),
        ({}, "github.com/other/repo"),  # another repository's name for it
    ],
)
def test_a_ghost_naming_a_sagemaker_job_trainops_did_not_submit_never_stops_it(
    tmp_path: Path, tags: dict[str, str], repository: str
) -> None:
    """The job is InProgress, so the list pages show it (with no tags); its name alone must
    not let a state file's claim stop it: `StopTrainingJob` is sent only after `ListTags`
    shows trainops' marks of that very name."""
    from tests.emulators.sagemaker import SageMakerEmulator
    from trainops.providers.sagemaker import training_job_name

    with SageMakerEmulator(now=time.time()) as emu:
        name = training_job_name("ghost", REV, 1, repository)
        if "trainops-attempt" in tags:
            tags = {**tags, "trainops-repository": name.rsplit("-", 1)[1]}
        colleague_training_job(emu, name, tags)
        emu.advance(100)  # Training
        cfg = config() + yaml.safe_dump({"providers": {"sagemaker": SAGEMAKER}})
        repo = UserRepo.create(tmp_path, {}, cfg=cfg)
        repo.env.update({**emu.env(), "TRAINOPS_REPOSITORY_ID": OURS})
        forge(repo, ghost("sagemaker", name))

        result = repo.trainops("apply")

        assert result.returncode in (1, 3), explain(result)  # named as foreign, or refused
        assert "left alone" in result.stderr, result.stderr
        assert emu.calls.get("StopTrainingJob", 0) == 0, emu.calls
        assert emu.describe(emu.jobs[name])["TrainingJobStatus"] == "InProgress"
        assert name in result.stderr, result.stderr
        assert emu.errors == []
        repo.cleanup()


def test_a_finished_sagemaker_job_is_never_judged_without_its_tags() -> None:
    """Delivery and promotion act on finished runs: an answer without tags is not proof."""
    from trainops.providers.sagemaker import SageMakerProvider, training_job_name

    intent = _intent(provider="sagemaker")
    name = training_job_name(intent.job, intent.revision, intent.attempt, intent.repository)
    provider = SageMakerProvider()
    assert provider.owns(intent, Observation(name, Health.SUCCEEDED)) == "its tags were not read"
    assert provider.owns(intent, Observation(name, Health.RUNNING)) == ""


def test_one_marks_comparison_names_the_first_mark_that_differs() -> None:
    """`marks.mismatch` is what HF labels, Ray metadata and SageMaker tags are judged by: every
    wanted mark exactly (a number is not its string, a missing mark is not an empty one), a
    record's value cut (it is input), and an input hash judged only where the record has one."""
    from trainops.providers.marks import mismatch as marks_mismatch

    wanted = {"trainops-job": "a", "trainops-attempt": "2"}
    assert marks_mismatch(wanted, {**wanted, "extra": "x"}, "tag") == ""
    assert marks_mismatch(wanted, {"trainops-job": "a", "trainops-attempt": 2}, "tag") == (
        "its tag trainops-attempt is '2', not '2'"
    )
    assert marks_mismatch(wanted, {}, "label") == "its label trainops-job is 'None', not 'a'"
    long = marks_mismatch(wanted, {"trainops-job": "x" * 500}, "metadata")
    assert long == f"its metadata trainops-job is {'x' * 80!r}, not 'a'"
    assert marks_mismatch(wanted, wanted, "tag", input_hash="f" * 16) == ""  # older: no hash
    other = {**wanted, "trainops-input-hash": "e" * 16}
    assert "names another input" in marks_mismatch(wanted, other, "tag", input_hash="f" * 16)
    assert marks_mismatch(wanted, other, "tag") == ""  # an intent recorded without one
