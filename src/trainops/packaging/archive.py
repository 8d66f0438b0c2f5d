"""A package's bytes (DESIGN §13b): the listed files streamed in chunks (a commit's blobs through
one `git cat-file --batch`, `trainops.blobs`), scanned for credentials on the way (`Refused`,
`credential_in`), written as a deterministic zip (`write_zip`: fixed times and modes), into a file
that refuses to grow past its limit (`Bounded`, `OverLimit`). Memory stays bounded whatever the
data's size."""

from __future__ import annotations

import os
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO

from trainops.blobs import CHUNK, TruncatedBlob, batch
from trainops.packaging.files import Item, PackagingError
from trainops.packaging.refusal import Scanner
from trainops.repo import Commit, Source

__all__ = [
    "EPOCH",
    "Bounded",
    "OverLimit",
    "Refused",
    "credential_in",
    "stream",
    "write_zip",
]

# A fixed time for every zip entry (zip cannot say 1970): no clock or mtime reaches the bytes.
EPOCH = (1980, 1, 1, 0, 0, 0)


def credential_in(source: Source, items: Sequence[Item]) -> dict[str, str]:
    """Each item whose content looks like a credential, with why (a whole pass over them)."""
    found: dict[str, str] = {}
    for item, chunks in stream(source, items):
        scanner = Scanner()
        for chunk in chunks:
            if scanner.feed(chunk):
                break
        for _ in chunks:
            pass  # the rest of it is read past (one git process answers every item in turn)
        if scanner.why:
            found[item.path] = scanner.why
    return found


class Refused(Exception):
    """Raised while streaming: `path`'s content looks like a credential."""

    def __init__(self, path: str, why: str) -> None:
        super().__init__(path)
        self.path, self.why = path, why


def stream(source: Source, items: Sequence[Item]) -> Iterator[tuple[Item, Iterator[bytes]]]:
    """Each item with its content in chunks, in order. Each chunk iterator must be read to its
    end (or `credential_in`'s way) before the next item is taken."""
    if isinstance(source, Commit):
        yield from _stream_blobs(source.root, items)
        return
    for item in items:
        yield item, _file_chunks(source.root / item.path)


def write_zip(
    out: IO[bytes],
    source: Source,
    items: Sequence[tuple[str, Item]],
    modes: bool,
    scan: bool,
) -> None:
    """The zip of `items` (name in the zip, item), sorted by name, into `out`: fixed times, unix
    modes (644, or the file's own 644/755 with `modes`), deflate level 6. The same bytes as
    `ZipFile.writestr` of each whole file, so a package's digest does not depend on how it was
    read. With `scan`, raise `Refused` at the first file whose content looks like a credential."""
    ordered = sorted(items, key=lambda pair: pair[0])
    names = {item.path: name for name, item in ordered}
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
        for item, chunks in stream(source, [item for _, item in ordered]):
            info = zipfile.ZipInfo(names[item.path], date_time=EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info._compresslevel = 6  # type: ignore[attr-defined]  # as writestr(compresslevel=6)
            mode = 0o755 if modes and item.executable else 0o644
            info.external_attr = (0o100000 | mode) << 16
            info.create_system = 3  # unix, whatever the machine
            info.file_size = item.size  # as writestr sets it: the same zip64 choice, same bytes
            scanner = Scanner()
            with zf.open(info, "w", force_zip64=item.size * 1.05 > zipfile.ZIP64_LIMIT) as dst:
                for chunk in chunks:
                    if scan and scanner.feed(chunk):
                        raise Refused(item.path, scanner.why)
                    dst.write(chunk)


class Bounded:
    """A seekable file that refuses to grow past `limit` bytes (None: no limit): a package over
    its provider's limit stops being written there, whatever the data's size."""

    def __init__(self, raw: IO[bytes], limit: int | None) -> None:
        self._raw, self._limit = raw, limit

    def write(self, data: bytes) -> int:
        if self._limit is not None and self._raw.tell() + len(data) > self._limit:
            raise OverLimit()
        return self._raw.write(data)

    def tell(self) -> int:
        return self._raw.tell()

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._raw.seek(offset, whence)

    def flush(self) -> None:
        self._raw.flush()

    def seekable(self) -> bool:
        return True


class OverLimit(Exception):
    """A package would be larger than its limit."""


def _file_chunks(path: Path) -> Iterator[bytes]:
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)  # a link swapped in now is not followed
    fd = os.open(path, flags)
    with os.fdopen(fd, "rb") as f:
        while chunk := f.read(CHUNK):
            yield chunk


def _stream_blobs(root: Path, items: Sequence[Item]) -> Iterator[tuple[Item, Iterator[bytes]]]:
    """One `git cat-file --batch` (`trainops.blobs`) answering each blob in turn, in chunks."""
    if not items:
        return
    with batch(root) as blobs:
        for item in items:
            chunks = blobs.chunks(item.blob)
            if chunks is None:
                raise PackagingError(f"{item.path}: its blob is missing from the repository")
            yield item, _whole(chunks)


def _whole(chunks: Iterator[bytes]) -> Iterator[bytes]:
    try:
        yield from chunks
    except TruncatedBlob as exc:
        raise PackagingError(str(exc)) from None
