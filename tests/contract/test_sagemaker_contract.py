"""What the SageMaker provider promises beyond the shared suite (issue 31), at the emulator:
a duplicate create is ResourceInUse and adopted only with this attempt's tags, throttling is
waited out by trainops' retry layer, a pass over many active jobs costs list pages (not a
describe each), a finished job's metrics, weights and billed seconds, the budget as
MaxRuntimeInSeconds, and the request's HyperParameters strings and channels."""

from __future__ import annotations

import dataclasses

import pytest

from tests.contract.conftest import Harness
from trainops.providers.sagemaker import check_run, training_job_name
from trainops.state.model import Health


@pytest.fixture
def sm(sagemaker_harness: Harness) -> Harness:
    return sagemaker_harness


def test_names_are_deterministic_and_fit_the_service() -> None:
    long = "x" * 63
    a = training_job_name(long, "0123456789ab", 11, "github.com/acme/repo")
    b = training_job_name(long[:-1] + "y", "0123456789ab", 11, "github.com/acme/repo")
    assert len(a) <= 63 and a != b
    assert a == training_job_name(long, "0123456789ab", 11, "github.com/acme/repo")
    assert a != training_job_name(long, "0123456789ab", 11, "github.com/other/repo")


def test_a_second_create_is_resource_in_use_and_is_the_same_run(sm: Harness) -> None:
    sub = sm.submission(sm.job("twice", "long"))
    first = sm.provider.submit(sub)
    again = sm.provider.submit(sub)
    assert first.run_id == again.run_id and sm.runs() == 1
    assert sm.extra["emu"].calls["CreateTrainingJob"] == 2  # the service refused the second


def test_adoption_requires_this_attempts_tags(sm: Harness) -> None:
    sub = sm.submission(sm.job("adopt", "long"))
    intent = sm.intent(sub, sm.now() - 1)
    ref = sm.provider.submit(sub)
    assert sm.provider.find(intent) is not None
    assert sm.provider.find(dataclasses.replace(intent, taken=frozenset({ref.run_id}))) is None
    assert sm.provider.find(dataclasses.replace(intent, attempt=2)) is None
    emu = sm.extra["emu"]
    emu.jobs[ref.run_id].tags["trainops-revision"] = "ffffffffffff"  # not the one it claims
    assert sm.provider.find(intent) is None
    seen = sm.provider.observe([ref.run_id])[ref.run_id]
    assert "trainops-revision" in sm.provider.owns(
        intent, dataclasses.replace(seen, marks={"tags": emu.jobs[ref.run_id].tags})
    )


def test_throttling_is_waited_out(sm: Harness) -> None:
    sm.extra["emu"].inject("CreateTrainingJob", "throttle")
    ref = sm.provider.submit(sm.submission(sm.job("slow", "long")))
    assert sm.runs() == 1 and ref.run_id in sm.extra["emu"].jobs


def test_a_pass_over_many_active_jobs_costs_list_pages(sm: Harness) -> None:
    refs = [sm.provider.submit(sm.submission(sm.job(f"j{i}", "long"))) for i in range(150)]
    emu = sm.extra["emu"]
    emu.calls.clear()
    seen = sm.provider.observe([r.run_id for r in refs])
    assert len(seen) == 150 and all(o.health.active for o in seen.values())
    # 150 InProgress: 2 pages; Stopping: 1 (empty); no describe
    assert emu.calls == {"ListTrainingJobs": 3}


def test_a_finished_job_reports_metrics_weights_and_billed_seconds(sm: Harness) -> None:
    ref = sm.provider.submit(sm.submission(sm.job("out", "ok")))
    done = sm.settle(sm.provider, ref.run_id)
    assert done.health is Health.SUCCEEDED
    assert done.outputs == {"weights": f"s3://acme-models/sm/{ref.run_id}/output/model.tar.gz"}
    assert done.metrics == {"train_loss": 0.25}  # as the state records it (metrics.named)
    assert done.billed_seconds is not None and done.billed_seconds > 0
    run = dataclasses.make_dataclass("R", ["run_id", "revision", "attempt", "outputs"])
    assert check_run("out", run(ref.run_id, sm.revision, 1, done.outputs)) == ""
    forged = {"weights": "s3://acme-models/sm/other/output/model.tar.gz"}
    assert check_run("out", run(ref.run_id, sm.revision, 1, forged))


def test_the_request_carries_strings_channels_tags_and_the_budget(sm: Harness) -> None:
    ref = sm.provider.submit(sm.submission(sm.job("req", "long")))
    request = sm.extra["emu"].jobs[ref.run_id].request
    assert request["HyperParameters"] == {"epochs": "3", "kind": "long"}
    assert [c["ChannelName"] for c in request["InputDataConfig"]] == ["train"]
    assert request["StoppingCondition"] == {"MaxRuntimeInSeconds": 86400}
    tags = {t["Key"]: t["Value"] for t in request["Tags"]}
    assert tags["trainops-job"] == "req" and tags["trainops-attempt"] == "1"


def test_a_stopped_job_is_canceled_and_a_failed_one_says_why(sm: Harness) -> None:
    ref = sm.provider.submit(sm.submission(sm.job("stop", "long")))
    sm.provider.cancel(ref.run_id)
    assert sm.provider.observe([ref.run_id])[ref.run_id].health is Health.RUNNING  # Stopping
    assert sm.settle(sm.provider, ref.run_id).health is Health.CANCELED
    bad = sm.provider.submit(sm.submission(sm.job("bad", "fail")))
    seen = sm.settle(sm.provider, bad.run_id)
    assert seen.health is Health.FAILED and seen.error.startswith("AlgorithmError")
