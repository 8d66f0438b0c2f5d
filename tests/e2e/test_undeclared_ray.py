"""Runs nobody declared (DESIGN §20, issue 29 part 3) on Ray, through the CLI and the session's
real Ray head on 127.0.0.1: `status --all` lists, from one `list_jobs`, the cluster's jobs that
carry a job's marks (this repository's submission id and metadata) but no state file knows
(orphaned, once past the adoption grace), and jobs without them that write into one of our
jobs' run folders or whose metadata name this repository (foreign); `adopt` binds only an
orphaned one, at the attempt its metadata name; apply and prune never stop a foreign one, even
under a forged state file; a job with another repository's marks is not adoptable.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_ray_cli import ray_job, ray_repo
from tests.emulators.s3 import MotoS3
from tests.support.rayhead import TIMEOUT, RayHead
from tests.support.undeclared import forge_runs, forget
from tests.support.workspace import UserRepo, explain
from trainops.providers.ray.listing import CANNOT_TELL, NOT_PAGED

pytestmark = TIMEOUT
OUTPUTS = "s3://ray-outputs/runs"


@pytest.fixture
def s3() -> Iterator[MotoS3]:
    with MotoS3() as server:
        client = server.client()
        for bucket in ("ray-outputs", "models"):
            client.create_bucket(Bucket=bucket)
        yield server


class Hand:
    """Someone with the cluster's address: the official client, and the jobs started by hand
    (stopped after the test)."""

    def __init__(self, head: RayHead) -> None:
        from ray.job_submission import JobSubmissionClient

        self.client = JobSubmissionClient(head.address)
        self.started: list[str] = []

    def runs(self, **kwargs: Any) -> str:
        """A job submitted by hand, still running when the test ends."""
        job = str(self.client.submit_job(entrypoint="sleep 600", **kwargs))
        self.started.append(job)
        return job

    def status(self, job: str) -> str:
        return str(self.client.get_job_status(job).value)

    def metadata(self, job: str) -> dict[str, str]:
        return dict(self.client.get_job_info(job).metadata or {})


@pytest.fixture
def hand(ray_head: RayHead) -> Iterator[Hand]:
    made = Hand(ray_head)
    yield made
    for job in made.started:
        made.client.stop_job(job)


@pytest.fixture
def repo(tmp_path: Path, ray_head: RayHead, s3: MotoS3) -> Iterator[UserRepo]:
    # A revision of its own: the session's cluster keeps every job of every test.
    job = ray_job("portraits", {"nonce": tmp_path.name})
    made = ray_repo(tmp_path, ray_head, s3, {"portraits": job})
    yield made
    made.cleanup()


def ok(repo: UserRepo, *args: str) -> str:
    result = repo.trainops(*args, timeout=360)
    assert result.returncode == 0, explain(result)
    assert "Traceback" not in result.stderr
    return result.stdout


def census(repo: UserRepo) -> dict[str, Any]:
    return dict(json.loads(ok(repo, "status", "--all", "-o", "json"))["undeclared"])


def census_later(repo: UserRepo, monkeypatch: pytest.MonkeyPatch, seconds: float) -> Any:
    """`status --all`'s census as it will be `seconds` from now (the cluster dates its jobs by
    the real clock, and the adoption grace holds back younger runs): in process, through the
    same `commands` the CLI calls, with this repository's environment."""
    from trainops.commands import reconciler
    from trainops.reconcile.orphans import census as take
    from trainops.workspace import Workspace

    for name, value in repo.env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(repo.root)
    rec = reconciler(Workspace.open(repo.root), clock=lambda: time.time() + seconds)
    return take(rec, rec.preview(drift=True).state, rec.clock())


def orphaned(repo: UserRepo) -> str:
    """Portraits' job as trainops ran it, to the end; then the state forgets it."""
    ok(repo, "apply", "--wait", "--timeout", "300")
    [run] = repo.state()["portraits"].runs
    assert run.health.value == "Succeeded"
    forget(repo, "portraits")
    return str(run.run_id)


def test_status_all_lists_orphaned_and_foreign_jobs_then_adopt_binds_the_orphan(
    repo: UserRepo, hand: Hand, monkeypatch: pytest.MonkeyPatch
) -> None:
    ours = orphaned(repo)
    theirs = hand.runs(runtime_env={"env_vars": {"TRAINOPS_OUTPUT_URI": f"{OUTPUTS}/{ours}"}})
    hand.runs(metadata={"team": "vision"})  # not ours at all
    found = census(repo)
    # Ours is younger than Ray's adoption grace (120 s): apply's adoption may yet bind it.
    assert [(r["run_id"], r["kind"], r["job"]) for r in found["runs"]] == [
        (theirs, "foreign", "portraits")
    ]
    assert found["notes"] == [f"ray: {NOT_PAGED}", f"ray: {CANNOT_TELL}"]
    assert found["list_calls"] == {"ray": 1} and found["not_listable"] == []
    later = census_later(repo, monkeypatch, 600)
    strays = {s.run_id: s for s in later.strays}
    assert set(strays) == {ours, theirs}
    assert (strays[ours].kind, strays[ours].job, strays[ours].health.value) == (
        "orphaned",
        "portraits",
        "Succeeded",
    )
    assert strays[ours].age(time.time() + 600) > 500
    assert strays[ours].cost_usd > 0  # billed seconds x ray-cpu's $0.01 a second
    refused = repo.trainops("adopt", "portraits", theirs)
    # Not an id trainops gives: Ray's observe never asks for it, so it is no run of ours.
    assert refused.returncode == 1 and f"ray has no run {theirs}" in refused.stderr, explain(
        refused
    )
    ok(repo, "adopt", "portraits", ours)
    [run] = repo.state()["portraits"].runs
    assert (run.run_id, run.attempt, run.health.value) == (ours, 1, "Succeeded")
    assert run.outputs["weights"] == f"{OUTPUTS}/{ours}/outputs/weights.bin"
    assert run.metrics == {"loss": 0.5}
    assert [r["run_id"] for r in census(repo)["runs"]] == [theirs]
    ok(repo, "apply")
    same = {"trainops-job": "portraits", "trainops-revision": run.revision}
    mine = [
        j.submission_id
        for j in hand.client.list_jobs()
        if same.items() <= (j.metadata or {}).items()
    ]
    assert mine == [ours]  # nothing submitted again
    assert hand.status(theirs) in ("PENDING", "RUNNING")


def test_a_job_with_another_repositorys_marks_is_not_adoptable(repo: UserRepo, hand: Hand) -> None:
    from trainops.providers.ray import submission_id

    ours = orphaned(repo)
    meta = hand.metadata(ours)
    job, revision = meta["trainops-job"], meta["trainops-revision"]
    other = "github.com/other/models"
    # Another repository's trainops, same job name, revision and input: its own id and marks.
    theirs = hand.runs(
        submission_id=submission_id(job, revision, 2, other),
        metadata={**meta, "trainops-attempt": "2", "trainops-repository": other},
    )
    # Someone copying our marks, repository too, under an id that is not ours for the attempt.
    forged = hand.runs(
        submission_id=submission_id(job, revision, 3, "github.com/forger/models"),
        metadata={**meta, "trainops-attempt": "3"},
    )
    found = {r["run_id"]: r["kind"] for r in census(repo)["runs"]}
    assert found == {forged: "foreign"}  # the other repository's run is its own, not foreign
    for run_id in (theirs, forged):
        refused = repo.trainops("adopt", "portraits", run_id)
        assert refused.returncode == 1, explain(refused)
        assert "not this repository's" in refused.stderr
    assert "portraits" not in repo.state()


def test_apply_and_prune_never_stop_a_foreign_job_even_under_a_forged_state_file(
    repo: UserRepo, hand: Hand
) -> None:
    ours = orphaned(repo)
    ok(repo, "adopt", "portraits", ours)
    meta = hand.metadata(ours)
    running = hand.runs(metadata={**meta, "trainops-attempt": "1"})
    forge_runs(repo, "portraits", running)  # the adopted job's record now names the foreign one
    refused = repo.trainops("adopt", "portraits", running)
    assert refused.returncode == 1, explain(refused)
    repo.write_job("portraits", ray_job("portraits", {"nonce": repo.root.name, "n": 2}))
    repo.commit("new revision")
    repo.trainops("apply", timeout=360)
    repo.remove_job("portraits")
    repo.commit("drop portraits")
    repo.trainops("apply", timeout=360)
    assert hand.status(running) in ("PENDING", "RUNNING")
