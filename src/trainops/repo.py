"""Reading a user's repository: `trainops.yaml` and the manifest files it selects.

Desired state comes from one of two places (DESIGN §3): the working tree (`plan`, `validate`, so a
user can preview before committing) or a commit (`apply` reads `HEAD`). Both are a `Source`: a
list of file paths and a way to read one.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterable, Sequence
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

    def read_many(self, paths: Sequence[str]) -> dict[str, bytes | None]:
        """`read` of every path at once (a commit answers them all with one git process)."""
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
        if full.is_symlink() and not full.resolve().is_relative_to(self.root.resolve()):
            return None  # a link out of the repository (a pull request could add one): skipped
        if not full.is_file():
            return None
        from trainops.yamlsource import MAX_FILE_BYTES

        if full.stat().st_size > MAX_FILE_BYTES:
            return _oversize()
        return full.read_bytes()

    def read_many(self, paths: Sequence[str]) -> dict[str, bytes | None]:
        return {path: self.read(path) for path in paths}


@dataclass(frozen=True)
class Commit:
    """The files of one commit, read with git itself (no working tree involved)."""

    root: Path
    sha: str

    @classmethod
    def resolve(cls, root: Path, ref: str = "HEAD") -> Commit:
        proc = subprocess.run(
            ["git", "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"],
            cwd=root,
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise UsageError(
                f"{root}: cannot resolve {ref!r} to a commit",
                "apply reads manifests from a commit: commit them first",
            )
        return cls(root, proc.stdout.strip())

    def files(self, prefix: str) -> Iterable[str]:
        return [p for p in self._all() if p.startswith(prefix)]

    def read(self, path: str) -> bytes | None:
        return self.read_many([path])[path]

    def read_many(self, paths: Sequence[str]) -> dict[str, bytes | None]:
        """One `git cat-file --batch` for all of them: a process per file made `apply` over
        10,000 manifests spend most of its time starting git."""
        blobs = _ls_tree(self.root, self.sha)
        out: dict[str, bytes | None] = {}
        wanted: dict[str, list[str]] = {}  # blob sha -> paths
        for path in paths:
            blob = blobs.get(path)
            if blob is None:
                out[path] = None
            elif blob[1] > _max_bytes():
                out[path] = _oversize()
            else:
                wanted.setdefault(blob[0], []).append(path)
        if wanted:
            data = subprocess.run(
                ["git", "cat-file", "--batch"],
                cwd=self.root,
                check=True,
                input="".join(f"{sha}\n" for sha in wanted).encode(),
                capture_output=True,
            ).stdout
            pos = 0
            for same in wanted.values():
                end = data.index(b"\n", pos)
                header, pos = data[pos:end], end + 1
                if header.endswith(b" missing"):  # a partial clone lacking the blob
                    out.update(dict.fromkeys(same))
                    continue
                size = int(header.rsplit(b" ", 1)[1])
                out.update(dict.fromkeys(same, data[pos : pos + size]))
                pos += size + 1
        return out

    def _all(self) -> list[str]:
        return list(_ls_tree(self.root, self.sha))


def _max_bytes() -> int:
    from trainops.yamlsource import MAX_FILE_BYTES

    return MAX_FILE_BYTES


def _oversize() -> bytes:
    """Stands for a file too big to read: the loader refuses it with the size message."""
    return b"\0" * (_max_bytes() + 1)


@lru_cache(maxsize=8)
def _ls_tree(root: Path, sha: str) -> dict[str, tuple[str, int]]:
    """path -> (blob sha, size) of every file of commit `sha`."""
    out = subprocess.run(
        ["git", "ls-tree", "-r", "-z", "--long", sha], cwd=root, capture_output=True, check=True
    ).stdout
    files: dict[str, tuple[str, int]] = {}
    for record in out.split(b"\0"):
        meta, _, path = record.partition(b"\t")
        fields = meta.split()
        if len(fields) == 4 and fields[1] == b"blob":
            files[path.decode()] = (fields[2].decode(), int(fields[3]))
    return files


def select(source: Source, patterns: list[str]) -> list[str]:
    """The manifest files matched by `trainops.yaml`'s `jobs` globs, sorted, each once."""
    found: set[str] = set()
    for pattern in patterns:
        regex = _glob_regex(pattern)
        for path in source.files(_static_prefix(pattern)):
            if regex.match(path):
                found.add(path)
    return sorted(found)


def selects(patterns: list[str], path: str) -> bool:
    """Whether one of the `jobs` globs selects `path`."""
    return any(_glob_regex(pattern).match(path) for pattern in patterns)


def pathspecs(patterns: list[str]) -> list[str]:
    """Folders (or files) that hold every path the globs can select; [] means the whole tree."""
    specs = set()
    for pattern in patterns:
        spec = pattern if not any(c in pattern for c in "*?[") else _static_prefix(pattern)
        if not spec:
            return []
        specs.add(spec)
    return sorted(specs)


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
