"""`trainops init`: a repository with a runnable local job, a Replicate job and workflows.

A folder that is not itself the top level of a git repository becomes a new repository (even
inside another one: the README's `trainops init demo` runs in this project's own checkout), and
the starter files are committed. In an existing repository init only adds what is missing, never
overwrites a file unless told to (`force`), and never commits on the user's branch.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from trainops.errors import UsageError
from trainops.manifest import json_schemas
from trainops.output import output_schemas

_GITIGNORE = ".trainops/\n__pycache__/\n"
_IGNORED = ".trainops/"  # run folders: logs, inputs, weights; never committed
_IDENTITY = ["-c", "user.name=trainops", "-c", "user.email=trainops@localhost"]


@dataclass
class InitResult:
    """What `init` did: files written, files left as they were, and whether it made the
    repository (and so committed)."""

    written: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)  # existing files init appended to
    created_repository: bool = False


def init_repository(target: Path, force: bool = False) -> InitResult:
    """Write the starter files into `target`; commit them when `target` becomes a new repository."""
    if target.exists() and not target.is_dir():
        raise UsageError(f"{target} exists and is not a directory", "pick a folder name")
    target.mkdir(parents=True, exist_ok=True)
    result = InitResult(created_repository=not _is_repository_top(target))
    for rel, text in _starter_files().items():
        dst = target / rel
        if dst.exists() and not force:
            result.skipped.append(rel)
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_bytes(text)
        result.written.append(rel)
    gitignore = target / ".gitignore"
    if not gitignore.exists():
        gitignore.write_text(_GITIGNORE)
        result.written.append(".gitignore")
    else:
        existing = gitignore.read_text(errors="replace")
        if not _ignores_runs(existing):
            sep = "" if not existing or existing.endswith("\n") else "\n"
            gitignore.write_text(f"{existing}{sep}{_IGNORED}\n")
            result.updated.append(".gitignore")
    if result.created_repository:
        _commit_new_repository(target, [*_starter_files(), ".gitignore"])
    return result


def _starter_files() -> dict[str, bytes]:
    """Every file init writes, by path relative to the repository root."""
    files: dict[str, bytes] = {}
    templates = resources.files("trainops") / "templates"
    with resources.as_file(templates) as root:
        for src in sorted((root / "init").rglob("*")):
            if src.is_file() and "__pycache__" not in src.parts:
                files[src.relative_to(root / "init").as_posix()] = src.read_bytes()
        for src in sorted((root / "workflows").glob("*.yml")):
            files[f".github/workflows/{src.name}"] = src.read_bytes()
    # Every schema `trainops schema` writes, so `schema --check` passes in the new repository.
    from trainops.savedplan.model import saved_plan_schemas

    for name, text in {**json_schemas(), **output_schemas(), **saved_plan_schemas()}.items():
        files[f"schemas/{name}"] = text.encode()
    return files


def _ignores_runs(text: str) -> bool:
    lines = {line.strip() for line in text.splitlines()}
    return bool(lines & {".trainops", ".trainops/", "/.trainops", "/.trainops/"})


def _git(target: Path, *args: str) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            ["git", *args], cwd=target, capture_output=True, text=True, check=False
        )
    except FileNotFoundError:
        raise UsageError("git is not installed", "trainops keeps its state in git") from None


def _is_repository_top(target: Path) -> bool:
    """`target` is itself the top level of a work tree (a parent's repository does not count:
    its `.gitignore` may even ignore `target`)."""
    proc = _git(target, "rev-parse", "--show-toplevel")
    if proc.returncode != 0:
        return False
    return Path(proc.stdout.strip()).resolve() == target.resolve()


def _commit_new_repository(target: Path, paths: list[str]) -> None:
    if _git(target, "init", "-q", "-b", "main").returncode != 0:
        raise UsageError(f"{target}: git init failed", "is git installed and the folder writable?")
    added = _git(target, "add", "--", *paths)
    if added.returncode != 0:
        raise UsageError(f"{target}: git add failed: {added.stderr.strip()}")
    identity = [] if _git(target, "config", "user.email").stdout.strip() else _IDENTITY
    proc = _git(target, *identity, "commit", "-q", "--no-verify", "-m", "trainops init")
    if proc.returncode != 0:
        raise UsageError(f"{target}: git commit failed: {proc.stderr.strip()}")
