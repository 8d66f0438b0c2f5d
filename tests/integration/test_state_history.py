"""Retention on a real state branch: the tip stays small, `history` finds every run ever
recorded without walking the branch, and a branch written by the released (flat, keep-all)
layout is read and compacted without losing a run or a dollar."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.support.gitrepo import HERMETIC_ENV, git, make_repo
from trainops import cost
from trainops.state.admin import compact, read_jobs
from trainops.state.git import GitStateStore
from trainops.state.history import job_history
from trainops.state.layout import snapshot_path, state_path
from trainops.state.model import Health, JobState, Run, month_of
from trainops.state.retention import KEEP_TERMINAL, state_changes

BUNDLE = Path(__file__).parents[1] / "fixtures" / "legacy_state" / "legacy-state.bundle"
PRICES = {"gpu-a100": 0.0014}


@pytest.fixture(autouse=True)
def _hermetic_git(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in HERMETIC_ENV.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "work", {"README.md": "hello\n"})


def a_run(job: str, i: int, health: Health = Health.SUCCEEDED) -> Run:
    return Run(
        revision=f"{i:012x}",
        attempt=1,
        provider="local",
        input_hash="h",
        created_at=1_780_000_000.0 + i * 86400,
        completed_at=1_780_000_000.0 + i * 86400 + 60,
        run_id=f"{job}-{i}",
        health=health,
        cost_usd=0.5,
        snapshot=snapshot_path(job, f"{i:012x}"),
    )


def test_history_returns_every_run_while_the_tip_keeps_a_few(repo: Path) -> None:
    store = GitStateStore(repo)
    version, jobs = "", {"a": JobState("a"), "b": JobState("b")}
    for i in range(40):
        base = dict(jobs)
        for name in jobs:  # submitted, then ended: two writes per run, as apply does
            jobs[name] = jobs[name].with_run(a_run(name, i, Health.RUNNING))
        changes = state_changes(jobs, base, version)
        changes |= {snapshot_path(n, f"{i:012x}"): f"rev {i}\n" for n in jobs}
        version = store.save(version, changes, f"intents {i}")
        base = read_jobs(store)[1]
        jobs = {n: s.with_run(a_run(n, i)) for n, s in base.items()}
        version = store.save(version, state_changes(jobs, base, version), f"outcome {i}")
        jobs = read_jobs(store)[1]

    assert len(git(repo, "rev-list", "trainops/state").split()) == 80
    tip = read_jobs(store)[1]["a"]
    assert len(tip.runs) <= 2 * KEEP_TERMINAL
    assert tip.runs[-1].health is Health.SUCCEEDED
    found = job_history(store, "a")
    assert [r.run_id for r in found.runs] == [f"a-{i}" for i in range(40)]
    assert all(r.health is Health.SUCCEEDED for r in found.runs)  # each run's last word
    assert found.hops <= 40 // KEEP_TERMINAL + 1 and not found.problem
    assert store.history("b") == job_history(store, "b").runs
    # the snapshots of dropped runs left the tip with them
    snapshots = git(repo, "ls-tree", "-r", "--name-only", version, "--", "snapshots/").split()
    assert len(snapshots) == 2 * len(tip.runs)
    # cost of every month as before any run was dropped: 80 runs, $0.50 each
    months = {month_of(r.completed_at or 0) for r in found.runs}
    spent = sum(cost.month_spend(read_jobs(store)[1].values(), {}, m, 0) for m in months)
    assert spent == pytest.approx(40.0)


def test_a_commit_touching_one_job_rewrites_small_trees(repo: Path) -> None:
    store = GitStateStore(repo)
    jobs = {
        f"job-{i:04d}": JobState(f"job-{i:04d}", (a_run(f"job-{i:04d}", 1),)) for i in range(600)
    }
    v1 = store.save("", state_changes(jobs, {}, ""), "many")
    one = {"job-0007": jobs["job-0007"].with_run(a_run("job-0007", 2))}

    v2 = store.save(v1, state_changes(one, jobs, v1), "one")

    changed = git(repo, "diff-tree", "-r", "-t", "--name-only", v1, v2).split()
    assert changed == ["state", state_path("job-0007").rsplit("/", 1)[0], state_path("job-0007")]
    for tree in changed[:2]:
        assert len(git(repo, "ls-tree", f"{v2}:{tree}").splitlines()) <= 256


def test_a_branch_written_by_the_released_layout_is_read_and_compacted_losing_nothing(
    repo: Path,
) -> None:
    git(repo, "fetch", "-q", str(BUNDLE), "trainops/state:trainops/state")
    store = GitStateStore(repo)
    old_version, old = read_jobs(store)
    assert {s.path for s in old.values()} == {f"state/{n}.json" for n in old}  # flat
    months = sorted(
        {month_of(r.completed_at or r.created_at) for s in old.values() for r in s.runs}
    )
    before = {
        (m, by): cost.spend_by(old.values(), PRICES, m, by, 2e9)
        for m in months
        for by in ("job", "team")
    }
    every = {n: [r.run_id for r in s.runs] for n, s in old.items()}

    done = compact(store)

    version, new = read_jobs(store)
    assert done.jobs == 3 and done.runs_dropped > 30 and done.version == version
    assert {s.path for s in new.values()} == {state_path(n) for n in new}  # fanned out
    assert all(len(s.runs) < len(old[n].runs) for n, s in new.items())
    assert any(r.active for r in new["train"].runs)  # the run still going stays at the tip
    for key, groups in before.items():
        after = cost.spend_by(new.values(), PRICES, *key, 2e9)
        assert {k: (n, round(v, 6)) for k, (n, v) in after.items()} == {
            k: (n, round(v, 6)) for k, (n, v) in groups.items()
        }, key
    for name, run_ids in every.items():
        assert [r.run_id for r in job_history(store, name).runs] == run_ids
    assert compact(store).jobs == 0  # nothing more to do
    subprocess.run(["git", "-C", str(repo), "fsck", "--strict", "--no-progress"], check=True)
    assert old_version in git(repo, "rev-list", "trainops/state").split()
