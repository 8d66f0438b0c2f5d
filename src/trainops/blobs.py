"""A repository's blobs read through one `git cat-file --batch` process: each blob handed over
in chunks as git writes it, so memory stays bounded whatever a file's size, and a thousand blobs
(a package's files, a tree's `.gitignore` files) cost one git process, not a thousand.

The reader of the user's repository (`trainops.repo` reads it with git too; the state store's
git directory has its own plumbing, `trainops.state.git.plumbing`).
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

__all__ = ["CHUNK", "BatchReader", "TruncatedBlob", "batch"]

CHUNK = 1 << 20


class TruncatedBlob(Exception):
    """git's answer ended before the blob did."""


class BatchReader:
    """Blobs asked one at a time of one `git cat-file --batch`. A blob's chunks are read before
    the next blob is asked for; whatever of it is left unread is skipped then."""

    def __init__(self, stdin: IO[bytes], stdout: IO[bytes]) -> None:
        self._stdin, self._stdout = stdin, stdout
        self._left = 0  # bytes of the current answer not yet read, its closing newline counted

    def chunks(self, sha: str) -> Iterator[bytes] | None:
        """The blob `sha` in chunks of at most `CHUNK` bytes, or None when the repository does
        not hold it as a blob (a partial clone's missing object, a tree)."""
        self._skip()
        self._stdin.write(f"{sha}\n".encode())
        self._stdin.flush()
        header = self._stdout.readline().split()
        if len(header) != 3:
            return None  # `<sha> missing`, or git gone
        self._left = int(header[2]) + 1
        if header[1] != b"blob":
            self._skip()
            return None
        return self._read()

    def _read(self) -> Iterator[bytes]:
        while self._left > 1:
            chunk = self._stdout.read(min(CHUNK, self._left - 1))
            if not chunk:
                raise TruncatedBlob("git cat-file ended early")
            self._left -= len(chunk)
            yield chunk
        self._skip()

    def _skip(self) -> None:
        while self._left:
            chunk = self._stdout.read(min(CHUNK, self._left))
            if not chunk:
                raise TruncatedBlob("git cat-file ended early")
            self._left -= len(chunk)


@contextmanager
def batch(root: Path) -> Iterator[BatchReader]:
    """One `git cat-file --batch` in the repository at `root`, ended when the block is."""
    proc = subprocess.Popen(
        ["git", "cat-file", "--batch"],
        cwd=root,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        yield BatchReader(proc.stdin, proc.stdout)
    finally:
        proc.stdin.close()
        proc.stdout.close()
        proc.wait()
