"""One builder of the ownership marks (DESIGN §9, `providers/marks.py`): Ray metadata, SageMaker
tags and Hugging Face labels of one submission carry the same job, revision and attempt, the
same input hash where they carry one, and the repository as each provider spells it; the one
reader names the attempt of each, and each provider's judge accepts its own marks and refuses
another repository's."""

from __future__ import annotations

from typing import Any

import pytest

from trainops.manifest import Job, TrainingJob
from trainops.providers import marks
from trainops.providers.base import Intent, Submission
from trainops.providers.huggingface.labels import labels_of, not_owned
from trainops.providers.ray.ids import metadata, submission_id
from trainops.providers.ray.ids import not_owned as ray_not_owned
from trainops.providers.sagemaker.names import not_owned as sm_not_owned
from trainops.providers.sagemaker.names import submission_tags, training_job_name
from trainops.repoid import scope
from trainops.yamlsource import Document

REPO, REV = "github.com/acme/models", "0123456789ab"


def _submission(repository: str = REPO) -> Submission:
    data: dict[str, Any] = {
        "apiVersion": "trainops/v1",
        "kind": "TrainingJob",
        "metadata": {"name": "portraits"},
        "spec": {"provider": "ray", "command": ["python", "train.py"]},
    }
    job = Job(TrainingJob.model_validate(data), Document("jobs/portraits.yaml", 0, data))
    return Submission(
        job, REV, 2, {}, "f" * 16, "s.yaml", source_commit="c" * 40, repository=repository
    )


def test_every_provider_writes_the_same_marks_of_one_submission() -> None:
    sub = _submission()
    ray, tags = metadata(sub), submission_tags(sub)
    hf = labels_of(sub.job.name, sub.revision, sub.attempt, sub.input_hash, sub.repository)
    run = {"trainops-job": "portraits", "trainops-revision": REV, "trainops-attempt": "2"}
    for given in (ray, tags, hf):
        assert {k: given[k] for k in marks.RUN} == run
        assert marks.attempt_named(given) == 2
    assert ray == tags | {"trainops-repository": REPO}  # Ray keeps the full id
    assert tags["trainops-repository"] == hf["trainops-repository"] == scope(REPO)
    assert ray["trainops-input-hash"] == tags["trainops-input-hash"] == sub.input_hash
    assert ray["trainops-source-commit"] == tags["trainops-source-commit"] == "c" * 40
    # Without a repository id: Ray and HF write no repository mark, SageMaker its digest (the
    # training job name ends in it).
    bare = _submission("")
    assert "trainops-repository" not in metadata(bare)
    assert submission_tags(bare)["trainops-repository"] == scope("")


@pytest.mark.parametrize("repository", [REPO, "github.com/other/models"])
def test_each_judge_accepts_its_own_marks_and_refuses_another_repositorys(repository: str) -> None:
    sub = _submission(repository)
    intent = Intent("portraits", REV, 2, "f" * 16, 0.0, "ray", repository=REPO)
    ray_id = submission_id("portraits", REV, 2, repository)
    name = training_job_name("portraits", REV, 2, repository)
    hf = labels_of("portraits", REV, 2, "f" * 16, repository)
    why = [
        ray_not_owned(ray_id, metadata(sub), intent),
        sm_not_owned(name, submission_tags(sub), intent),
        not_owned(hf, intent, adopting=True),
    ]
    if repository == REPO:
        assert why == ["", "", ""]
    else:
        assert all(why), why


@pytest.mark.parametrize("value", [None, 2, "", "0", "x", "123456", "-1"])
def test_an_attempt_mark_not_as_the_builder_writes_one_names_none(value: object) -> None:
    assert marks.attempt_named({"trainops-attempt": value}) is None
