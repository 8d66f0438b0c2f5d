"""`trainops init` as a newcomer runs it: inside another repository, in an existing repository,
and again after a first run (DESIGN §1, issue 10)."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.test_cli_validate import git, hermetic_git_env, trainops


def _project(root: Path) -> Path:
    """A checkout like this project's own: a repository whose .gitignore ignores /demo/."""
    root.mkdir()
    (root / ".gitignore").write_text("/demo/\n")
    git_env = ["-c", "user.name=a", "-c", "user.email=a@example.com"]
    for args in (["init", "-q", "-b", "main"], ["add", "."], [*git_env, "commit", "-qm", "x"]):
        git(root, *args)
    return root


def test_init_inside_another_repository_makes_its_own(tmp_path: Path) -> None:
    env = hermetic_git_env(tmp_path)
    project = _project(tmp_path / "project")
    proc = trainops("init", "demo", cwd=project, env=env)
    assert (proc.returncode, proc.stderr) == (0, "")
    demo = project / "demo"
    assert git(demo, "rev-parse", "--show-toplevel") == str(demo.resolve())
    assert git(demo, "rev-list", "--count", "HEAD") == "1"
    assert git(demo, "status", "--porcelain") == ""
    assert "jobs/tiny-regression.yaml" in git(demo, "ls-files").splitlines()
    assert git(project, "rev-list", "--count", "HEAD") == "1"  # the parent is untouched


def test_init_in_an_existing_repository_adds_only_missing_files(tmp_path: Path) -> None:
    env = hermetic_git_env(tmp_path)
    repo = _project(tmp_path / "repo")
    (repo / ".github" / "workflows").mkdir(parents=True)
    mine = "# my own apply workflow\n"
    (repo / ".github" / "workflows" / "apply.yml").write_text(mine)
    proc = trainops("init", ".", cwd=repo, env=env)
    assert (proc.returncode, proc.stderr) == (0, "")
    assert (repo / ".github" / "workflows" / "apply.yml").read_text() == mine
    assert "Skipped 1 file(s)" in proc.stdout and ".github/workflows/apply.yml" in proc.stdout
    assert (repo / ".gitignore").read_text() == "/demo/\n.trainops/\n"
    assert (repo / "jobs" / "tiny-regression.yaml").is_file()
    assert git(repo, "rev-list", "--count", "HEAD") == "1"  # nothing committed on the branch

    forced = trainops("init", ".", "--force", cwd=repo, env=env)
    assert forced.returncode == 0
    assert (repo / ".github" / "workflows" / "apply.yml").read_text() != mine
    assert (repo / ".gitignore").read_text().count(".trainops/") == 1


def test_init_again_skips_what_exists(tmp_path: Path) -> None:
    env = hermetic_git_env(tmp_path)
    assert trainops("init", "demo", cwd=tmp_path, env=env).returncode == 0
    again = trainops("init", "demo", cwd=tmp_path, env=env)
    assert (again.returncode, again.stderr) == (0, "")
    assert "Initialized trainops in the existing repository demo (0 files)" in again.stdout
    assert git(tmp_path / "demo", "rev-list", "--count", "HEAD") == "1"


def test_init_finishes_a_half_written_folder(tmp_path: Path) -> None:
    # What the old init left behind when its commit failed: files, no repository of its own.
    env = hermetic_git_env(tmp_path)
    (tmp_path / "demo").mkdir()
    (tmp_path / "demo" / "trainops.yaml").write_text("jobs: ['jobs/**/*.yaml']\n")
    proc = trainops("init", "demo", cwd=tmp_path, env=env)
    assert proc.returncode == 0
    assert git(tmp_path / "demo", "status", "--porcelain") == ""
    assert "trainops.yaml" in git(tmp_path / "demo", "ls-files").splitlines()


def test_example_jobs_pass_lock_check_right_after_init(tmp_path: Path) -> None:
    env = hermetic_git_env(tmp_path)
    assert trainops("init", "demo", cwd=tmp_path, env=env).returncode == 0
    proc = trainops("lock", "--check", "--dir", "demo", cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "only suspended jobs use it" in proc.stderr


def test_lock_check_asks_for_the_trainer_once_the_job_is_unsuspended(tmp_path: Path) -> None:
    env = hermetic_git_env(tmp_path)
    assert trainops("init", "demo", cwd=tmp_path, env=env).returncode == 0
    job = tmp_path / "demo" / "jobs" / "portraits-lora.yaml"
    job.write_text(job.read_text().replace("suspend: true", "suspend: false"))
    proc = trainops("lock", "--check", "--dir", "demo", cwd=tmp_path, env=env)
    assert proc.returncode == 1
    assert "is not in the lock" in proc.stderr
