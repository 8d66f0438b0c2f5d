"""The state files as git holds them at one version: listed, read with bounds, decoded as text.

The state branch is input (DESIGN §9): a file far larger than a state file can be is listed as
unreadable and never read into memory, one that is not UTF-8 is unreadable too, and either is
that job's problem, not every job's. `ReadAhead` does the git side of a `load` (fetch, list, every
state file read into a temporary file) in a thread while the caller does other work.
"""

from __future__ import annotations

import re
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import IO

from trainops.errors import StateError
from trainops.state.base import StateSnapshot
from trainops.state.git.plumbing import Object, Plumbing
from trainops.state.layout import STATE_DIR

__all__ = [
    "MAX_STATE_FILE_BYTES",
    "READ_AHEAD_BYTES",
    "Listing",
    "ReadAhead",
    "check_path",
    "decode",
    "list_files",
    "read_paths",
    "valid_path",
]

# A state file holds a job's current runs (DESIGN §9 retention): a few KiB. One pushed to the
# branch far larger is not read, so it cannot exhaust memory.
MAX_STATE_FILE_BYTES = 8 * 1024 * 1024
# The most `read_ahead` writes to a temporary file by default; a larger state (only a forged
# one comes near: 30,000 jobs' records are about 100 MB) is streamed by `load` as it is read.
READ_AHEAD_BYTES = 512 * 1024 * 1024


@dataclass
class Listing:
    """What `load` reads: the state version, each `state/` file's path and blob, and the files
    too large to read."""

    version: str
    paths: list[str] = field(default_factory=list)
    shas: list[bytes] = field(default_factory=list)
    unreadable: dict[str, str] = field(default_factory=dict)
    unique: list[str] = field(default_factory=list)  # the blobs to read, each once
    size: int = 0  # their bytes, at most (a blob listed twice is counted twice)


def list_files(git: Plumbing, version: str) -> Listing:
    """The `state/` files of the commit `version` ("" for none: no files), path and blob."""
    listing = Listing(version)
    if not version:
        return listing
    out = git.run("ls-tree", "-r", "-l", "-z", "--full-tree", version, "--", f"{STATE_DIR}/").stdout
    for record in out.split(b"\0"):
        if not record:
            continue
        meta, raw_path = record.split(b"\t", 1)
        _mode, kind, sha, size = meta.split()
        if kind != b"blob":
            continue
        path = _text(raw_path, "state path")
        if int(size) > MAX_STATE_FILE_BYTES:  # never read into memory
            listing.unreadable[path] = (
                f"{int(size):,} bytes, over the {MAX_STATE_FILE_BYTES:,} a state file may hold"
            )
            continue
        listing.paths.append(path)
        listing.shas.append(sha)
        listing.size += int(size)
    listing.unique = [sha.decode() for sha in dict.fromkeys(listing.shas)]
    return listing


def decode(listing: Listing, objects: Iterator[Object | None]) -> StateSnapshot:
    """The snapshot of `listing`, given its `unique` blobs as git hands them over."""
    if not listing.version:
        return StateSnapshot(version="", files={})
    # Decoded as git hands each file over: never every file's bytes beside its text.
    texts: dict[bytes, str | None] = {}
    for sha, obj in zip(listing.unique, objects, strict=True):
        if obj is None:
            raise StateError(f"state commit {listing.version} is missing object {sha}")
        try:
            texts[sha.encode()] = str(obj[1], "utf-8")
        except UnicodeDecodeError:
            texts[sha.encode()] = None
    files: dict[str, str] = {}
    unreadable = dict(listing.unreadable)
    for path, blob in zip(listing.paths, listing.shas, strict=True):
        text = texts[blob]
        if text is None:
            unreadable[path] = "not UTF-8 text"
        else:
            files[path] = text
    return StateSnapshot(version=listing.version, files=files, unreadable=unreadable)


def read_paths(git: Plumbing, version: str, paths: Sequence[str]) -> dict[str, str]:
    """The text of each of `paths` at `version` (one git process for all); a path that is
    missing there, not a file, too large or not UTF-8 is left out."""
    if not version or not paths:
        return {}
    if not re.fullmatch(r"[0-9a-f]{40}", version):
        raise StateError(f"invalid state version {version!r}")
    wanted = [p for p in dict.fromkeys(paths) if valid_path(p)]
    found = git.cat_batch([f"{version}:{p}" for p in wanted])
    out: dict[str, str] = {}
    for path, obj in zip(wanted, found, strict=True):
        if obj is None or obj[0] != b"blob" or len(obj[1]) > MAX_STATE_FILE_BYTES:
            continue
        try:
            out[path] = obj[1].decode()
        except UnicodeDecodeError:
            continue
    return out


class ReadAhead(threading.Thread):
    """`GitStateStore.read_ahead`: `list_now` (fetch and list), then `git cat-file --batch` of
    every state file into a temporary file, all of it git's work; the Python side only waits.
    A state over `limit` bytes is left for `load` to stream."""

    def __init__(self, git: Plumbing, list_now: Callable[[], Listing], limit: int) -> None:
        super().__init__(name="trainops-state-read-ahead")  # not a daemon: joined at exit
        self._git = git
        self._list_now = list_now
        self._limit = limit
        self.listing: Listing | None = None
        self.answer: IO[bytes] | None = None
        self.error: BaseException | None = None
        self.start()

    def run(self) -> None:
        answer = tempfile.TemporaryFile()  # noqa: SIM115 (handed to `load`, which closes it)
        try:
            listing = self._list_now()
            if listing.size > self._limit:  # `load` streams it instead of a file this big
                answer.close()
                self.listing = listing
                return
            if listing.unique:
                request = "".join(f"{name}\n" for name in listing.unique).encode()
                self._git.run_into(answer, "cat-file", "--batch", input=request)
                answer.seek(0)
            self.listing, self.answer = listing, answer
        except BaseException as exc:  # handed to `load`, in the caller's thread
            answer.close()
            self.error = exc


def valid_path(path: str) -> bool:
    """A relative path of plain names: no empty, `.`, `..` or `.git` part, no NUL, newline,
    carriage return or backslash."""
    parts = path.split("/")
    return not (
        not path
        or any(part in {"", ".", "..", ".git"} for part in parts)
        or any(ch in path for ch in "\0\n\r\\")
    )


def check_path(path: str) -> str:
    """`path`, or a `StateError` when it is not a `valid_path`."""
    if not valid_path(path):
        raise StateError(f"invalid state path {path!r}: use a relative path like 'state/job.json'")
    return path


def _text(data: bytes, what: str) -> str:
    try:
        return data.decode()
    except UnicodeDecodeError as exc:
        raise StateError(f"{what} is not UTF-8 text") from exc
