"""Credentials go where their holder points (DESIGN §13): the Replicate endpoint comes from
`REPLICATE_BASE_URL` in the environment, never from `trainops.yaml`, and `token_env` cannot name
another service's credential. A pull request's config is what a reviewer's `plan` reads."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml

from tests.emulators.replicate import FLUX_LORA_VERSION, ReplicateEmulator, SimClock
from tests.support.workspace import UserRepo, config, explain

R8_TOKEN = "r8_" + "SecViewEndpoint0" * 2
GH_TOKEN = "ghp_" + "SecViewGitHub0Token" * 2
PORTRAITS = yaml.safe_dump(
    {
        "apiVersion": "trainops/v1",
        "kind": "TrainingJob",
        "metadata": {"name": "portraits"},
        "spec": {
            "provider": "replicate",
            "trainer": f"ostris/flux-dev-lora-trainer:{FLUX_LORA_VERSION}",
            "destination": "acme/portraits",
            "input": {"input_images": "https://example.com/p.zip"},
        },
    }
)


def test_a_pull_request_cannot_send_a_token_to_its_own_host(tmp_path: Path) -> None:
    clock = SimClock(time.time())
    with (
        ReplicateEmulator(token=R8_TOKEN, clock=clock, queue_seconds=60) as real,
        ReplicateEmulator(token="r8_attacker", clock=clock) as attacker,
    ):
        repo = UserRepo.create(tmp_path, {"portraits": PORTRAITS})
        repo.env.update(REPLICATE_BASE_URL=real.base_url, REPLICATE_API_TOKEN=R8_TOKEN)
        repo.apply_ok()  # an active training on the state branch: plan will observe it
        assert len(real.trainings) == 1
        for replicate in (
            {"base_url": attacker.base_url},  # a reviewer's own token to the PR's host
            {"base_url": attacker.base_url, "token_env": "GITHUB_TOKEN"},
            {"token_env": "GITHUB_TOKEN"},  # the workflow's GitHub token to Replicate
        ):
            repo.write("trainops.yaml", config(providers={"replicate": replicate}))
            real.reset_requests()
            plan = repo.trainops("plan", env={"GITHUB_TOKEN": GH_TOKEN})
            assert plan.returncode == 1, explain(plan)
            assert "providers.replicate" in plan.stderr, explain(plan)
            assert attacker.requests == [] and real.requests == []


def test_base_url_in_the_config_says_where_the_endpoint_goes(tmp_path: Path) -> None:
    cfg = config(providers={"replicate": {"base_url": "http://127.0.0.1:9"}})
    repo = UserRepo.create(tmp_path, {}, cfg=cfg)
    result = repo.trainops("validate")
    assert result.returncode == 1, explain(result)
    assert "trainops.yaml:" in result.stderr and "REPLICATE_BASE_URL" in result.stderr


@pytest.mark.parametrize(
    "name",
    ["GITHUB_TOKEN", "GH_TOKEN", "HF_TOKEN", "AWS_SECRET_ACCESS_KEY", "ACTIONS_RUNTIME_TOKEN"],
)
def test_token_env_cannot_name_another_services_credential(tmp_path: Path, name: str) -> None:
    repo = UserRepo.create(tmp_path, {}, cfg=config(providers={"replicate": {"token_env": name}}))
    result = repo.trainops("validate")
    assert result.returncode == 1, explain(result)
    assert f"token_env {name!r}" in result.stderr, explain(result)
