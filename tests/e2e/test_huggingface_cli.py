"""Hugging Face Jobs as a user runs them: `python -m trainops` in a real git repository, the
official client talking to the loopback emulator (HF_ENDPOINT / HF_TOKEN from the environment).
A pull request's plan shows the worst-case cost and starts nothing; apply after the merge starts
job A, which succeeds; its Hub revision is delivered and consumed by job B (chained through
`${{ jobs.a.output.weights }}`); `trainops logs a` prints A's log."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.emulators.huggingface import HubEmulator
from tests.support.workspace import UserRepo, config, explain


def hf_job(name: str, **spec: object) -> str:
    body = {
        "provider": "huggingface",
        "image": "python:3.12",
        "command": ["python", "train.py"],
        "hardware": "a10g-small",
        "output_repo": f"acme/{name}-out",
        "budget": {"max_duration": "1h"},
        **spec,
    }
    doc = {"apiVersion": "trainops/v1", "kind": "TrainingJob", "metadata": {"name": name}}
    return yaml.safe_dump({**doc, "spec": body}, sort_keys=False)


@pytest.fixture
def hub() -> Iterator[HubEmulator]:
    with HubEmulator(namespaces={"acme"}) as emu:
        yield emu
        assert emu.errors == []


def test_plan_apply_chain_deliver_and_logs(tmp_path: Path, hub: HubEmulator) -> None:
    cfg = config() + yaml.safe_dump({"providers": {"huggingface": {"namespace": "acme"}}})
    repo = UserRepo.create(tmp_path, {}, cfg=cfg)
    repo.env = hub.env()
    repo.write_job("a", hf_job("a", deliver=[{"huggingface": {"repo": "acme/a-delivered"}}]))
    repo.write_job("b", hf_job("b", input={"base": "${{ jobs.a.output.weights }}"}))

    plan = repo.trainops("plan")  # the pull request: the working tree, nothing started
    assert plan.returncode == 0, explain(plan)
    assert "$1.00" in plan.stdout, plan.stdout  # a10g-small for 1h: 0.0167 $/min x 60
    assert hub.created_jobs() == []

    repo.commit("add a and b")
    repo.apply_ok()
    assert [j["labels"]["trainops-job"] for j in hub.created_jobs()] == ["a"]
    hub.advance(3600)
    repo.apply_ok()  # a succeeded: delivered, and b starts from its revision
    a_out = f"acme/a-out@{hub.commits('acme/a-out')[-1].oid}"
    assert json.loads(hub.files("acme/a-delivered")["trainops.json"])["outputs"]["weights"] == a_out
    (b,) = hub.created_jobs(**{"trainops-job": "b"})
    assert json.loads(b["environment"]["TRAINOPS_INPUT"]) == {"base": a_out}
    hub.advance(3600)
    repo.apply_ok()
    status = repo.trainops("status", "--output", "json")
    jobs = {j["job"]: j for j in json.loads(status.stdout)["jobs"]}
    assert {jobs["a"]["health"], jobs["b"]["health"]} == {"Succeeded"}, status.stdout
    logs = repo.trainops("logs", "a")
    assert logs.returncode == 0, explain(logs)
    assert "a: step 3/3" in logs.stdout and "pushed outputs" in logs.stdout
    assert len(hub.created_jobs()) == 2
    repo.cleanup()
