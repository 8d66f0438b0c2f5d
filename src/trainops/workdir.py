"""A job's workdir as one deterministic zip, for providers that ship it to a cluster (ray).

The files are those the one packaging rule lets through (`trainops.packaging`): what git holds
at the applied commit (the index's files, read from disk, for `plan`/`validate`), never an
untracked file, minus credential-shaped names and contents, links (never followed), submodules,
what `.gitignore` excludes and trainops' own folders. Same files, same bytes: the cluster caches
a package by its hash, so an unchanged workdir is uploaded once. Over `limit`, nothing is built:
the error says the size and the limit, before any provider is asked. Files are streamed into
the zip, never read whole.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import IO

from trainops.data import human_size
from trainops.packaging.archive import Refused, credential_in, write_zip
from trainops.packaging.files import Item, PackagingError, inside, listing
from trainops.repo import Commit, Source


class WorkdirError(Exception):
    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message, self.hint = message, hint


@dataclass(frozen=True)
class Workdir:
    path: str  # repository-relative ("" for the root)
    files: tuple[tuple[str, Item], ...]  # (path inside the workdir, the file)
    left_out: tuple[tuple[str, str], ...]  # (path inside the workdir, why)

    @property
    def size(self) -> int:
        return sum(item.size for _, item in self.files)

    def summary(self) -> str:
        """`workdir train/ -> 3 files, 1.2 KiB (left out: .env (environment file))`."""
        n = len(self.files)
        text = f"workdir {self.path or '.'}/ -> {n} file{'s' if n != 1 else ''}, "
        text += human_size(self.size)
        if self.left_out:
            shown = ", ".join(f"{p} ({why})" for p, why in self.left_out[:10])
            more = f", and {len(self.left_out) - 10} more" if len(self.left_out) > 10 else ""
            text += f" (left out: {shown}{more})"
        return text


def files(source: Source, path: str, scan: bool = False) -> Workdir:
    """What `pack` would put in the zip of `path` (repository-relative, "" for the root); with
    `scan`, the files whose content looks like a credential are read and left out too."""
    path = path.strip("/")
    exists = _in_tree(source, path) if isinstance(source, Commit) else (source.root / path).is_dir()
    if path and not exists:
        raise WorkdirError(f"workdir {path} is not a folder of the repository")
    try:
        found = listing(source, path)
    except PackagingError as exc:
        raise WorkdirError(f"workdir {path or '.'}: {exc.message}", exc.hint) from None
    kept = [(inside(item.path, path), item) for item in found.items]
    left_out = [(inside(p, path), why) for p, why in found.left_out]
    if scan:
        refused = credential_in(source, [item for _, item in kept])
        kept = [(name, item) for name, item in kept if item.path not in refused]
        left_out += [(inside(p, path), why) for p, why in refused.items()]
    return Workdir(path, tuple(kept), tuple(sorted(left_out)))


def pack_into(out: IO[bytes], source: Source, path: str, limit: int) -> Workdir:
    """Stream the workdir's zip into `out` (a seekable file at its start); `WorkdirError` when
    it would hold more than `limit` bytes of files. Returns what went in and what stayed."""
    found = files(source, path)
    check_size(path, found.size, limit)
    try:
        write_zip(out, source, found.files, modes=True, scan=True)
        return found
    except Refused:
        pass
    except PackagingError as exc:
        raise WorkdirError(f"workdir {path or '.'}: {exc.message}", exc.hint) from None
    found = files(source, path, scan=True)  # rare: read once more to find every such file
    out.seek(0)
    out.truncate()
    try:
        write_zip(out, source, found.files, modes=True, scan=False)
    except PackagingError as exc:
        raise WorkdirError(f"workdir {path or '.'}: {exc.message}", exc.hint) from None
    return found


def pack(source: Source, path: str, limit: int) -> bytes:
    """The workdir's zip in memory (at most `limit` bytes of files)."""
    buf = io.BytesIO()
    pack_into(buf, source, path, limit)
    return buf.getvalue()


def check_size(path: str, size: int, limit: int) -> None:
    if size > limit:
        raise WorkdirError(
            f"workdir {path or '.'} holds {human_size(size)} ({size} bytes) of files, over the "
            f"Ray provider's limit of {human_size(limit)} for runtime_env.working_dir",
            "keep code in the workdir and put data in object storage (pass its URL in "
            "spec.input), or add large files to .gitignore",
        )


def _in_tree(source: Source, path: str) -> bool:
    return any(True for _ in source.entries(path))
