"""Which files a package is made of (DESIGN §13b): what git holds at or under a path (the
commit's tree, or the index's files read from the working tree), minus links, submodules,
trainops' and tools' folders, credential-shaped names and what the source's own `.gitignore`
files exclude, each exclusion with its reason (`listing`). Content is judged later, while
streaming (`packaging.archive`)."""

from __future__ import annotations

import os
import posixpath
import tempfile
from dataclasses import dataclass
from pathlib import Path

from trainops.blobs import TruncatedBlob, batch
from trainops.packaging.refusal import refusal_by_name
from trainops.repo import SKIP_DIRS, Commit, Source, git_run

__all__ = ["Item", "Listing", "PackagingError", "inside", "listing"]


@dataclass(frozen=True)
class Item:
    """One file that may be packaged, by repository-relative path."""

    path: str
    size: int
    executable: bool
    blob: str = ""  # its blob in the commit; "" when it is read from the working tree


@dataclass(frozen=True)
class Listing:
    items: tuple[Item, ...]
    left_out: tuple[tuple[str, str], ...]  # (repository-relative path, why)


class PackagingError(Exception):
    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message, self.hint = message, hint


def listing(source: Source, path: str) -> Listing:
    """The files git holds at or under `path` ("" for all) that the rule lets through by name,
    and every other file with the reason it stays (the content is judged while streaming)."""
    path = path.strip("/")
    if isinstance(source, Commit):
        raw = _tree_entries(source, path)
    else:
        raw = _index_entries(source.root, path)
    left_out: list[tuple[str, str]] = []
    candidates: list[Item] = []
    links = _LinkCheck(source)
    for mode, blob, size, rel in raw:
        why = ""
        if mode == "160000":
            why = "submodule (not packaged)"
        elif mode == "120000" or links.crosses(rel):
            why = "symlink (not followed)"
        elif _too_long(rel):
            why = "name too long to unpack (a path over 4,096 bytes or a part over 255)"
            rel = rel[:120] + "…"  # shown, not the whole of it
        else:
            why = refusal_by_name(rel)
        if not why and any(part in SKIP_DIRS for part in rel.split("/")[:-1]):
            why = "trainops, git or tool folder"
        if why:
            left_out.append((rel, why))
            continue
        if not isinstance(source, Commit):
            try:
                st = os.lstat(source.root / rel)
            except OSError:
                continue  # deleted in the working tree: not there to package
            if not _regular(st.st_mode):
                left_out.append((rel, "not a regular file"))
                continue
            size, executable = st.st_size, bool(st.st_mode & 0o100)
        else:
            executable = mode == "100755"
        candidates.append(Item(rel, size, executable, blob))
    ignored = _gitignored(source, [i.path for i in candidates])
    items = []
    for item in candidates:
        if item.path in ignored:
            left_out.append((item.path, ".gitignore"))
        else:
            items.append(item)
    if not isinstance(source, Commit):
        # Shown, never packaged: apply reads the commit, where they are not. An untracked
        # folder is one entry (`--directory`): a virtualenv is not listed file by file.
        ignored_untracked = set(_untracked(source.root, path, ignored=True))
        for rel in _untracked(source.root, path, ignored=False):
            why = refusal_by_name(rel.rstrip("/")) or (
                ".gitignore" if rel in ignored_untracked else "untracked (not in git)"
            )
            left_out.append((rel, why))
    return Listing(tuple(sorted(items, key=lambda i: i.path)), tuple(sorted(left_out)))


def _too_long(rel: str) -> bool:
    """A name no machine unpacks (Linux's PATH_MAX and NAME_MAX) and a zip header cannot hold
    past 65,535 bytes: a commit can carry one (git's trees have no such limit)."""
    raw = rel.encode("utf-8", errors="surrogateescape")
    return len(raw) > 4096 or any(len(part) > 255 for part in raw.split(b"/"))


def _tree_entries(commit: Commit, path: str) -> list[tuple[str, str, int, str]]:
    """(mode, blob, size, path) of every entry of the commit at or under `path`."""
    spec = ["--", path] if path else []
    out = git_run(
        ["ls-tree", "-r", "-z", "--long", "--full-tree", commit.sha, *spec], commit.root, check=True
    ).stdout
    found = []
    for record in out.split(b"\0"):
        meta, _, raw = record.partition(b"\t")
        fields = meta.split()
        if len(fields) != 4:
            continue
        rel = raw.decode("utf-8", errors="surrogateescape")
        if path and rel != path and not rel.startswith(f"{path}/"):
            continue
        size = int(fields[3]) if fields[3].isdigit() else 0
        found.append((fields[0].decode(), fields[2].decode(), size, rel))
    return found


def _index_entries(root: Path, path: str) -> list[tuple[str, str, int, str]]:
    """(mode, blob, 0, path) of every file of the index at or under `path` (the working tree's
    view: read from disk, listed by git)."""
    proc = git_run(["ls-files", "-z", "--stage", "--", path or "."], root)
    if proc.returncode != 0:
        raise PackagingError(
            f"cannot list the files of {path or '.'}",
            "trainops packages what git holds: run it in a git repository",
        )
    found: dict[str, tuple[str, str, int, str]] = {}
    for record in proc.stdout.split(b"\0"):
        meta, _, raw = record.partition(b"\t")
        fields = meta.split()
        if len(fields) != 3:
            continue
        rel = raw.decode("utf-8", errors="surrogateescape")
        found.setdefault(rel, (fields[0].decode(), "", 0, rel))  # a conflict lists it thrice
    return list(found.values())


def _untracked(root: Path, path: str, ignored: bool) -> list[str]:
    """Untracked files at or under `path`: those `.gitignore` excludes (`ignored`), or all."""
    flags = ["--ignored", "--exclude-standard"] if ignored else []
    proc = git_run(["ls-files", "-z", "--others", "--directory", *flags, "--", path or "."], root)
    return sorted(
        p.decode("utf-8", errors="surrogateescape") for p in proc.stdout.split(b"\0") if p
    )


def _gitignored(source: Source, paths: list[str]) -> set[str]:
    """The paths the source's own `.gitignore` files exclude: the commit's blobs for a commit,
    the index's (staged) blobs for the working tree, never the files on disk nor this machine's
    `info/exclude` or global excludes. What a package of commit X holds depends on X alone: an
    edited, unstaged or uncommitted `.gitignore` changes nothing (issue 26)."""
    if not paths:
        return set()
    rules = _ignore_files(source)
    if not rules:
        return set()
    with tempfile.TemporaryDirectory(prefix="trainops-ignore-") as tmp:
        scratch = Path(tmp)
        git_run(["init", "-q", "."], scratch, check=True)
        try:
            _write_rules(source.root, rules, scratch)
        except TruncatedBlob as exc:
            raise PackagingError(str(exc)) from None
        no_machine_rules = ["-c", f"core.excludesFile={os.devnull}"]
        proc = git_run(
            [*no_machine_rules, "check-ignore", "--no-index", "-z", "--stdin"],
            scratch,
            input=b"\0".join(p.encode("utf-8", errors="surrogateescape") for p in paths) + b"\0",
        )
    return {p.decode("utf-8", errors="surrogateescape") for p in proc.stdout.split(b"\0") if p}


def _write_rules(root: Path, rules: list[tuple[str, str]], scratch: Path) -> None:
    """Each (path, blob) of `rules` written under `scratch`, all read through one git process
    (one per file made a tree of a thousand `.gitignore` files start a thousand)."""
    with batch(root) as blobs:
        for rel, blob in rules:
            target = scratch / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            with target.open("wb") as out:  # streamed: a huge .gitignore is git's to refuse
                for chunk in blobs.chunks(blob) or ():  # one a partial clone lacks: empty
                    out.write(chunk)


def _ignore_files(source: Source) -> list[tuple[str, str]]:
    """(path, blob) of every regular `.gitignore` file git holds for the source (git itself
    never reads a `.gitignore` that is a link)."""
    if isinstance(source, Commit):
        raw = _tree_entries(source, "")
    else:
        proc = git_run(["ls-files", "-z", "--stage", "--", ":(glob)**/.gitignore"], source.root)
        raw = []
        for record in proc.stdout.split(b"\0"):
            meta, _, name = record.partition(b"\t")
            fields = meta.split()
            if len(fields) == 3 and fields[2] == b"0":  # stage 0: not a conflict's side
                rel = name.decode("utf-8", errors="surrogateescape")
                raw.append((fields[0].decode(), fields[1].decode(), 0, rel))
    return [
        (rel, blob)
        for mode, blob, _, rel in raw
        if posixpath.basename(rel) == ".gitignore"
        and mode in ("100644", "100755")
        and ".." not in rel.split("/")
    ]


class _LinkCheck:
    """Whether a path lies behind a link: a folder of it is a link in the source (the commit's
    tree, or the working tree on disk). Folders are asked once."""

    def __init__(self, source: Source) -> None:
        self._source = source
        self._known: dict[str, bool] = {}

    def crosses(self, rel: str) -> bool:
        parts = rel.split("/")
        for i in range(1, len(parts)):
            folder = "/".join(parts[:i])
            if folder not in self._known:
                if isinstance(self._source, Commit):
                    self._known[folder] = self._source.link_target(folder) is not None
                else:
                    self._known[folder] = (self._source.root / folder).is_symlink()
            if self._known[folder]:
                return True
        return False


def _regular(mode: int) -> bool:
    import stat

    return stat.S_ISREG(mode)


def inside(path: str, prefix: str) -> str:
    """`path` relative to folder `prefix` ("" for the root)."""
    return posixpath.relpath(path, prefix) if prefix else path
