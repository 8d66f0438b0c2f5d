"""Reading a user's repository: `trainops.yaml` and the manifest files it selects.

Desired state comes from one of two places (DESIGN §3): the working tree (`plan`, `validate`, so a
user can preview before committing) or a commit (`apply` reads `HEAD`). Both are a `Source`: a
list of file paths and a way to read one.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Protocol

from trainops.errors import UsageError

CONFIG_FILE = "trainops.yaml"
LOCK_FILE = "trainops.lock"
_SKIP_DIRS = {".git", ".trainops", "node_modules", "__pycache__", ".venv"}


class Source(Protocol):
    @property
    def root(self) -> Path: ...

    def files(self, prefix: str) -> Iterable[str]:
        """Repository-relative paths (with `/`) of the files under `prefix` ("" for all)."""
        ...

    def read(self, path: str) -> bytes | None:
        """The file's bytes, or None when it does not exist."""
        ...


@dataclass(frozen=True)
class WorkingTree:
    root: Path

    def files(self, prefix: str) -> Iterable[str]:
        top = self.root / prefix if prefix else self.root
        if top.is_file():
            yield prefix
            return
        for dirpath, dirnames, filenames in os.walk(top):
            dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS)
            rel = Path(dirpath).relative_to(self.root).as_posix()
            for name in sorted(filenames):
                yield name if rel == "." else f"{rel}/{name}"

    def read(self, path: str) -> bytes | None:
        full = self.root / path
        if not full.is_file():
            return None
        from trainops.yamlsource import MAX_FILE_BYTES

        if full.stat().st_size > MAX_FILE_BYTES:
            return b"\0" * (MAX_FILE_BYTES + 1)  # the loader refuses it with the size message
        return full.read_bytes()


@dataclass(frozen=True)
class Commit:
    """The files of one commit, read with git itself (no working tree involved)."""

    root: Path
    sha: str

    @classmethod
    def resolve(cls, root: Path, ref: str = "HEAD") -> Commit:
        proc = subprocess.run(["git", "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"],
                              cwd=root, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise UsageError(f"{root}: cannot resolve {ref!r} to a commit",
                             "apply reads manifests from a commit: commit them first")
        return cls(root, proc.stdout.strip())

    def files(self, prefix: str) -> Iterable[str]:
        return [p for p in self._all() if p.startswith(prefix)]

    def read(self, path: str) -> bytes | None:
        proc = subprocess.run(["git", "cat-file", "blob", f"{self.sha}:{path}"], cwd=self.root,
                              capture_output=True, check=False)
        return proc.stdout if proc.returncode == 0 else None

    def _all(self) -> list[str]:
        return _ls_tree(self.root, self.sha)


@lru_cache(maxsize=8)
def _ls_tree(root: Path, sha: str) -> list[str]:
    out = subprocess.run(["git", "ls-tree", "-r", "-z", "--name-only", sha], cwd=root,
                         capture_output=True, check=True).stdout
    return [p.decode() for p in out.split(b"\0") if p]


def select(source: Source, patterns: list[str]) -> list[str]:
    """The manifest files matched by `trainops.yaml`'s `jobs` globs, sorted, each once."""
    found: set[str] = set()
    for pattern in patterns:
        regex = _glob_regex(pattern)
        for path in source.files(_static_prefix(pattern)):
            if regex.match(path):
                found.add(path)
    return sorted(found)


def _static_prefix(pattern: str) -> str:
    parts = pattern.split("/")
    fixed: list[str] = []
    for part in parts[:-1]:
        if any(c in part for c in "*?["):
            break
        fixed.append(part)
    return "/".join(fixed)


@lru_cache(maxsize=64)
def _glob_regex(pattern: str) -> re.Pattern[str]:
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
        elif pattern.startswith("**", i):
            out += ".*"
            i += 2
        elif pattern[i] == "*":
            out += "[^/]*"
            i += 1
        elif pattern[i] == "?":
            out += "[^/]"
            i += 1
        else:
            out += re.escape(pattern[i])
            i += 1
    return re.compile(out + r"\Z")
