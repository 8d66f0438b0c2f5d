"""A provider with no `output_uri` configured still lists: a run that names an output folder of
its own is judged by its marks alone, never with a traceback (`status --all` on a Ray cluster
or SageMaker account set up without a shared output location)."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from trainops.providers.base import Intent
from trainops.providers.ray import listing as ray_listing
from trainops.providers.sagemaker import listing as sm_listing

PROBE = Intent(
    job="a",
    revision="r1",
    attempt=1,
    input_hash="h",
    created_at=0.0,
    provider="x",
    repository="github.com/acme/models",
)


@pytest.mark.parametrize("output_uri", [None, ""])
def test_a_ray_job_writing_to_a_folder_is_not_judged_by_a_folder_nobody_configured(
    output_uri: str | None,
) -> None:
    info = SimpleNamespace(
        submission_id="raysubmit_foreign",
        start_time=1_700_000_000_000,
        metadata={},
        runtime_env={"env_vars": {"TRAINOPS_OUTPUT_URI": "/shared/out/a-r1"}},
        status="RUNNING",
        entrypoint="python train.py",
    )
    assert ray_listing.judge(info, output_uri, [PROBE]) is None


@pytest.mark.parametrize("output_uri", [None, ""])
def test_a_sagemaker_job_without_our_tag_is_not_foreign_without_an_output_uri(
    output_uri: str | None,
) -> None:
    job = {
        "TrainingJobName": "someone-elses-job",
        "CreationTime": datetime(2026, 12, 7, 10, tzinfo=UTC),  # as boto3 gives it
        "TrainingJobStatus": "InProgress",
        "OutputDataConfig": {"S3OutputPath": "s3://bucket/out"},
        "Tags": [],
    }
    assert sm_listing.judge(job, output_uri, [PROBE]) is None
