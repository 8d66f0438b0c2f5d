"""The Ray provider as a user runs it (issue 14): `trainops apply` against a real Ray head on
127.0.0.1, outputs in S3 (moto). A job trains on the cluster and writes weights and metrics to
the output URI; a second job consumes `${{ jobs.first.output.weights }}` (it reads the object);
both deliver to S3; `status` shows what each cost (wall seconds x the hardware table's price).
Counted at the cluster: one Ray job per (job, revision, attempt)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.emulators.s3 import MotoS3
from tests.support.rayhead import TIMEOUT, RayHead
from tests.support.workspace import UserRepo, config, explain

TRAIN = """\
import json, os, time
import boto3

params = json.load(open(os.environ["TRAINOPS_INPUT"]))
out = os.environ["TRAINOPS_OUTPUT_DIR"]
text = "w0"
if params.get("base"):
    bucket, _, key = params["base"].removeprefix("s3://").partition("/")
    text = boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read().decode() + "+1"
print("training on", os.environ["TRAINOPS_RUN_ID"], flush=True)
time.sleep(float(params.get("seconds", 0)))
open(os.path.join(out, "weights.bin"), "w").write(text)
loss = 0.5 if params.get("base") is None else 0.25
json.dump({"loss": loss}, open(os.path.join(out, "metrics.json"), "w"))
print("trained", text, flush=True)
"""
S3_ENV = ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL"]

pytestmark = TIMEOUT


def ray_job(name: str, input: dict[str, Any], **spec: Any) -> str:
    body = {
        "provider": "ray",
        "command": ["python", "train.py"],
        "workdir": "raytrain",
        "hardware": "ray-cpu",
        "input": input,
        "env": S3_ENV,  # the cluster has no S3 access of its own here: the jobs get it by name
        "deliver": [{"s3": {"uri": "s3://models/e2e/"}}],
        **spec,
    }
    doc = {"apiVersion": "trainops/v1", "kind": "TrainingJob", "metadata": {"name": name}}
    return yaml.safe_dump({**doc, "spec": body}, sort_keys=False)


@pytest.fixture
def s3() -> Iterator[MotoS3]:
    with MotoS3() as server:
        client = server.client()
        for bucket in ("ray-outputs", "models"):
            client.create_bucket(Bucket=bucket)
        yield server


def ray_repo(tmp_path: Path, head: RayHead, s3: MotoS3, jobs: dict[str, str]) -> UserRepo:
    cfg = config(
        providers={
            "ray": {
                "output_uri": "s3://ray-outputs/runs",
                "hardware": {"ray-cpu": {"num_cpus": 0.5, "price_per_hour": 36.0}},
            }
        }
    )
    repo = UserRepo.create(tmp_path, jobs, cfg=cfg)
    repo.write("raytrain/train.py", TRAIN)
    repo.commit("the training script")
    repo.env = {**s3.env(), "RAY_ADDRESS": head.address}
    return repo


def cluster_jobs(head: RayHead, revisions: set[str]) -> Counter[tuple[str, str]]:
    from ray.job_submission import JobSubmissionClient

    found: Counter[tuple[str, str]] = Counter()
    for info in JobSubmissionClient(head.address).list_jobs():
        meta = info.metadata or {}
        if meta.get("trainops-revision") in revisions:
            found[(meta["trainops-job"], meta["trainops-attempt"])] += 1
    return found


def test_train_on_ray_chain_the_weights_deliver_both_and_show_the_cost(
    tmp_path: Path, ray_head: RayHead, s3: MotoS3
) -> None:
    nonce = tmp_path.name  # a revision of its own: the session's cluster keeps every job
    jobs = {
        "first": ray_job("first", {"nonce": nonce, "seconds": 1}),
        "second": ray_job("second", {"nonce": nonce, "base": "${{ jobs.first.output.weights }}"}),
    }
    repo = ray_repo(tmp_path, ray_head, s3, jobs)
    applied = repo.trainops("apply", "--wait", "--timeout", "300", timeout=360)
    assert applied.returncode == 0, explain(applied)

    status = repo.trainops("status", "--output", "json")
    assert status.returncode == 0, explain(status)
    rows = {row["job"]: row for row in json.loads(status.stdout)["jobs"]}
    assert {name: rows[name]["health"] for name in jobs} == {
        "first": "Succeeded",
        "second": "Succeeded",
    }
    assert rows["first"]["cost_usd"] > 0 and rows["second"]["cost_usd"] > 0  # $0.01 a second
    table = repo.trainops("status")
    assert "$0.0" in table.stdout and "loss=0.25" in table.stdout, table.stdout

    state = repo.state()
    first, second = state["first"].runs[-1], state["second"].runs[-1]
    assert first.outputs["weights"] == f"s3://ray-outputs/runs/{first.run_id}/outputs/weights.bin"
    assert first.metrics == {"loss": 0.5}
    assert first.source_commit and first.deliveries == {"s3:s3://models/e2e/": "done"}

    client = s3.client()

    def delivered(job: str, revision: str) -> bytes:
        key = f"e2e/{job}/{revision}/weights.bin"
        return bytes(client.get_object(Bucket="models", Key=key)["Body"].read())

    assert delivered("first", first.revision) == b"w0"
    assert delivered("second", second.revision) == b"w0+1"  # it read first's weights
    revisions = {first.revision, second.revision}
    assert cluster_jobs(ray_head, revisions) == Counter({("first", "1"): 1, ("second", "1"): 1})

    again = repo.trainops("apply")
    assert again.returncode == 0, explain(again)
    assert cluster_jobs(ray_head, revisions) == Counter({("first", "1"): 1, ("second", "1"): 1})
    logs = repo.trainops("logs", "second")
    assert "trained w0+1" in logs.stdout, explain(logs)
    repo.cleanup()
