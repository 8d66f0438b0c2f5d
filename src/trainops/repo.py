"""Reading a user's repository: `trainops.yaml` and the manifest files it selects.

Desired state comes from one of two places (DESIGN §3): the working tree (`plan`, `validate`, so a
user can preview before committing) or a commit (`apply` reads `HEAD`). Both are a `Source` that
lists entries (files and symbolic links, never following a link) and reads files;
`jobglobs.select` is the one enumerator over either, so the same files count whatever the source
(DESIGN §13).
"""

from __future__ import annotations

import errno
import os
import posixpath
import shutil
import stat
import subprocess
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Protocol

from trainops.errors import Problem, UsageError

CONFIG_FILE = "trainops.yaml"
LOCK_FILE = "trainops.lock"
# Folders that never hold manifests, skipped by `select` whatever the source: a commit that
# force-adds `jobs/node_modules/x.yaml` counts exactly as the working tree does (not at all).
SKIP_DIRS = frozenset({".git", ".trainops", "node_modules", "__pycache__", ".venv"})
LINK_HINT = (
    "trainops reads only files stored in the repository: replace the link with the files "
    "themselves (or point `jobs` in trainops.yaml at the real folder)"
)
_MAX_LINK_HOPS = 40  # as the kernel's ELOOP limit


@dataclass(frozen=True)
class Entry:
    """A file or a symbolic link of a source, by repository-relative path with `/`."""

    path: str
    link: bool = False


class Source(Protocol):
    @property
    def root(self) -> Path: ...

    def entries(self, prefix: str) -> Iterable[Entry]:
        """Files and links at or under `prefix` ("" for all), plus a link standing for `prefix`
        or one of its folders; links are listed, never followed."""
        ...

    def link_target(self, path: str) -> str | None:
        """The target of the link at `path` itself (no folder of it resolved), else None."""
        ...

    def read(self, path: str) -> bytes | None:
        """The file's bytes, or None when it does not exist or the path crosses a link."""
        ...

    def read_many(self, paths: Sequence[str]) -> dict[str, bytes | None]:
        """`read` of every path at once (a commit answers them all with one git process)."""
        ...


def require_git() -> None:
    """A usage error (exit 2) when no `git` is on PATH, before anything needs it: GitPython
    fails at import time without one, and subprocess with a bare FileNotFoundError."""
    if shutil.which("git") is None:
        raise _no_git()


def _no_git() -> UsageError:
    return UsageError(
        "git is not installed (no `git` on PATH)",
        "trainops reads manifests and keeps its state with git: install git "
        "(https://git-scm.com/downloads) and run again",
    )


def git_run(
    args: Sequence[str], cwd: Path, *, input: bytes | None = None, check: bool = False
) -> subprocess.CompletedProcess[bytes]:
    """`git ARGS` in `cwd`, bytes out; a clear usage error when git is not installed."""
    try:
        return subprocess.run(
            ["git", *args], cwd=cwd, input=input, capture_output=True, check=check
        )
    except FileNotFoundError:
        raise _no_git() from None
    except subprocess.CalledProcessError as exc:
        detail = exc.stderr.decode(errors="replace").strip().splitlines()
        raise UsageError(
            f"{cwd}: git {args[0]} failed" + (f": {detail[-1]}" if detail else ""),
            "is this a git repository with at least one commit?",
        ) from None


@dataclass(frozen=True)
class WorkingTree:
    """The files on disk under `root`. Links are told from one `lstat` (or the cached type of a
    directory listing's entry) per name: reading 10,000 manifests asked the system about each
    file six times."""

    root: Path

    def entries(self, prefix: str) -> Iterable[Entry]:
        parts = prefix.split("/") if prefix else []
        for i in range(1, len(parts) + 1):
            here = "/".join(parts[:i])
            if (self.root / here).is_symlink():
                yield Entry(here, link=True)
                return
        top = self.root / prefix if prefix else self.root
        if top.is_file():
            yield Entry(prefix)
            return
        rel = top.relative_to(self.root).as_posix()
        yield from _walk(str(top), "" if rel == "." else f"{rel}/")

    def link_target(self, path: str) -> str | None:
        try:  # one call: a name that is no link (EINVAL), is missing, or is too long for the
            return os.readlink(self.root / path)  # system (ENAMETOOLONG): no link stands there
        except OSError:
            return None

    def read(self, path: str) -> bytes | None:
        return self._read(path, {}, _max_bytes())

    def read_many(self, paths: Sequence[str]) -> dict[str, bytes | None]:
        folders: dict[str, bool] = {}  # folder -> is a link: asked once for all its files
        limit = _max_bytes()
        return {path: self._read(path, folders, limit) for path in paths}

    def _read(self, path: str, folders: dict[str, bool], limit: int) -> bytes | None:
        parts = path.split("/")
        for i in range(1, len(parts)):
            folder = "/".join(parts[:i])
            link = folders.get(folder)
            if link is None:
                link = folders[folder] = self.link_target(folder) is not None
            if link:
                return None  # never followed: a link could lead anywhere on the machine
        full = os.path.join(self.root, path)
        try:
            found = os.lstat(full)
            if not stat.S_ISREG(found.st_mode):
                return None  # a link (not followed), a folder, a device: no manifest
            if found.st_size > limit:
                return _oversize()
            fd = os.open(full, _READ_FLAGS)  # a link put there since is not followed either
        except OSError as exc:
            if exc.errno in _ABSENT:  # as Path.is_file() answers False for them
                return None
            raise
        try:  # one read (Python's `open` asked about the file twice more, and for a terminal)
            data = os.read(fd, found.st_size + 1)
            if len(data) > found.st_size:  # grown since: read to one byte over the limit
                data += os.read(fd, max(limit + 1 - len(data), 0))
            return data
        finally:
            os.close(fd)


# What Path.is_file() and friends take for "not there" (pathlib's _IGNORED_ERRNOS).
_ABSENT = frozenset({errno.ENOENT, errno.ENOTDIR, errno.EBADF, errno.ELOOP})
_READ_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)


def _walk(folder: str, base: str) -> Iterator[Entry]:
    """Files and links under `folder` (`base`: its repository-relative prefix), as `os.walk`
    visits them top-down, names sorted; a link is listed, never descended into."""
    try:
        with os.scandir(folder) as listing:
            found = sorted(listing, key=lambda entry: entry.name)
    except OSError:
        return  # as os.walk: a folder that cannot be listed holds nothing
    folders: list[os.DirEntry[str]] = []
    files: list[os.DirEntry[str]] = []
    for entry in found:
        try:
            is_dir = entry.is_dir()  # a link to a folder counts as one, as in os.walk
        except OSError:
            is_dir = False
        (folders if is_dir else files).append(entry)
    descend = []
    for entry in folders:
        if entry.name in SKIP_DIRS:
            continue  # `select` skips them whatever the source: not worth walking
        if entry.is_symlink():
            yield Entry(base + entry.name, link=True)  # listed, not descended into
        else:
            descend.append(entry)
    for entry in files:
        yield Entry(base + entry.name, link=entry.is_symlink())
    for entry in descend:
        yield from _walk(entry.path, f"{base}{entry.name}/")


@dataclass(frozen=True)
class Commit:
    """The files of one commit, read with git itself (no working tree involved)."""

    root: Path
    sha: str

    @classmethod
    def resolve(cls, root: Path, ref: str = "HEAD") -> Commit:
        proc = git_run(["rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"], root)
        if proc.returncode != 0:
            raise UsageError(
                f"{root}: cannot resolve {ref!r} to a commit",
                "apply reads manifests from a commit: commit them first",
            )
        return cls(root, proc.stdout.decode().strip())

    def entries(self, prefix: str) -> Iterable[Entry]:
        tree = _ls_tree(self.root, self.sha)
        out = []
        for path, blob in tree.items():
            if not prefix or path == prefix or path.startswith(prefix + "/"):
                out.append(Entry(path, link=blob.link))
            elif blob.link and prefix.startswith(path + "/"):
                out.append(Entry(path, link=True))  # a link standing for a folder of prefix
        return sorted(out, key=lambda e: e.path)

    def link_target(self, path: str) -> str | None:
        blob = _ls_tree(self.root, self.sha).get(path)
        if blob is None or not blob.link:
            return None
        return (self._cat([blob.sha]).get(blob.sha) or b"").decode(errors="replace")

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
            if blob is None or blob.link or _crosses_link(self, path):
                out[path] = None
            elif blob.size > _max_bytes():
                out[path] = _oversize()
            else:
                wanted.setdefault(blob.sha, []).append(path)
        data = self._cat(list(wanted))
        for sha, same in wanted.items():
            out.update(dict.fromkeys(same, data.get(sha)))
        return out

    def _cat(self, shas: list[str]) -> dict[str, bytes | None]:
        """Blob contents by sha; None for a blob a partial clone lacks."""
        if not shas:
            return {}
        data = git_run(
            ["cat-file", "--batch"],
            self.root,
            input="".join(f"{sha}\n" for sha in shas).encode(),
            check=True,
        ).stdout
        out: dict[str, bytes | None] = {}
        pos = 0
        for sha in shas:
            end = data.index(b"\n", pos)
            header, pos = data[pos:end], end + 1
            if header.endswith(b" missing"):
                out[sha] = None
                continue
            size = int(header.rsplit(b" ", 1)[1])
            out[sha] = data[pos : pos + size]
            pos += size + 1
        return out


@lru_cache(maxsize=64)
def tree_of(root: Path, commit: str) -> str:
    """The tree id of `commit` (what a run of it executes, DESIGN §13b)."""
    return git_run(["rev-parse", f"{commit}^{{tree}}"], root, check=True).stdout.decode().strip()


def is_ancestor(root: Path, older: str, newer: str) -> bool:
    """Whether commit `older` is an ancestor of `newer` in this clone (False when either is
    unknown here, or is not a full sha: nothing a caller passes reaches git as an option)."""
    if not all(len(c) == 40 and all(ch in "0123456789abcdef" for ch in c) for c in (older, newer)):
        return False
    return git_run(["merge-base", "--is-ancestor", older, newer], root).returncode == 0


def _max_bytes() -> int:
    from trainops.yamlsource import MAX_FILE_BYTES

    return MAX_FILE_BYTES


def _oversize() -> bytes:
    """Stands for a file too big to read: the loader refuses it with the size message."""
    return b"\0" * (_max_bytes() + 1)


@dataclass(frozen=True)
class _Blob:
    sha: str
    size: int
    link: bool  # mode 120000: the blob is the link's target


@lru_cache(maxsize=8)
def _ls_tree(root: Path, sha: str) -> dict[str, _Blob]:
    """path -> blob of every file and link of commit `sha`."""
    out = git_run(["ls-tree", "-r", "-z", "--long", sha], root, check=True).stdout
    files: dict[str, _Blob] = {}
    for record in out.split(b"\0"):
        meta, _, path = record.partition(b"\t")
        fields = meta.split()
        if len(fields) == 4 and fields[1] == b"blob":
            size = int(fields[3])
            files[path.decode(errors="replace")] = _Blob(
                fields[2].decode(), size, fields[0] == b"120000"
            )
    return files


def _crosses_link(source: Source, path: str) -> bool:
    """Whether `path` or one of its folders is a link."""
    parts = path.split("/")
    folders = ("/".join(parts[:i]) for i in range(1, len(parts) + 1))
    return any(source.link_target(folder) is not None for folder in folders)


def linked_problem(source: Source, path: str) -> Problem | None:
    """An error for a config or lock file that is a link (or lies behind one): never followed."""
    if not _crosses_link(source, path):
        return None
    return Problem(path, message="symlink is not followed", hint=LINK_HINT)


def resolve_inside(source: Source, path: str) -> str | None:
    """`path` with every link on it resolved as the system would (targets read from `source`),
    or None when it leads outside the repository (absolute target, `..` past the root, a loop)."""
    pending = [p for p in path.replace("\\", "/").split("/") if p not in ("", ".")]
    done: list[str] = []
    hops = 0
    while pending:
        part = pending.pop(0)
        if part == "..":
            if not done:
                return None
            done.pop()
            continue
        done.append(part)
        target = source.link_target("/".join(done))
        if target is None:
            continue
        hops += 1
        if hops > _MAX_LINK_HOPS or target.startswith("/") or posixpath.isabs(target):
            return None
        done.pop()
        pending[:0] = [p for p in target.split("/") if p not in ("", ".")]
    return "/".join(done)
