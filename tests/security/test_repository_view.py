"""One view of the repository (DESIGN §13): `plan` reads the working tree, `apply` the commit, and
the same files count in both. A pull request cannot hide a job from the review, cancel runs by
swapping a folder for a link, or make trainops read files outside the repository."""

from __future__ import annotations

import os
from pathlib import Path

from tests.support.gitrepo import git
from tests.support.workspace import UserRepo, explain, manifest


def test_a_force_added_skipped_folder_counts_nowhere(tmp_path: Path) -> None:
    repo = UserRepo.create(tmp_path, {})
    repo.write("jobs/node_modules/hidden.yaml", manifest("hidden", {"ledger": repo.ledger_path()}))
    git(repo.root, "add", "--force", "jobs/node_modules/hidden.yaml")
    repo.commit("a job the review does not see")
    plan = repo.trainops("plan")
    assert plan.returncode == 0 and "No changes" in plan.stdout, explain(plan)
    repo.apply_ok()
    assert repo.run_ids() == [] and repo.ledger() == []  # apply agrees with the plan


def test_a_linked_jobs_folder_is_an_error_and_cancels_nothing(tmp_path: Path) -> None:
    repo = UserRepo.create(tmp_path, {"held": manifest("held", {"hold": str(tmp_path / "h")})})
    repo.apply_ok()
    [run_id] = repo.run_ids()
    repo.wait_status(run_id, {"running"})
    os.rename(repo.root / "jobs", repo.root / "jobs.real")
    os.symlink("jobs.real", repo.root / "jobs")
    repo.commit("jobs is now a link")
    for command in ("validate", "plan", "apply"):
        result = repo.trainops(command)
        assert result.returncode == 1, explain(result)
        assert "jobs: symlink on the jobs path is not followed" in result.stderr, explain(result)
    assert repo.status(run_id)["status"] == "running"  # not pruned: the job set is incomplete
    (tmp_path / "h").touch()


def test_a_link_out_of_the_repository_is_never_read(tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "secret.yaml").write_text("the_outside_key: 1\n")
    repo = UserRepo.create(tmp_path, {"good": manifest("good")})
    os.symlink(outside, repo.root / "jobs" / "more")
    os.symlink("/proc/self/environ", repo.root / "jobs" / "env.yaml")
    result = repo.trainops("validate")
    assert result.returncode == 1, explain(result)
    assert "the_outside_key" not in result.stdout + result.stderr
    for path in ("jobs/env.yaml", "jobs/more"):
        assert f"{path}: symlink on the jobs path is not followed" in result.stderr


def test_a_committed_link_to_a_manifest_is_an_error_for_apply(tmp_path: Path) -> None:
    repo = UserRepo.create(tmp_path, {"good": manifest("good")})
    repo.write("outside.yaml", manifest("smuggled", {"ledger": repo.ledger_path()}))
    os.symlink("../outside.yaml", repo.root / "jobs" / "smuggled.yaml")
    repo.commit("a link in the commit (mode 120000)")
    result = repo.trainops("apply")
    assert result.returncode == 1, explain(result)
    assert "jobs/smuggled.yaml: symlink on the jobs path is not followed" in result.stderr
    assert repo.ledger() == []


def test_yml_counts_and_renaming_to_it_is_not_a_prune(tmp_path: Path) -> None:
    hold = str(tmp_path / "h")
    repo = UserRepo.create(tmp_path, {"held": manifest("held", {"hold": hold})}, cfg="{}\n")
    repo.write("jobs/other.yml", manifest("other", {"hold": hold}))
    repo.commit("a .yml manifest")
    repo.apply_ok()
    assert len(repo.run_ids()) == 2  # both extensions count by default (DESIGN §1)
    for run_id in repo.run_ids():
        repo.wait_status(run_id, {"running"})
    os.rename(repo.root / "jobs/held.yaml", repo.root / "jobs/held.yml")
    repo.commit("rename")
    plan = repo.trainops("plan")
    assert plan.returncode == 0 and "No changes" in plan.stdout, explain(plan)
    repo.apply_ok()
    assert len(repo.run_ids()) == 2
    assert {repo.status(r)["status"] for r in repo.run_ids()} == {"running"}
    (tmp_path / "h").touch()


def test_workdir_through_a_link_out_of_the_repository_is_an_error(tmp_path: Path) -> None:
    repo = UserRepo.create(tmp_path, {"escape": manifest("escape", workdir="wd")})
    os.symlink(tmp_path, repo.root / "wd")
    repo.commit("wd is a link out")
    for command in ("validate", "apply"):
        result = repo.trainops(command)
        assert result.returncode == 1, explain(result)
        assert "workdir 'wd' leads outside the repository" in result.stderr, explain(result)
    assert repo.run_ids() == []


def test_a_committed_link_cannot_move_the_runs_folder_out(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    (victim / "runs").mkdir(parents=True)
    repo = UserRepo.create(tmp_path, {"good": manifest("good")})
    os.symlink(victim, repo.root / ".trainops")
    repo.commit("runs_dir (.trainops/runs by default) now leads to victim/runs")
    assert git(repo.root, "ls-files", "-s", ".trainops").startswith("120000")
    for command in ("plan", "apply"):
        result = repo.trainops(command)
        assert result.returncode == 1, explain(result)
        assert "runs_dir '.trainops/runs' leads outside the repository" in result.stderr
    assert list((victim / "runs").iterdir()) == []


def test_working_tree_and_commit_count_the_same_files(tmp_path: Path) -> None:
    from trainops.jobglobs import select
    from trainops.repo import Commit, WorkingTree

    repo = UserRepo.create(tmp_path, {"a": manifest("a")})
    for path in ("jobs/deep/b.yml", "jobs/.venv/c.yaml", "jobs/__pycache__/d.yaml", "jobs/e.txt"):
        repo.write(path, manifest("x"))
    (repo.root / "jobs/deep/f.yaml").symlink_to("b.yml")
    (repo.root / "jobs/g").symlink_to("deep")
    (repo.root / "jobs/h.txt").symlink_to("e.txt")
    (repo.root / "train.py.link").symlink_to("train.py")  # outside the jobs path: allowed
    git(repo.root, "add", "--force", "--all")
    repo.commit("every kind of entry")
    patterns = ["jobs/**/*.yaml", "jobs/**/*.yml", "jobs/*.txt", "*.yaml"]
    tree = select(WorkingTree(repo.root), patterns)
    commit = select(Commit.resolve(repo.root), patterns)
    assert tree == commit
    assert tree.files == ["jobs/a.yaml", "jobs/deep/b.yml", "jobs/e.txt", "trainops.yaml"]
    assert tree.links == ["jobs/deep/f.yaml", "jobs/g", "jobs/h.txt"]
