"""Delivery and job chaining as a user runs them: `python -m trainops apply` in a real git
repository with a bare remote. Job A (local) trains and delivers its weights to S3 (moto's server)
and to the Hub (the loopback emulator); job B consumes A's weights through
`${{ jobs.a.output.weights }}` and starts only after A succeeded. A delivery failing midway is
completed by the next apply without duplicates, and an apply with nothing to do uploads nothing.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.emulators.huggingface import HubEmulator
from tests.emulators.s3 import MotoS3
from tests.support.gitrepo import git
from tests.support.workspace import UserRepo, explain, manifest

CONSUMER = '''\
"""Job B: fine-tunes from the file its input `base` names."""
import json
import os

params = json.load(open(os.environ["TRAINOPS_INPUT"]))
with open(params["base"]) as f:
    base = f.read()
with open(os.path.join(os.environ["TRAINOPS_OUTPUT_DIR"], "lora.bin"), "w") as f:
    f.write(f"tuned({base})")
'''
HUB_REPO = "acme/a-weights"


@pytest.fixture
def services(tmp_path: Path) -> Iterator[tuple[MotoS3, HubEmulator]]:
    with MotoS3() as s3, HubEmulator(namespaces={"acme"}) as hub:
        s3.client().create_bucket(Bucket="models")
        s3.requests.clear()
        yield s3, hub
        assert hub.errors == []


@pytest.fixture
def repo(tmp_path: Path) -> Iterator[UserRepo]:
    user = UserRepo.create(tmp_path, {})
    deliver = [{"s3": {"uri": "s3://models/team/"}}, {"huggingface": {"repo": HUB_REPO}}]
    user.write_job("a", manifest("a", input={"hold": user.hold_path("a")}, deliver=deliver))
    user.write_job(
        "b",
        manifest(
            "b", input={"base": "${{ jobs.a.output.weights }}"}, command=["python", "consume.py"]
        ),
    )
    user.write("consume.py", CONSUMER)
    user.commit("a delivers its weights; b fine-tunes from them")
    yield user
    user.cleanup()


@dataclass
class Shell:
    """The CLI run in `repo` with `env`; every output kept, to grep for credentials."""

    repo: UserRepo
    env: dict[str, str]
    transcript: list[str] = field(default_factory=list)

    def trainops(self, *args: str) -> subprocess.CompletedProcess[str]:
        result = self.repo.trainops(*args, env=self.env)
        self.transcript += [result.stdout, result.stderr]
        return result

    def apply(self) -> subprocess.CompletedProcess[str]:
        return self.trainops("apply", "--output", "json")

    def jobs(self) -> dict[str, dict[str, Any]]:
        result = self.trainops("status", "--output", "json")
        assert result.returncode == 0, explain(result)
        return {row["job"]: row for row in json.loads(result.stdout)["jobs"]}


def test_a_delivers_to_s3_and_the_hub_and_b_trains_on_its_weights(
    repo: UserRepo, services: tuple[MotoS3, HubEmulator], tmp_path: Path
) -> None:
    s3, hub = services
    user = Shell(repo, {**s3.env(), **hub.env(), "HF_HOME": str(tmp_path / "hf-home")})
    # Midway failures for the first delivery: S3 refuses the manifest once (after the weights
    # were written), the Hub answers the commit with a 500 once.
    s3.fail("PUT", r"/trainops\.json$", status=403, code="AccessDenied")
    hub.fail("commit", 500)

    first = user.apply()
    assert first.returncode == 0, explain(first)
    assert [r.split("-")[0] for r in repo.run_ids()] == ["a"]  # b waits for a
    assert user.jobs()["b"]["sync"] == "Blocked"

    repo.release("a")
    repo.wait_status(only_run(repo, "a"), {"succeeded"})
    delivering = user.apply()  # delivers a's weights and submits b
    assert delivering.returncode == 3, explain(delivering)  # the failed deliveries
    assert "access denied writing s3://models/team/a/" in delivering.stderr
    assert "uploading to the Hub repo acme/a-weights failed: HTTP 500" in delivering.stderr
    rows = user.jobs()
    assert rows["a"]["deliveries"]["s3:s3://models/team/"].startswith("failed: access denied")
    assert rows["a"]["deliveries"][f"huggingface:{HUB_REPO}"].startswith("failed: uploading")
    repo.wait_status(only_run(repo, "b"), {"succeeded"})

    # b read a's weights through the resolved reference, recorded in its snapshot.
    state = repo.state()
    run_a, run_b = state["a"].runs[-1], state["b"].runs[-1]
    assert run_b.created_at >= (run_a.completed_at or 0)
    snapshot = yaml.safe_load(repo_state_file(repo, run_b.snapshot))
    assert snapshot["spec"]["input"]["base"] == run_a.outputs["weights"]
    assert run_b.run_id is not None
    lora = repo.run_dir(run_b.run_id) / "outputs" / "lora.bin"
    assert lora.read_text() == f"tuned({run_a.run_id})"

    retry = user.apply()
    assert retry.returncode == 0, explain(retry)
    rows = user.jobs()
    assert rows["a"]["health"] == rows["b"]["health"] == "Succeeded"
    assert set(rows["a"]["deliveries"].values()) == {"done"}
    prefix = f"/models/team/a/{run_a.revision}"
    assert [(r.method, r.path) for r in s3.writes() if r.status == 200] == [
        ("PUT", f"{prefix}/weights.bin"),  # first apply
        ("PUT", f"{prefix}/trainops.json"),  # the retry writes only what was missing
    ]
    objects = s3.client().list_objects_v2(Bucket="models")["Contents"]
    assert sorted(o["Key"] for o in objects) == [
        f"team/a/{run_a.revision}/trainops.json",
        f"team/a/{run_a.revision}/weights.bin",
    ]
    assert hub.repos[HUB_REPO].private  # the manifest's default
    commits = hub.commits(HUB_REPO)
    assert [c.paths for c in commits[1:]] == [("trainops.json", "weights.bin")]
    assert hub.files(HUB_REPO)["weights.bin"] == Path(run_a.outputs["weights"]).read_bytes()
    manifest_a = json.loads(hub.files(HUB_REPO)["trainops.json"])
    assert manifest_a["run_id"] == run_a.run_id
    assert manifest_a["source_commit"] == run_a.source_commit != ""

    s3_before, hub_before = len(s3.calls()), len(hub.calls())
    again = user.apply()
    assert again.returncode == 0, explain(again)
    assert (len(s3.calls()), len(hub.calls())) == (s3_before, hub_before)
    assert len(repo.run_ids()) == 2
    assert "No changes" in user.trainops("apply").stdout

    state_branch = git(repo.remote or repo.root, "log", "-p", repo.branch)
    for secret in (hub.token, s3.secret_key, s3.access_key):
        assert secret not in state_branch
        assert not [text for text in user.transcript if secret in text]


def only_run(repo: UserRepo, job: str) -> str:
    runs = [r for r in repo.run_ids() if r.startswith(f"{job}-")]
    assert len(runs) == 1, runs
    return runs[0]


def repo_state_file(repo: UserRepo, path: str) -> str:
    assert repo.remote is not None
    return git(repo.remote, "show", f"{repo.branch}:{path}")
