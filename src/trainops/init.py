"""`trainops init`: a new repository with a runnable local job, a Replicate job and workflows."""

from __future__ import annotations

import shutil
import subprocess
from importlib import resources
from pathlib import Path

from trainops.errors import UsageError
from trainops.manifest import json_schemas

_GITIGNORE = ".trainops/\n__pycache__/\n"


def init_repository(target: Path) -> list[str]:
    """Write the starter files into `target` and commit them. Returns the paths written."""
    if (target / "trainops.yaml").exists():
        raise UsageError(
            f"{target}/trainops.yaml already exists",
            "init writes a new repository; pick an empty directory",
        )
    target.mkdir(parents=True, exist_ok=True)
    written: list[str] = []
    templates = resources.files("trainops") / "templates"
    with resources.as_file(templates) as root:
        for src in sorted((root / "init").rglob("*")):
            if src.is_file() and "__pycache__" not in src.parts:
                rel = src.relative_to(root / "init").as_posix()
                _copy(src, target / rel, written, rel)
        workflows = root / "workflows"
        if workflows.is_dir():
            for src in sorted(workflows.glob("*.yml")):
                rel = f".github/workflows/{src.name}"
                _copy(src, target / rel, written, rel)
    for name, text in json_schemas().items():
        (target / "schemas").mkdir(exist_ok=True)
        (target / "schemas" / name).write_text(text)
        written.append(f"schemas/{name}")
    gitignore = target / ".gitignore"
    if not gitignore.exists():
        gitignore.write_text(_GITIGNORE)
        written.append(".gitignore")
    _commit(target, written)
    return written


def _copy(src: Path, dst: Path, written: list[str], rel: str) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)
    written.append(rel)


def _git(target: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=target, capture_output=True, text=True, check=False)


def _commit(target: Path, paths: list[str]) -> None:
    fresh = _git(target, "rev-parse", "--git-dir").returncode != 0
    if fresh and _git(target, "init", "-q", "-b", "main").returncode != 0:
        raise UsageError(f"{target}: git init failed", "is git installed?")
    _git(target, "add", "--", *paths)
    identity: list[str] = []
    if not _git(target, "config", "user.email").stdout.strip():
        identity = ["-c", "user.name=trainops", "-c", "user.email=trainops@localhost"]
    proc = _git(target, *identity, "commit", "-q", "-m", "trainops init", "--", *paths)
    if proc.returncode != 0:
        raise UsageError(f"{target}: git commit failed: {proc.stderr.strip()}")
