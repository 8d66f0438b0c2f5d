"""Two repositories on one shared Ray cluster (issue 26 finding 1, DESIGN §9): submission ids
were `trainops-<job>-<revision>-<attempt>`, the same for two repositories with the same job, so
the second repository adopted the first's run, and a forged record could stop it. Ids are now
scoped to the repository id, and a run is acted on only when the cluster's record (its id and
metadata) is this repository's. A real Ray head on loopback (the session's)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.test_ray_cli import cluster_jobs, ray_job, ray_repo
from tests.emulators.s3 import MotoS3
from tests.security.test_state_branch import forge
from tests.support.gitrepo import git
from tests.support.rayhead import TIMEOUT, RayHead, ray_head
from tests.support.workspace import explain
from trainops.state.layout import state_path

__all__ = ["ray_head"]

pytestmark = TIMEOUT


@pytest.fixture
def s3() -> Iterator[MotoS3]:
    with MotoS3() as server:
        for bucket in ("ray-outputs", "models"):
            server.client().create_bucket(Bucket=bucket)
        yield server


def test_two_repositories_with_the_same_job_never_share_or_stop_each_others_run(
    tmp_path: Path, ray_head: RayHead, s3: MotoS3
) -> None:
    from ray.job_submission import JobStatus, JobSubmissionClient

    nonce = tmp_path.name  # a revision of its own: the session's cluster keeps every job
    job = ray_job("train", {"nonce": nonce, "seconds": 90})
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = ray_repo(tmp_path / "a", ray_head, s3, {"train": job})
    b = ray_repo(tmp_path / "b", ray_head, s3, {"train": job})
    client = JobSubmissionClient(ray_head.address)
    try:
        for repo in (a, b):
            applied = repo.trainops("apply", timeout=120)
            assert applied.returncode == 0, explain(applied)
        ours, theirs = a.state()["train"].runs[-1], b.state()["train"].runs[-1]
        assert ours.revision == theirs.revision  # the same job, the same revision
        assert ours.run_id != theirs.run_id  # B started its own run, never adopted A's
        assert cluster_jobs(ray_head, {ours.revision}) == Counter({("train", "1"): 2})

        # B's state branch is forged to name A's run as its own; B removes the job from git,
        # so B's apply would stop the run it records.
        assert b.remote is not None
        record = json.loads(git(b.remote, "show", f"{b.branch}:{state_path('train')}"))
        record["runs"][-1]["run_id"] = ours.run_id
        forge(b, {state_path("train"): json.dumps(record)})
        b.remove_job("train")
        b.commit("train moves elsewhere")

        result = b.trainops("apply", timeout=120)

        assert result.returncode == 1, explain(result)
        assert f"run {ours.run_id} is not this job's run: left alone" in result.stderr
        assert client.get_job_status(ours.run_id) in (JobStatus.PENDING, JobStatus.RUNNING)
    finally:  # the session's cluster outlives the test: stop what it left running
        for info in client.list_jobs():
            mine = (info.metadata or {}).get("trainops-job") == "train"
            if mine and info.submission_id and not info.status.is_terminal():
                client.stop_job(info.submission_id)
        a.cleanup()
        b.cleanup()
