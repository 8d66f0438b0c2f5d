"""A job's workdir as one deterministic zip, for providers that ship it to a cluster (ray).

The files are those git would keep (tracked, or untracked and not ignored by `.gitignore`), minus
what must never leave the machine (credentials, keys: `data.never_packaged`), links (never
followed) and trainops' own folders. Same files, same bytes: the cluster caches a package by its
hash, so an unchanged workdir is uploaded once. Over `limit`, nothing is built: the error says the
size and the limit, before any provider is asked.
"""

from __future__ import annotations

import io
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

from trainops.data import human_size, never_packaged
from trainops.repo import SKIP_DIRS, git_run

_EPOCH = (1980, 1, 1, 0, 0, 0)  # zip cannot say 1970; no mtime reaches the bytes


class WorkdirError(Exception):
    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message, self.hint = message, hint


@dataclass(frozen=True)
class Workdir:
    files: tuple[tuple[str, Path], ...]  # (path inside the workdir, file on disk)
    left_out: tuple[tuple[str, str], ...]  # (path, why)

    @property
    def size(self) -> int:
        return sum(p.stat().st_size for _, p in self.files)


def files(root: Path, path: str) -> Workdir:
    """What `pack` would put in the zip of `path` (repository-relative, "" for the root)."""
    folder = (root / path) if path else root
    if not folder.is_dir():
        raise WorkdirError(f"workdir {path or '.'} is not a folder of the repository")
    proc = git_run(
        ["ls-files", "-z", "--cached", "--others", "--exclude-standard", "--", path or "."],
        root,
    )
    if proc.returncode != 0:
        raise WorkdirError(
            f"cannot list the files of workdir {path or '.'}",
            "the workdir must be a folder of a git repository",
        )
    prefix = f"{path.strip('/')}/" if path else ""
    kept: list[tuple[str, Path]] = []
    left_out: list[tuple[str, str]] = []
    for raw in sorted(set(proc.stdout.split(b"\0")) - {b""}):
        rel = raw.decode("utf-8", errors="surrogateescape")
        inner = rel[len(prefix) :] if rel.startswith(prefix) else rel
        full = root / rel
        why = never_packaged(rel)
        if not why and any(part in SKIP_DIRS for part in rel.split("/")[:-1]):
            why = "trainops, git or tool folder"
        if not why and (full.is_symlink() or _crosses_link(root, rel)):
            why = "symlink (not followed)"
        if why:
            left_out.append((inner, why))
        elif full.is_file():
            kept.append((inner, full))
    return Workdir(tuple(kept), tuple(left_out))


def pack(root: Path, path: str, limit: int) -> bytes:
    """The workdir's zip; `WorkdirError` when it would hold more than `limit` bytes of files."""
    found = files(root, path)
    check_size(path, found.size, limit)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
        for rel, full in found.files:
            info = zipfile.ZipInfo(rel, date_time=_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            mode = 0o755 if os.access(full, os.X_OK) else 0o644
            info.external_attr = (0o100000 | mode) << 16
            info.create_system = 3
            zf.writestr(info, full.read_bytes(), compresslevel=6)
    return buf.getvalue()


def check_size(path: str, size: int, limit: int) -> None:
    if size > limit:
        raise WorkdirError(
            f"workdir {path or '.'} holds {human_size(size)} ({size} bytes) of files, over the "
            f"Ray provider's limit of {human_size(limit)} for runtime_env.working_dir",
            "keep code in the workdir and put data in object storage (pass its URL in "
            "spec.input), or add large files to .gitignore",
        )


def _crosses_link(root: Path, rel: str) -> bool:
    parts = rel.split("/")
    return any((root / "/".join(parts[:i])).is_symlink() for i in range(1, len(parts)))
