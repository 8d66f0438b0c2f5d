"""Real git repositories for tests: a working clone with a pinned identity, a bare remote.

Every helper shells out to the `git` binary with a hermetic environment (no global or system
config, fixed identity and dates), so a developer's ~/.gitconfig cannot change what tests see.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from pathlib import Path

__all__ = ["GIT_ENV", "HERMETIC_ENV", "clone", "git", "make_repo"]

# Set these in a test's environment (monkeypatch.setenv) so code under test that runs git
# ignores the developer's config too.
HERMETIC_ENV = {
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_TERMINAL_PROMPT": "0",
}

GIT_ENV = {
    **HERMETIC_ENV,
    "GIT_AUTHOR_NAME": "Test Author",
    "GIT_AUTHOR_EMAIL": "author@example.com",
    "GIT_COMMITTER_NAME": "Test Committer",
    "GIT_COMMITTER_EMAIL": "committer@example.com",
    "GIT_AUTHOR_DATE": "2024-01-01T00:00:00Z",
    "GIT_COMMITTER_DATE": "2024-01-01T00:00:00Z",
}


def git(cwd: Path, *args: str, input: str | None = None) -> str:
    """Run git in `cwd` and return its stdout stripped; raise on failure with git's stderr."""
    result = subprocess.run(
        ["git", *args],
        cwd=cwd,
        input=input,
        capture_output=True,
        text=True,
        env={**os.environ, **GIT_ENV},
        check=False,
    )
    if result.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed in {cwd}:\n{result.stderr}")
    return result.stdout.strip()


def make_repo(path: Path, files: Mapping[str, str], remote: Path | None = None) -> Path:
    """Create a repository on branch `main` at `path` holding `files` in one commit (no commit
    when `files` is empty). With `remote`, also create a bare repository there, add it as
    `origin` and push `main` to it (when there is a commit)."""
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "--quiet", "--initial-branch", "main")
    _pin_config(path)
    for name, text in files.items():
        file = path / name
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(text)
    if files:
        git(path, "add", "--", *files)
        git(path, "commit", "--quiet", "-m", "initial")
    if remote is not None:
        git(path.parent, "init", "--quiet", "--bare", "--initial-branch", "main", str(remote))
        git(path, "remote", "add", "origin", str(remote))
        if files:
            git(path, "push", "--quiet", "origin", "main")
    return path


def clone(remote: Path, path: Path) -> Path:
    """Clone `remote` into `path` with the pinned test identity and return `path`."""
    git(path.parent, "clone", "--quiet", str(remote), str(path))
    _pin_config(path)
    return path


def _pin_config(path: Path) -> None:
    git(path, "config", "user.name", GIT_ENV["GIT_AUTHOR_NAME"])
    git(path, "config", "user.email", GIT_ENV["GIT_AUTHOR_EMAIL"])
    git(path, "config", "commit.gpgsign", "false")
