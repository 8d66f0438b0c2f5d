"""Never twice on Ray (DESIGN §8, issue 14): `trainops apply` killed by SIGKILL at every step
boundary, then applied again; and two applies racing on clones of one remote. Counted at the
real cluster (one session head): exactly one Ray job per (job, revision, attempt), each recorded
in state under its run id.

The submission id is the claim: a submit whose answer was lost is adopted with one
`get_job_info`, and a resubmission of the same attempt is refused by the cluster itself. An
intent killed before its submit creates nothing until the adoption grace has passed (the CLI's
real clock), so those points check that nothing was duplicated rather than convergence. The jobs
hold until the test releases them, so runs stay active while they are counted.
"""

from __future__ import annotations

import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support import sweep
from tests.support.rayhead import TIMEOUT, RayHead
from tests.support.workspace import UserRepo, config, explain

HOLD = """\
import json, os, time
params = json.load(open(os.environ["TRAINOPS_INPUT"]))
deadline = time.monotonic() + 90
while not os.path.exists(params["hold"]) and time.monotonic() < deadline:
    time.sleep(0.1)
print("done", os.environ["TRAINOPS_RUN_ID"])
"""
JOBS = ["a", "b"]
CRASHPOINTS = [
    "after-observe",
    "before-push#1",  # the intents' commit built, not published
    "after-intents",
    "after-cancel",
    "after-submit",
    "before-push#2",  # run ids recorded in a commit, not published
    "after-save",
]

pytestmark = TIMEOUT


def ray_job(name: str, **input: Any) -> str:
    spec = {
        "provider": "ray",
        "command": ["python", "hold.py"],
        "workdir": "rayjobs",
        "input": input,
    }
    doc = {"apiVersion": "trainops/v1", "kind": "TrainingJob", "metadata": {"name": name}}
    return yaml.safe_dump({**doc, "spec": spec}, sort_keys=False)


def make_repo(base: Path, head: RayHead, name: str = "repo") -> UserRepo:
    cfg = config(providers={"ray": {"output_uri": str(base / f"{name}-outputs")}})
    repo = UserRepo.create(base, {}, cfg=cfg, name=name)
    repo.write("rayjobs/hold.py", HOLD)
    repo.env = {"RAY_ADDRESS": head.address}
    return repo


def write_jobs(repo: UserRepo, round_: int) -> None:
    for job in JOBS:
        repo.write_job(
            job, ray_job(job, hold=repo.hold_path("all"), round=round_, at=str(repo.root))
        )


def at_cluster(head: RayHead, repo: UserRepo) -> Counter[tuple[str, str, str]]:
    """Ray jobs of this repository's jobs, by (job, revision, attempt), counted at the head."""
    from ray.job_submission import JobSubmissionClient

    revisions = {r.revision for s in repo.state().values() for r in s.runs}
    found: Counter[tuple[str, str, str]] = Counter()
    for info in JobSubmissionClient(head.address).list_jobs():
        meta = info.metadata or {}
        if meta.get("trainops-revision") in revisions:
            key = (meta["trainops-job"], meta["trainops-revision"], meta["trainops-attempt"])
            found[key] += 1
    return found


def recorded(repo: UserRepo) -> dict[tuple[str, str, str], str]:
    return {
        (job, run.revision, str(run.attempt)): run.run_id
        for job, state in repo.state().items()
        for run in state.runs
        if run.run_id
    }


def apply_ok(repo: UserRepo) -> subprocess.CompletedProcess[str]:
    result = repo.trainops("apply", timeout=120)
    assert result.returncode == 0, explain(result)
    return result


# TRAINOPS_SWEEP=full: every point; by default the ones where a crash loses the most
@pytest.mark.parametrize(
    "point", sweep.points(CRASHPOINTS, ["after-intents", "after-submit", "before-push#2"])
)
def test_kill_at_each_step_boundary_then_apply_again(
    tmp_path: Path, ray_head: RayHead, point: str
) -> None:
    repo = make_repo(tmp_path, ray_head)
    try:
        write_jobs(repo, 0)
        repo.commit("round 0")
        if point == "after-cancel":  # a pass that cancels: the jobs' old revisions are running
            apply_ok(repo)
            write_jobs(repo, 1)
            repo.commit("round 1")
        killed = repo.trainops("apply", env={"TRAINOPS_CRASHPOINT": point}, timeout=120)
        assert killed.returncode == -9, f"apply was not killed at {point}\n{explain(killed)}"
        recovered = apply_ok(repo)
        counts = at_cluster(ray_head, repo)
        assert all(n == 1 for n in counts.values()), counts  # never twice, at the cluster
        assert all(attempt == "1" for _, _, attempt in counts), counts  # no attempt was lost
        runs = recorded(repo)
        assert set(runs) == set(counts), (runs, counts)  # every job at the cluster is recorded
        if point == "after-cancel":
            # Killed after the first cancel, with the new revisions' intents saved: a's old run
            # is stopped; b's keeps running while its successor's intent is adopted (after the
            # grace it is replaced); no new revision was submitted by anyone meanwhile.
            assert len(counts) == len(JOBS), counts
            first = runs[next(k for k in runs if k[0] == "a")]
            assert _status(ray_head, first, "STOPPED") == "STOPPED", explain(recovered)
        elif point in ("after-intents", "after-submit"):
            # Killed between the intents and (the rest of) the submits: what was submitted is
            # adopted under its id; the rest waits for the adoption grace, submitted by no one.
            assert len(counts) == (1 if point == "after-submit" else 0), counts
        else:
            assert sorted(job for job, _, _ in counts) == JOBS, counts
    finally:
        repo.release("all")


def _status(head: RayHead, run_id: str, wanted: str, timeout: float = 60.0) -> str:
    """The job's status once it is `wanted` (or as it is at the deadline)."""
    from ray.job_submission import JobSubmissionClient

    client = JobSubmissionClient(head.address)
    deadline = time.monotonic() + timeout
    while True:
        found = str(client.get_job_status(run_id).value)
        if found == wanted or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


SLOW_PUSH = "#!/bin/sh\nsleep 0.3\n"  # widens the window in which both racers read one version


def test_two_applies_racing_on_clones_submit_each_attempt_once(
    tmp_path: Path, ray_head: RayHead
) -> None:
    """Two clones of one remote apply at once, twice (a new revision each round): one wins the
    compare-and-swap, the other re-plans and finds the intents (or the runs) already there.
    Ray runs belong to the cluster, not a clone, so either settles them."""
    first = make_repo(tmp_path, ray_head)
    assert first.remote is not None
    hook = first.remote / "hooks" / "pre-receive"
    hook.write_text(SLOW_PUSH)
    hook.chmod(0o755)
    second = UserRepo.clone_of(first, tmp_path / "second")
    second.env = dict(first.env)
    lost_swaps = 0
    try:
        for round_ in range(2):
            write_jobs(first, round_)
            first.commit(f"round {round_}")
            second.pull()
            racers = [first.start("apply"), second.start("apply")]
            for proc in racers:
                out, err = proc.communicate(timeout=120)
                assert proc.returncode == 0, f"round {round_}: {proc.returncode}\n{out}{err}"
                lost_swaps += out.count("state moved while planning")
            apply_ok(second)
            apply_ok(first)
            counts = at_cluster(ray_head, first)
            assert max(counts.values()) == 1, counts
            assert len(counts) == len(JOBS) * (round_ + 1), counts  # one run per revision
            assert all(attempt == "1" for _, _, attempt in counts), counts
            assert set(recorded(first)) == set(counts)
        assert lost_swaps > 0, "the applies never raced: no compare-and-swap was lost"
    finally:
        first.release("all")
