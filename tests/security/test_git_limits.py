"""Bounded (DESIGN §13): argument lists to git are batched, whatever the number of manifests, and
a machine without git gets a clear error, never a traceback."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from tests.support.gitrepo import git, make_repo
from tests.support.workspace import config, explain, manifest, run_cli
from trainops.workspace import Workspace


def test_more_manifest_paths_than_one_git_command_line_holds(tmp_path: Path) -> None:
    # Long paths overflow ARG_MAX (argv + environment) with a few hundred files instead of
    # 100,000: the kernel's real limit, reached cheaply.
    folder = "jobs/" + "/".join(c * 250 for c in "abcdefghijklmn")
    limit = os.sysconf("SC_ARG_MAX")
    count = limit // (len(folder) + 80) + 50
    root = make_repo(
        tmp_path / "repo", {"trainops.yaml": config(policy={"max_concurrent_runs": 1})}
    )
    (root / folder).mkdir(parents=True)
    names = [f"{folder}/job-{i:05d}-{'x' * 60}.yaml" for i in range(count)]
    for i, name in enumerate(names):
        (root / name).write_text(manifest(f"job-{i:05d}", workdir="."))
    assert sum(len(name) + 1 for name in names) > limit
    git(root, "add", "--all")
    git(root, "commit", "--quiet", "-m", "many manifests")
    desired = Workspace.open(root, ref="HEAD").desired()
    assert len(desired.targets) == count
    assert len(set(desired.changed_at.values())) == 1 and len(desired.changed_at) == count


def test_no_git_on_path_is_a_usage_error(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo", {"jobs/a.yaml": manifest("a"), "train.py": ""})
    bare = tmp_path / "bin"  # the interpreter alone: no git
    bare.mkdir()
    os.symlink(sys.executable, bare / "python")
    assert shutil.which("git", path=str(bare)) is None
    for command in ("plan", "apply", "status"):
        result = run_cli(root, command, env={"PATH": str(bare)})
        assert result.returncode == 2, explain(result)
        assert "git is not installed (no `git` on PATH)" in result.stderr, explain(result)
        assert "Traceback" not in result.stderr and "internal error" not in result.stderr
