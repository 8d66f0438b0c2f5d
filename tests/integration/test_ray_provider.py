"""The Ray provider's edges against the session's real head (issue 14): the cluster refusing a
second job with one submission id, a foreign job squatting on an id, a workdir over the limit
refused before anything is sent, the job's environment (only what spec.env names), and outputs
that cannot be read yet keeping a run observed instead of losing them."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.gitrepo import git
from tests.support.httpproxy import CountingProxy
from tests.support.rayhead import TIMEOUT, RayHead
from trainops.errors import ProviderError
from trainops.manifest import Job, RayConfig, TrainingJob
from trainops.providers.base import Intent, Observation, Submission, input_hash
from trainops.providers.ray import RayProvider, submission_id
from trainops.state.model import Health
from trainops.yamlsource import Document

pytestmark = TIMEOUT


@dataclass
class Cluster:
    root: Path
    head: RayHead
    proxy: CountingProxy
    revision: str

    def provider(self, output_uri: str | None = None, **environ: str) -> RayProvider:
        config = RayConfig(output_uri=output_uri or str(self.root / "outputs"))
        return RayProvider(self.root, config, environ={"RAY_ADDRESS": self.proxy.url, **environ})

    def submission(self, name: str, command: list[str], **spec: Any) -> Submission:
        data = {
            "apiVersion": "trainops/v1",
            "kind": "TrainingJob",
            "metadata": {"name": name},
            "spec": {"provider": "ray", "command": command, "workdir": ".", **spec},
        }
        job = Job(TrainingJob.model_validate(data), Document(f"jobs/{name}.yaml", 0, data))
        return Submission(job, self.revision, 1, {"n": 1}, input_hash({"n": 1}), "s.yaml")

    def jobs(self) -> list[Any]:
        from ray.job_submission import JobSubmissionClient

        return [
            j
            for j in JobSubmissionClient(self.head.address).list_jobs()
            if j.submission_id and self.revision in j.submission_id
        ]


@pytest.fixture
def cluster(
    tmp_path: Path, ray_head: RayHead, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Cluster]:
    monkeypatch.delenv("RAY_ADDRESS", raising=False)  # the client would let it win
    git(tmp_path, "init", "--quiet")
    with CountingProxy(ray_head.address) as proxy:
        yield Cluster(tmp_path, ray_head, proxy, secrets.token_hex(6))


def settle(provider: RayProvider, run_id: str, timeout: float = 120) -> Observation:
    deadline = time.monotonic() + timeout
    while True:
        seen = provider.observe([run_id])[run_id]
        if seen.health.terminal or time.monotonic() > deadline:
            return seen
        time.sleep(0.2)


def test_a_second_submit_of_one_attempt_is_refused_by_the_cluster_and_returns_the_first(
    cluster: Cluster,
) -> None:
    provider = cluster.provider()
    sub = cluster.submission("twice", ["python", "-c", "print(1)"])
    first = provider.submit(sub)
    second = cluster.provider().submit(sub)  # another reconciler, another client
    assert second.run_id == first.run_id == submission_id("twice", cluster.revision, 1)
    assert len(cluster.jobs()) == 1


def test_a_foreign_job_on_our_id_is_never_adopted(cluster: Cluster) -> None:
    from ray.job_submission import JobSubmissionClient

    run_id = submission_id("squat", cluster.revision, 1)
    JobSubmissionClient(cluster.head.address).submit_job(
        entrypoint="python -c pass", submission_id=run_id, metadata={"owner": "someone else"}
    )
    provider = cluster.provider()
    with pytest.raises(ProviderError, match="another job with this id") as refused:
        provider.submit(cluster.submission("squat", ["python", "-c", "pass"]))
    assert getattr(refused.value, "retryable", True) is False
    intent = Intent("squat", cluster.revision, 1, "h", 0.0, "ray")
    assert provider.find(intent) is None


def test_a_workdir_over_the_limit_is_refused_before_anything_is_sent(cluster: Cluster) -> None:
    with (cluster.root / "big.bin").open("wb") as f:
        f.truncate(101 * 1024 * 1024)  # sparse: 101 MiB of files, no disk spent
    git(cluster.root, "add", "--intent-to-add", "big.bin")  # only what git holds is packaged
    with pytest.raises(ProviderError, match=r"holds 101\.0 MiB .* limit of 100\.0 MiB") as refused:
        cluster.provider().submit(cluster.submission("big", ["python", "-c", "pass"]))
    assert getattr(refused.value, "retryable", True) is False
    assert (cluster.proxy.total(), cluster.jobs()) == (0, [])


def test_the_job_gets_the_variables_spec_env_names_and_none_of_trainops_own(
    cluster: Cluster,
) -> None:
    show = (
        "import json, os; print(json.dumps(sorted(k for k in os.environ if k.startswith('TEST_'))))"
    )
    provider = cluster.provider(TEST_PASSED="p" * 12, TEST_SECRET_TOKEN="s" * 12)
    sub = cluster.submission("env", ["python", "-c", show], env=["TEST_PASSED"])
    ref = provider.submit(sub)
    assert settle(provider, ref.run_id).health is Health.SUCCEEDED
    printed = [ln for ln in provider.logs(ref.run_id, 100).splitlines() if ln.startswith("[")]
    assert json.loads(printed[-1]) == ["TEST_PASSED"]


def test_outputs_that_cannot_be_read_yet_keep_the_run_observed(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.emulators.s3 import MotoS3

    write = "import os; open(os.environ['TRAINOPS_OUTPUT_DIR'] + '/weights.bin', 'w').write('w')"
    with MotoS3() as s3:
        s3.client().create_bucket(Bucket="ray-out")
        names = ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION"]
        provider = cluster.provider("s3://ray-out/runs", **s3.env())
        sub = cluster.submission("quiet", ["python", "-c", write], env=[*names, "AWS_ENDPOINT_URL"])
        ref = provider.submit(sub)  # the job copies its outputs to moto, by the names it got
        for key, value in {**s3.env(), "AWS_ENDPOINT_URL": "http://127.0.0.1:9"}.items():
            monkeypatch.setenv(key, value)  # ... but this side cannot reach the storage
        deadline = time.monotonic() + 120
        while "SUCCEEDED" not in {j.status.value for j in cluster.jobs()}:
            assert time.monotonic() < deadline, "the job did not finish"
            time.sleep(0.2)
        # A terminal run is never polled again: unread, it stays observed as Running.
        assert provider.observe([ref.run_id])[ref.run_id].health is Health.RUNNING
        monkeypatch.setenv("AWS_ENDPOINT_URL", s3.url)
        seen = provider.observe([ref.run_id])[ref.run_id]
        assert seen.health is Health.SUCCEEDED
        assert seen.outputs == {"weights": f"s3://ray-out/runs/{ref.run_id}/outputs/weights.bin"}


def test_a_running_run_reports_its_metrics_so_far_through_a_shared_output_folder(
    cluster: Cluster, tmp_path: Path
) -> None:
    """DESIGN §21 early stop: the entrypoint copies metrics.json to the shared output folder as
    it changes, so a running run's metrics so far are its `progress` (not yet its metrics); a
    metrics.json the command takes back before it ends is not left among its outputs."""
    gate = tmp_path / "go"
    script = (
        "import json, os, pathlib, sys, time\n"
        "out = pathlib.Path(os.environ['TRAINOPS_OUTPUT_DIR']) / 'metrics.json'\n"
        "out.write_text(json.dumps({'eval_loss': 0.7}))\n"
        f"while not os.path.exists({str(gate)!r}): time.sleep(0.1)\n"
        "if sys.argv[1] == 'drop': out.unlink()\n"
    )
    provider = cluster.provider()
    refs = {
        how: provider.submit(cluster.submission(f"so-far-{how}", ["python", "-c", script, how]))
        for how in ("keep", "drop")
    }
    deadline = time.monotonic() + 120
    seen = {}
    while set(seen) != set(refs):
        assert time.monotonic() < deadline, f"no progress reported: {seen}"
        for how, ref in refs.items():
            obs = provider.observe([ref.run_id])[ref.run_id]
            assert obs.health in (Health.PENDING, Health.RUNNING), obs
            if obs.progress:
                seen[how] = obs
        time.sleep(0.2)
    assert {h: (o.progress, o.metrics) for h, o in seen.items()} == {
        h: ({"eval_loss": 0.7}, {}) for h in refs
    }
    gate.write_text("")
    kept, dropped = (settle(provider, refs[h].run_id) for h in ("keep", "drop"))
    assert (kept.health, kept.metrics, kept.progress) == (
        Health.SUCCEEDED,
        {"eval_loss": 0.7},
        {},
    )
    assert (dropped.health, dropped.metrics, "metrics" in dropped.outputs) == (
        Health.SUCCEEDED,
        {},
        False,
    )
