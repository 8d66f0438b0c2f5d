"""The provider contract suite's fixtures: one harness per provider (DESIGN §10, conformance).

A harness makes the submissions the suite needs (a long run, a quick success, a failure), the
intent a submission records, a lost create response, a count of the runs the provider holds, and a
way to wait for a run to end (real time for local and Ray, simulated time for the Replicate and
Hugging Face Jobs emulators).
`provider` is parametrized over every harness here; a provider joins by adding one fixture and its
name to PROVIDERS.
"""

from __future__ import annotations

import json
import random
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.emulators.huggingface import HubEmulator
from tests.emulators.replicate import CREATE_PATH, FLUX_LORA_VERSION, ReplicateEmulator
from tests.support.gitrepo import git
from tests.support.httpproxy import CountingProxy
from tests.support.rayhead import RayHead, ray_head
from trainops.manifest import Job, TrainingJob
from trainops.providers.base import Intent, Observation, Provider, Submission, input_hash
from trainops.providers.huggingface import HuggingFaceProvider
from trainops.providers.local import LocalProvider
from trainops.providers.replicate import ReplicateProvider
from trainops.yamlsource import Document

REVISION = "0123456789ab"
PROVIDERS = ["local", "replicate", "ray", "huggingface", "sagemaker"]
__all__ = ["PROVIDERS", "Harness", "ray_head"]


@dataclass
class Harness:
    name: str
    provider: Provider
    job: Callable[[str, str], Job]  # (name, kind: "long" | "ok" | "fail") -> Job
    lose_next_response: Callable[[], None]  # the next submit creates its run, the answer is lost
    runs: Callable[[], int]  # how many runs the provider holds
    settle: Callable[[Provider, str], Observation]  # wait until a run is terminal
    now: Callable[[], float]  # the provider's clock (unix seconds), for an intent's created_at
    extra: dict[str, Any] = field(default_factory=dict)
    # A shared engine (one Ray cluster for the session) keeps every test's runs: each test
    # submits its own revision there, so run ids never meet.
    revision: str = REVISION

    def submission(self, job: Job, attempt: int = 1) -> Submission:
        value = dict(job.spec.input)
        return Submission(
            job, self.revision, attempt, value, input_hash(value), f"snap/{job.name}.yaml"
        )

    def intent(self, sub: Submission, created_at: float) -> Intent:
        spec = sub.job.spec
        return Intent(
            sub.job.name,
            sub.revision,
            sub.attempt,
            sub.input_hash,
            created_at,
            self.name,
            getattr(spec, "trainer", "") or "",
            getattr(spec, "destination", "") or "",
        )


def _job(data: dict[str, Any], name: str) -> Job:
    return Job(TrainingJob.model_validate(data), Document(f"jobs/{name}.yaml", 0, data))


@pytest.fixture
def local_harness(tmp_path: Path) -> Iterator[Harness]:
    git(tmp_path, "init", "--quiet")
    commands = {
        "long": ["python", "-c", "import time; print('ready', flush=True); time.sleep(60)"],
        "ok": ["python", "-c", "print('line1'); print('line2'); print('done')"],
        "fail": ["python", "-c", "import sys; print('boom', flush=True); sys.exit(3)"],
    }

    def job(name: str, kind: str) -> Job:
        data = {
            "apiVersion": "trainops/v1",
            "kind": "TrainingJob",
            "metadata": {"name": name},
            "spec": {"provider": "local", "command": commands[kind], "workdir": ".", "input": {}},
        }
        (tmp_path / "jobs").mkdir(exist_ok=True)
        (tmp_path / "jobs" / f"{name}.yaml").write_text(json.dumps(data))
        return _job(data, name)

    provider = LocalProvider(tmp_path)

    def runs() -> int:
        assert provider.records_dir is not None
        return len(list(provider.records_dir.glob("*"))) if provider.records_dir.exists() else 0

    def settle(p: Provider, run_id: str) -> Observation:
        deadline = time.monotonic() + 60
        while True:
            obs = p.observe([run_id])[run_id]
            if obs.health.terminal or time.monotonic() > deadline:
                return obs
            time.sleep(0.05)

    lost: list[bool] = []
    yield Harness("local", provider, job, lambda: lost.append(True), runs, settle, time.time)
    provider.cancel_grace = 0.2
    if provider.records_dir is not None and provider.records_dir.exists():
        for run_dir in provider.records_dir.glob("*"):
            provider.cancel(run_dir.name)


@pytest.fixture
def replicate_harness() -> Iterator[Harness]:
    now = [100.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    with ReplicateEmulator(queue_seconds=5, run_seconds=100, rate_clock=lambda: now[0]) as emu:
        inputs = {
            "long": {"input_images": "https://example.com/a.zip", "steps": 1000},
            "ok": {"input_images": "https://example.com/b.zip", "steps": 10},
            "fail": {"input_images": "https://example.com/c.zip", "trigger_word": "__fail__"},
        }

        def job(name: str, kind: str) -> Job:
            data = {
                "apiVersion": "trainops/v1",
                "kind": "TrainingJob",
                "metadata": {"name": name},
                "spec": {
                    "provider": "replicate",
                    "trainer": f"ostris/flux-dev-lora-trainer:{FLUX_LORA_VERSION}",
                    "destination": f"acme/{name}",
                    "input": inputs[kind],
                },
            }
            return _job(data, name)

        provider = ReplicateProvider(
            token_env="TEST_REPLICATE_TOKEN",
            environ={"REPLICATE_BASE_URL": emu.base_url, "TEST_REPLICATE_TOKEN": emu.token},
            timeout=5.0,
            sleep=sleep,
            clock=lambda: now[0],
            rng=random.Random(0),
        )

        def settle(p: Provider, run_id: str) -> Observation:
            emu.advance(500)
            return p.observe([run_id])[run_id]

        with provider:
            yield Harness(
                "replicate",
                provider,
                job,
                lambda: emu.inject("lost_response", method="POST", path=CREATE_PATH),
                lambda: len(emu.trainings),
                settle,
                emu.now,
                {"emu": emu},
            )
        assert emu.server_errors == []


@pytest.fixture
def ray_harness(
    tmp_path: Path, ray_head: RayHead, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Harness]:
    from ray.job_submission import JobSubmissionClient

    from trainops.manifest import RayConfig
    from trainops.providers.ray import RayProvider

    # The client lets these override the address it is given: the provider's own must win.
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.delenv("RAY_API_SERVER_ADDRESS", raising=False)
    git(tmp_path, "init", "--quiet")
    commands = {
        "long": ["python", "-c", "import time; print('ready', flush=True); time.sleep(120)"],
        "ok": ["python", "-c", "print('line1'); print('line2'); print('done')"],
        "fail": ["python", "-c", "import sys; print('boom', flush=True); sys.exit(3)"],
    }

    def job(name: str, kind: str) -> Job:
        data = {
            "apiVersion": "trainops/v1",
            "kind": "TrainingJob",
            "metadata": {"name": name},
            "spec": {"provider": "ray", "command": commands[kind], "workdir": ".", "input": {}},
        }
        (tmp_path / "jobs").mkdir(exist_ok=True)
        (tmp_path / "jobs" / f"{name}.yaml").write_text(json.dumps(data))
        return _job(data, name)

    revision = secrets.token_hex(6)
    direct = JobSubmissionClient(ray_head.address)

    def mine() -> list[Any]:
        return [
            j for j in direct.list_jobs() if (j.metadata or {}).get("trainops-revision") == revision
        ]

    def settle(p: Provider, run_id: str) -> Observation:
        deadline = time.monotonic() + 120
        while True:
            obs = p.observe([run_id])[run_id]
            if obs.health.terminal or time.monotonic() > deadline:
                return obs
            time.sleep(0.2)

    with CountingProxy(ray_head.address) as proxy:
        provider = RayProvider(
            tmp_path,
            RayConfig(output_uri=str(tmp_path / "outputs")),
            environ={"RAY_ADDRESS": proxy.url},
        )
        yield Harness(
            "ray",
            provider,
            job,
            lambda: proxy.lose_next("POST", "/api/jobs/"),
            lambda: len(mine()),
            settle,
            time.time,
            {"proxy": proxy, "head": ray_head},
            revision=revision,
        )
    for info in mine():
        if not info.status.is_terminal():
            direct.stop_job(info.submission_id)


@pytest.fixture
def huggingface_harness() -> Iterator[Harness]:
    """Hugging Face Jobs at the emulator: jobs advance over simulated time, a "fail" job's first
    attempt ends in ERROR, a lost response is a create that took effect and answered 500."""
    with HubEmulator(namespaces={"acme"}) as emu:

        def job(name: str, kind: str) -> Job:
            if kind == "fail":
                emu.failing.add(name)
            data = {
                "apiVersion": "trainops/v1",
                "kind": "TrainingJob",
                "metadata": {"name": name},
                "spec": {
                    "provider": "huggingface",
                    "image": "python:3.12",
                    "command": ["python", "train.py"],
                    "hardware": "a10g-small",
                    "output_repo": f"acme/{name}",
                    "input": {"steps": 3, "kind": kind},
                },
            }
            return _job(data, name)

        def settle(p: Provider, run_id: str) -> Observation:
            emu.advance(3600)
            return p.observe([run_id])[run_id]

        provider = HuggingFaceProvider(
            namespace="acme", environ=emu.env(), sleep=lambda _s: None, rng=random.Random(7)
        )
        yield Harness(
            "huggingface",
            provider,
            job,
            lambda: emu.fail("job-create", 500, after_apply=True) and None,
            lambda: len(emu.created_jobs()),
            settle,
            lambda: emu.now,
            {"emu": emu},
        )
        assert emu.errors == []


@pytest.fixture
def sagemaker_harness(monkeypatch: pytest.MonkeyPatch) -> Iterator[Harness]:
    """SageMaker training jobs at the emulator (tests/emulators/sagemaker.py) through boto3:
    jobs advance over simulated time, a "fail" job ends Failed, a lost response is a create that
    took effect and whose connection dropped."""
    from tests.emulators.sagemaker import SageMakerEmulator
    from trainops.manifest import SageMakerConfig
    from trainops.providers.sagemaker import SageMakerProvider

    with SageMakerEmulator() as emu:
        for key, value in emu.env().items():
            monkeypatch.setenv(key, value)
        for key in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN"):
            monkeypatch.delenv(key, raising=False)

        def job(name: str, kind: str) -> Job:
            if kind == "fail":
                emu.failing.add(name)
            data = {
                "apiVersion": "trainops/v1",
                "kind": "TrainingJob",
                "metadata": {"name": name},
                "spec": {
                    "provider": "sagemaker",
                    "image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/train:1",
                    "hardware": "ml.g5.2xlarge",
                    "input": {"epochs": 3, "kind": kind, "train": "s3://acme-data/train/"},
                },
            }
            return _job(data, name)

        def settle(p: Provider, run_id: str) -> Observation:
            emu.advance(3600)
            return p.observe([run_id])[run_id]

        config = SageMakerConfig(
            role_arn="arn:aws:iam::123456789012:role/trainops", output_uri="s3://acme-models/sm"
        )
        provider = SageMakerProvider(config, sleep=lambda _s: None)
        yield Harness(
            "sagemaker",
            provider,
            job,
            lambda: emu.inject("CreateTrainingJob", "lost"),
            lambda: len(emu.jobs),
            settle,
            lambda: emu.now,
            {"emu": emu},
        )
        assert emu.errors == []


@pytest.fixture(params=PROVIDERS)
def provider(request: pytest.FixtureRequest) -> Harness:
    harness: Harness = request.getfixturevalue(f"{request.param}_harness")
    return harness
