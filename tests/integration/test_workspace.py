"""The workspace as apply sees it: desired state read from a commit of a real repository."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.support.gitrepo import GIT_ENV, make_repo
from trainops.workspace import Workspace

CONFIG = "policy: {max_concurrent_runs: 1}\n"


def manifest(name: str) -> str:
    return (
        "apiVersion: trainops/v1\nkind: TrainingJob\n"
        f"metadata: {{name: {name}}}\n"
        "spec: {provider: local, command: [python, train.py]}\n"
    )


def commit_at(repo: Path, path: str, text: str, date: str) -> None:
    (repo / path).write_text(text)
    env = {**os.environ, **GIT_ENV, "GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date}
    subprocess.run(["git", "add", path], cwd=repo, env=env, check=True)
    subprocess.run(["git", "commit", "-qm", path], cwd=repo, env=env, check=True)


def test_jobs_are_ordered_by_when_their_manifest_last_changed(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"trainops.yaml": CONFIG, "jobs/a.yaml": manifest("a")})
    commit_at(repo, "jobs/b.yaml", manifest("b"), "2024-02-01T00:00:00Z")
    commit_at(repo, "jobs/a.yaml", manifest("a") + "# touched\n", "2024-03-01T00:00:00Z")

    changed = Workspace.open(repo, ref="HEAD").desired().changed_at
    assert changed == {"b": 1706745600.0, "a": 1709251200.0}


def test_without_a_concurrency_cap_nothing_is_looked_up(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"jobs/a.yaml": manifest("a")})
    assert Workspace.open(repo, ref="HEAD").desired().changed_at == {}
