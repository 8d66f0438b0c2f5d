"""A private checkout of one commit's tree, where local runs of it execute (DESIGN §13b).

A run executes the commit it was planned from, never the live working tree: `serve` applies the
fetched remote commit without touching the clone's files, and a user may edit or check out
another branch while a run lasts hours. Each tree is checked out once, by git itself
(`read-tree` into a private index, then `checkout-index`: no hook runs, the working tree and its
index are untouched), into `<git-dir>/trainops/trees/<tree-id>/`, and renamed into place whole,
so racing submits share one complete copy. Every run and attempt of that tree shares it; like
the runs' records it lives in the git directory, which `git clean -xfd` never reaches.
"""

from __future__ import annotations

import os
import posixpath
import shutil
import subprocess
import tempfile
from pathlib import Path

from trainops.errors import ProviderError
from trainops.repo import tree_of

TREES = "trees"


def checkout(repo_root: Path, state_dir: Path, commit: str) -> tuple[str, Path]:
    """(tree id, folder) of `commit`'s tree, checked out under `state_dir/trees/` once."""
    try:
        tree = tree_of(repo_root, commit)
    except Exception:
        raise ProviderError(
            f"cannot read commit {commit[:12]} of {repo_root}",
            "the commit being applied must be in this clone",
        ) from None
    home = state_dir / TREES
    final = home / tree
    if final.is_dir():
        return tree, final
    home.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=home))
    index = home / f"{staging.name}.index"
    try:
        env = {**os.environ, "GIT_INDEX_FILE": str(index)}
        for args in (
            ["read-tree", tree],
            ["checkout-index", "--all", "--force", f"--prefix={staging}/"],
        ):
            proc = subprocess.run(
                ["git", *args], cwd=repo_root, env=env, capture_output=True, check=False
            )
            if proc.returncode != 0:
                detail = proc.stderr.decode(errors="replace").strip().splitlines()
                raise ProviderError(
                    f"cannot check out tree {tree[:12]} for the run"
                    + (f": {detail[-1]}" if detail else ""),
                    "local runs execute the applied commit's files, checked out by git",
                )
        try:
            os.rename(staging, final)
        except OSError:
            if not final.is_dir():  # not a racing submit that won: a real failure
                raise
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
        index.unlink(missing_ok=True)
    return tree, final


def workdir_in(root: Path, workdir: str) -> Path | None:
    """`workdir` (repository-relative) inside the checkout `root`; None when it leads outside
    (`..`, an absolute path, or a committed link pointing away)."""
    if workdir.startswith("/"):
        return None
    rel = posixpath.normpath(workdir or ".")
    if rel == ".." or rel.startswith("../"):
        return None
    cwd = (root / rel).resolve()
    return cwd if cwd.is_relative_to(root.resolve()) else None
