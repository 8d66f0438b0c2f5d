"""Data in (DESIGN §18): repository files and folders packaged for a run.

`package` reads a `spec.data` path from a `Source` (the index's files in the working tree for
`plan`, the applied commit for `apply`), lets through only what the one packaging rule allows
(`trainops.packaging`: what git holds, minus credential-shaped names and contents, links,
submodules and what `.gitignore` excludes), and builds one deterministic archive: same content,
same bytes, same sha256, which joins the revision (§3). The archive is streamed to a temporary
file to be hashed and is built again, from the same commit, when a provider stages it: memory
stays bounded whatever the data's size.
"""

from __future__ import annotations

import hashlib
import io
import posixpath
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import IO

from trainops.errors import Problem
from trainops.packaging.archive import (
    Bounded,
    OverLimit,
    Refused,
    credential_in,
    stream,
    write_zip,
)
from trainops.packaging.files import Item, PackagingError, inside, listing
from trainops.packaging.refusal import Scanner, refusal_by_name
from trainops.repo import Commit, Source
from trainops.yamlsource import Document

MIB = 1024 * 1024


@dataclass(frozen=True)
class Package:
    """One `spec.data` entry, packaged: a zip of a folder, or a single file as it is. Its bytes
    are not kept: `open()` builds them again (the same bytes, checked by digest)."""

    key: str
    path: str  # repository-relative, as the manifest names it (no trailing `/`)
    folder: bool
    files: tuple[str, ...]  # packaged, relative to `path`
    left_out: tuple[tuple[str, str], ...]  # (relative path, why)
    stored: bytes | None = field(default=None, repr=False)  # the bytes, when made in memory
    built_sha256: str = ""
    built_size: int = 0
    writer: Callable[[IO[bytes]], None] | None = field(default=None, repr=False, compare=False)

    @property
    def sha256(self) -> str:
        return (
            hashlib.sha256(self.stored).hexdigest()
            if self.stored is not None
            else (self.built_sha256)
        )

    @property
    def digest(self) -> str:
        return f"sha256:{self.sha256}"

    @property
    def size(self) -> int:
        return len(self.stored) if self.stored is not None else self.built_size

    @property
    def content(self) -> bytes:
        """The package's bytes in memory (a provider whose limit bounds them: Replicate)."""
        with self.open() as f:
            return f.read()

    @contextmanager
    def open(self) -> Iterator[IO[bytes]]:
        """The package's bytes in a temporary file, at its start: built again and checked
        against the digest the revision holds."""
        if self.stored is not None:
            yield io.BytesIO(self.stored)
            return
        assert self.writer is not None
        with tempfile.TemporaryFile(prefix="trainops-data-") as tmp:
            self.writer(tmp)
            if _sha256_of(tmp) != self.built_sha256:
                raise DataError(
                    f"spec.data.{self.key}: {self.path} changed since it was packaged",
                    "run again: the package is built from the applied commit",
                )
            tmp.seek(0)
            yield tmp

    @property
    def filename(self) -> str:
        base = posixpath.basename(self.path) or self.key
        return f"{base}.zip" if self.folder else base

    def summary(self) -> str:
        """`input_images: data/portraits/ -> 12 files, 3.4 MiB (left out: .env (credentials))`."""
        text = (
            f"{self.key}: {self.path}{'/' if self.folder else ''} -> {len(self.files)} "
            f"file{'s' if len(self.files) != 1 else ''}, {human_size(self.size)}"
        )
        if self.left_out:
            shown = ", ".join(f"{p} ({why})" for p, why in self.left_out[:10])
            more = f", and {len(self.left_out) - 10} more" if len(self.left_out) > 10 else ""
            text += f" (left out: {shown}{more})"
        return text


def human_size(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    if n < MIB:
        return f"{n / 1024:.1f} KiB"
    return f"{n / MIB:.1f} MiB"


def never_packaged(rel: str) -> str:
    """Why a file must never leave the machine ("" when it may): the packaging rule's names."""
    return refusal_by_name(rel)


class DataError(Exception):
    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message, self.hint = message, hint


def package(source: Source, key: str, path: str, limit: int | None = None) -> Package:
    """Package `path` of `source` for input `key`. Raises DataError (what is wrong + hint)."""
    path = path.strip("/")
    parts = path.split("/")
    if source.link_target(path) is not None:
        raise DataError(
            f"spec.data.{key}: {path} is a symlink; it is not followed",
            "put the files themselves in the repository",
        )
    if any(source.link_target("/".join(parts[:i])) is not None for i in range(1, len(parts))):
        raise DataError(
            f"spec.data.{key}: {path} lies behind a symlink; it is not followed",
            "put the files themselves in the repository",
        )
    try:
        found = listing(source, path)
    except PackagingError as exc:
        raise DataError(f"spec.data.{key}: {exc.message}", exc.hint) from None
    named = [*(i.path for i in found.items), *(p for p, _ in found.left_out)]
    folder = path not in named

    def rel(p: str) -> str:
        return inside(p, path) if folder else posixpath.basename(p)

    left_out = [(rel(p), why) for p, why in found.left_out]
    if not found.items and not left_out:
        raise DataError(
            f"spec.data.{key}: {path} is not a file or folder of the repository"
            + (" at this commit" if isinstance(source, Commit) else ""),
            "the path is relative to the repository root; commit the data with the manifest",
        )
    items = list(found.items)
    try:
        try:
            built = _build(source, key, path, folder, items, limit, scan=True)
        except Refused:
            refused = credential_in(source, items)
            left_out += [(rel(p), why) for p, why in refused.items()]
            items = [i for i in items if i.path not in refused]
            built = _build(source, key, path, folder, items, limit, scan=False) if items else None
    except PackagingError as exc:
        raise DataError(f"spec.data.{key}: {exc.message}", exc.hint) from None
    if built is None:
        raise DataError(
            f"spec.data.{key}: {path} holds nothing that can be packaged"
            + (f" (left out: {', '.join(f'{p} ({w})' for p, w in sorted(left_out)[:5])})"),
            "add the data files to the repository (committed, and not credential-shaped)",
        )
    sha, size, writer = built
    files = tuple(sorted(rel(i.path) for i in items))
    return Package(key, path, folder, files, tuple(sorted(left_out)), None, sha, size, writer)


def _build(
    source: Source,
    key: str,
    path: str,
    folder: bool,
    items: list[Item],
    limit: int | None,
    scan: bool,
) -> tuple[str, int, Callable[[IO[bytes]], None]] | None:
    """(sha256, size, writer) of the package of `items`; None when there are none."""
    if not items:
        return None
    if not folder:
        item = items[0]
        if limit is not None and item.size > limit:
            raise _over(key, path, item.size, limit)

        def write_file(out: IO[bytes], scan: bool = False) -> None:
            for one, chunks in stream(source, [item]):
                scanner = Scanner()
                for chunk in chunks:
                    if scan and scanner.feed(chunk):
                        raise Refused(one.path, scanner.why)
                    out.write(chunk)

        with tempfile.TemporaryFile(prefix="trainops-data-") as tmp:
            write_file(tmp, scan)
            return _sha256_of(tmp), tmp.tell(), write_file

    entries = [(inside(i.path, path), i) for i in items]

    def write_folder(out: IO[bytes], scan: bool = False) -> None:
        write_zip(Bounded(out, limit), source, entries, modes=False, scan=scan)  # type: ignore[arg-type]

    with tempfile.TemporaryFile(prefix="trainops-data-") as tmp:
        try:
            write_folder(tmp, scan)
        except OverLimit:
            raise _over(key, path, None, limit or 0) from None
        return _sha256_of(tmp), tmp.seek(0, 2), write_folder


def _over(key: str, path: str, size: int | None, limit: int) -> DataError:
    what = (
        f"{human_size(size)} ({size} bytes)"
        if size is not None
        else f"more than {human_size(limit)}"
    )
    return DataError(
        f"spec.data.{key}: {path} packages to {what}, over the provider's limit of "
        f"{human_size(limit)} ({limit} bytes)",
        "make the data smaller, or upload it elsewhere and put its URL in spec.input",
    )


def _sha256_of(f: IO[bytes]) -> str:
    f.seek(0)
    digest = hashlib.sha256()
    while chunk := f.read(1 << 20):
        digest.update(chunk)
    return digest.hexdigest()


def packages(
    source: Source, data: Mapping[str, str], limit: int | None
) -> tuple[dict[str, Package], list[tuple[str, DataError]]]:
    """Every entry of one job's `spec.data`: the packages, and the errors by key."""
    done: dict[str, Package] = {}
    errors: list[tuple[str, DataError]] = []
    for key, path in data.items():
        try:
            done[key] = package(source, key, path, limit)
        except DataError as exc:
            errors.append((key, exc))
    return done, errors


def placeholder(pkg: Package) -> str:
    """What the recorded input holds for a data key until the provider stages the package:
    stable across passes (an intent's input hash and adoption match it), never a URL."""
    return placeholder_of(pkg.digest)


def placeholder_of(digest: str) -> str:
    return f"trainops-data:{digest}"


def problem_for(doc: Document, key: str, exc: DataError) -> Problem:
    """The error at `spec.data.KEY` of the manifest (file:line:col + hint)."""
    return doc.problem(("spec", "data", key), exc.message, exc.hint)
