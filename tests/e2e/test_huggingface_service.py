"""Hugging Face Jobs as the real service behaves (shared/ref/README.md, "Checked against the real
clients"), through `python -m trainops` and the loopback emulator that now behaves so:

- a job sent no `timeoutSeconds` is stopped after 30 minutes and ends in ERROR, never COMPLETED
  (huggingface_hub docs/source/en/guides/jobs.md; huggingface/huggingface_hub#3665): trainops
  always sends one, `budget.max_duration` or `providers.huggingface.default_timeout` (24h);
- every flavor of huggingface_hub's `JobHardware` runs; one without a price has no estimate;
- a job someone deleted answers stage `DELETED` (`JobStage`): canceled, never resubmitted.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.emulators.huggingface import HubEmulator
from tests.support.workspace import UserRepo, config, explain


def hf_job(name: str, **spec: Any) -> str:
    body = {
        "provider": "huggingface",
        "image": "python:3.12",
        "command": ["python", "train.py"],
        "hardware": "a10g-small",
        **spec,
    }
    doc = {"apiVersion": "trainops/v1", "kind": "TrainingJob", "metadata": {"name": name}}
    return yaml.safe_dump({**doc, "spec": body}, sort_keys=False)


@pytest.fixture
def hub() -> Iterator[HubEmulator]:
    with HubEmulator(namespaces={"acme"}) as emu:
        yield emu
        assert emu.errors == []


def repo_with(tmp_path: Path, hub: HubEmulator, jobs: dict[str, str], **hf: Any) -> UserRepo:
    cfg = config(providers={"huggingface": {"namespace": "acme", **hf}})
    repo = UserRepo.create(tmp_path, jobs, cfg=cfg)
    repo.env = hub.env()
    return repo


def sent_timeouts(hub: HubEmulator) -> dict[str, Any]:
    """Each created job's `timeoutSeconds` as the emulator received it, by trainops job."""
    out = {}
    for call in hub.calls("job-create"):
        body = json.loads(call.body)
        out[body["labels"]["trainops-job"]] = body.get("timeoutSeconds")
    return out


def health(repo: UserRepo) -> dict[str, dict[str, Any]]:
    status = repo.trainops("status", "--output", "json")
    return {j["job"]: j for j in json.loads(status.stdout)["jobs"]}


def test_a_job_without_max_duration_is_sent_the_default_timeout_and_outlives_30_minutes(
    tmp_path: Path, hub: HubEmulator
) -> None:
    """The service's 30-minute default would stop a 2-hour training (ERROR, billed, retried):
    trainops sends 24h (or trainops.yaml's default_timeout), max_duration when the job sets it,
    and shows the timeout and the worst case it implies in `plan`."""
    hub.run_s = 2 * 3600.0
    repo = repo_with(
        tmp_path,
        hub,
        {"long": hf_job("long"), "capped": hf_job("capped", budget={"max_duration": "3h"})},
    )
    repo.apply_ok()
    hub.advance(3 * 3600)
    repo.apply_ok()
    jobs = health(repo)
    assert {jobs["long"]["health"], jobs["capped"]["health"]} == {"Succeeded"}, jobs
    assert len(hub.created_jobs()) == 2  # nothing timed out, nothing retried
    assert sent_timeouts(hub) == {"long": 24 * 3600, "capped": 3 * 3600}


def test_plan_shows_the_timeout_and_prices_the_worst_case_at_it(
    tmp_path: Path, hub: HubEmulator
) -> None:
    repo = repo_with(
        tmp_path,
        hub,
        {"long": hf_job("long"), "capped": hf_job("capped", budget={"max_duration": "3h"})},
    )
    plan = repo.trainops("plan")
    assert plan.returncode == 0, explain(plan)
    rows = {line.split()[0]: line for line in plan.stdout.splitlines() if line.strip()}
    assert "timeout 24h" in rows["long"], plan.stdout
    assert "$24.05" in rows["long"], plan.stdout  # a10g-small 0.0167 $/min x 24h, not unbounded
    assert "timeout 3h" in rows["capped"], plan.stdout
    markdown = repo.trainops("plan", "--output", "markdown")
    assert "timeout 24h" in markdown.stdout and "$24.05" in markdown.stdout, markdown.stdout


def test_default_timeout_comes_from_trainops_yaml(tmp_path: Path, hub: HubEmulator) -> None:
    repo = repo_with(tmp_path, hub, {"long": hf_job("long")}, default_timeout="36h")
    plan = repo.trainops("plan")
    assert plan.returncode == 0 and "timeout 36h" in plan.stdout, explain(plan)
    repo.apply_ok()
    assert sent_timeouts(hub) == {"long": 36 * 3600}


def test_the_emulator_stops_a_job_sent_no_timeout_at_30_minutes(hub: HubEmulator) -> None:
    """The emulator as the service (docs/source/en/guides/jobs.md: "Jobs have a default timeout
    (30 minutes)"; JobStage has no TIMEOUT stage, so it ends in ERROR, not COMPLETED)."""
    from huggingface_hub import HfApi

    hub.run_s = 3600.0
    api = HfApi(endpoint=hub.url, token=hub.token)
    bare = api.run_job(image="python:3.12", command=["true"], namespace="acme")
    timed = api.run_job(image="python:3.12", command=["true"], namespace="acme", timeout="2h")
    hub.advance(2 * 3600)
    bare_info = api.inspect_job(job_id=bare.id, namespace="acme")
    assert bare_info.status.stage == "ERROR"
    assert bare_info.finished_at is not None and bare_info.started_at is not None
    assert (bare_info.finished_at - bare_info.started_at).total_seconds() == 30 * 60
    assert api.inspect_job(job_id=timed.id, namespace="acme").status.stage == "COMPLETED"


@pytest.mark.parametrize("flavor", ["a100x4", "h200x8", "cpu-xl", "rtx-pro-6000x2"])
def test_every_flavor_of_the_client_runs_and_an_unpriced_one_has_no_estimate(
    tmp_path: Path, hub: HubEmulator, flavor: str
) -> None:
    """huggingface_hub's JobHardware lists 26 flavors; trainops refused eleven of them. One
    without a price in prices_usd_per_second runs, and plan says it has no estimate."""
    repo = repo_with(tmp_path, hub, {"big": hf_job("big", hardware=flavor)})
    validate = repo.trainops("validate")
    assert validate.returncode == 0, explain(validate)
    plan = repo.trainops("plan")
    assert plan.returncode == 0, explain(plan)
    repo.apply_ok()
    (created,) = hub.created_jobs()
    assert created["flavor"] == flavor
    repo.write_job("big", hf_job("big", hardware=flavor, rerun=1))
    plan = repo.trainops("plan")
    assert f"no price for {flavor}" in plan.stdout, plan.stdout


def test_a_price_cap_refuses_an_unpriced_flavor_rather_than_guess(
    tmp_path: Path, hub: HubEmulator
) -> None:
    cfg = config(
        providers={"huggingface": {"namespace": "acme"}}, policy={"max_cost_usd_per_job": 100}
    )
    repo = UserRepo.create(
        tmp_path,
        {
            "big": hf_job("big", hardware="a100x8", budget={"max_duration": "1h"}),
            "priced": hf_job("priced", hardware="h200", budget={"max_duration": "1h"}),
        },
        cfg=cfg,
    )
    repo.env = hub.env()
    plan = repo.trainops("plan")
    assert plan.returncode == 1, explain(plan)
    assert "a100x8 has no price" in plan.stdout and "prices_usd_per_second.a100x8" in plan.stdout
    applied = repo.trainops("apply")
    assert applied.returncode == 1, explain(applied)
    assert [j["labels"]["trainops-job"] for j in hub.created_jobs()] == ["priced"]


def test_a_job_deleted_on_the_hub_is_canceled_and_not_resubmitted(
    tmp_path: Path, hub: HubEmulator
) -> None:
    """JobStage DELETED (huggingface_hub _jobs_api.py, a terminal stage): the run ends Canceled
    with the reason, and the next passes start nothing."""
    hub.run_s = 3600.0
    repo = repo_with(tmp_path, hub, {"a": hf_job("a"), "b": hf_job("b")})
    repo.apply_ok()
    assert len(hub.created_jobs()) == 2
    hub.advance(60)
    for job in hub.created_jobs():
        hub.delete_job(job["id"])
    hub.advance(60)
    repo.apply_ok()  # two asked jobs left the active stages: the finished list (with DELETED)
    repo.apply_ok()
    jobs = health(repo)
    assert {jobs["a"]["health"], jobs["b"]["health"]} == {"Canceled"}, jobs
    assert "deleted on Hugging Face" in jobs["a"]["reason"], jobs["a"]
    assert len(hub.created_jobs()) == 2
    assert all(c.status == 200 for c in hub.calls("job-list"))


def test_the_emulator_refuses_an_unknown_stage_filter(hub: HubEmulator) -> None:
    """An unknown `stage` value in GET /api/jobs/{ns}?stage= is a 400 (shared/ref, "HF list
    filters"); every JobStage value is accepted."""
    from huggingface_hub import HfApi
    from huggingface_hub._jobs_api import JobStage
    from huggingface_hub.errors import HfHubHTTPError

    api = HfApi(endpoint=hub.url, token=hub.token)
    assert list(api.list_jobs(namespace="acme", status=list(JobStage))) == []
    with pytest.raises(HfHubHTTPError) as caught:
        list(api.list_jobs(namespace="acme", status="TIMEOUT"))
    assert caught.value.response.status_code == 400


def test_a_flavor_the_service_does_not_run_is_a_problem_at_its_position(
    tmp_path: Path, hub: HubEmulator
) -> None:
    repo = repo_with(tmp_path, hub, {"typo": hf_job("typo", hardware="a100x3")})
    validate = repo.trainops("validate")
    assert validate.returncode == 1, explain(validate)
    assert "jobs/typo.yaml:11:3: 'a100x3' is not a Hugging Face Jobs flavor" in validate.stderr
    assert "a100x4" in validate.stderr  # the hint lists the client's flavors
    assert hub.created_jobs() == []
