"""The one rule for what may leave the machine (DESIGN §13b), for `spec.data` and every workdir a
provider ships (Ray's `runtime_env.working_dir`).

A package is built from what git holds, never from whatever lies on disk: the applied commit's
tree for `apply` and `serve`, the index's files read from the working tree for `plan` and
`validate` (DESIGN §3: one view of the repository, previewed before committing). Untracked
files never travel: a CI step's `gha-creds-*.json` or a stray `x-key.json` is not in git. From
those files the rule leaves out credential-shaped names (`refusal_by_name`), links (never
followed), submodules, trainops' and tools' folders and what `.gitignore` excludes, and, while
streaming, any file whose content looks like a credential (the scrubber's token shapes, a PEM
private key, a JSON `private_key`): every exclusion is returned with its reason, for the plan.

Files are read in chunks (`CHUNK`): memory stays bounded whatever the data's size.
"""

from __future__ import annotations

import os
import posixpath
import re
import subprocess
import tempfile
import zipfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from trainops.repo import SKIP_DIRS, Commit, Source, git_run
from trainops.scrub import TOKEN_SHAPE

CHUNK = 1 << 20
# A fixed time for every zip entry (zip cannot say 1970): no clock or mtime reaches the bytes.
EPOCH = (1980, 1, 1, 0, 0, 0)

_KEY_NAMES = frozenset(
    {"id_rsa", "id_dsa", "id_ecdsa", "id_ed25519", "id_ecdsa_sk", "id_ed25519_sk"}
)
_KEY_SUFFIXES = (".pem", ".key", ".p12", ".pfx", ".ppk", ".jks", ".keystore", ".gpg", ".asc")
_CREDENTIAL_NAMES = frozenset(
    {
        ".netrc",
        "_netrc",
        ".pgpass",
        ".pypirc",
        ".npmrc",
        ".git-credentials",
        ".boto",
        ".s3cfg",
        ".htpasswd",
        ".terraformrc",
        "terraform.rc",
        ".vault-token",
        ".dockercfg",
        "application_default_credentials.json",
        "credentials.db",
        "access_tokens.db",
        "kubeconfig",
    }
)
# Folders whose every file is a credential store: ~/.aws, ~/.ssh, gcloud, kube, docker config.
_CREDENTIAL_DIRS = frozenset(
    {".git", ".aws", ".ssh", ".gnupg", "gcloud", ".kube", ".docker", ".azure"}
)
# What a credential looks like inside a file. The token shapes are the scrubber's own (one list
# for what is masked in output and what never leaves in a package).
_CONTENT = (
    (re.compile(rb'"private_key"\s*:\s*"'), "service account key (content)"),
    (re.compile(rb"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----"), "private key (content)"),
    (re.compile(TOKEN_SHAPE.pattern.encode()), "content looks like a token"),
)
_OVERLAP = 512  # bytes kept from one chunk to the next: a credential cut in two is still seen


def refusal_by_name(rel: str) -> str:
    """Why a file of this repository path must never leave the machine ("" when it may)."""
    parts = rel.split("/")
    name = parts[-1]
    lower = name.lower()
    if any(p.lower() in _CREDENTIAL_DIRS for p in parts[:-1]) or lower == ".git":
        return "credentials or git metadata"
    if lower.startswith(".env") or lower.endswith(".env"):
        return "environment file"
    if (
        lower in _KEY_NAMES
        or lower.endswith(_KEY_SUFFIXES)
        or (lower.startswith("id_") and "." not in lower)  # id_rsa_deploy, id_work: ssh keys
        or lower.startswith("deploy_key")
    ):
        return "private key"
    if ".tfstate" in lower:
        return "terraform state (holds secrets)"
    if (
        lower in _CREDENTIAL_NAMES
        or "credentials" in lower
        or (lower.startswith("gha-creds-") and lower.endswith(".json"))
        or lower.endswith(("-key.json", "_key.json"))
    ):
        return "cloud credentials"
    return ""


class Scanner:
    """Fed a file chunk by chunk: why its content is a credential ("" while it is not)."""

    def __init__(self) -> None:
        self._tail = b""
        self.why = ""

    def feed(self, chunk: bytes) -> str:
        if not self.why:
            text = self._tail + chunk
            for pattern, why in _CONTENT:
                if pattern.search(text):
                    self.why = why
                    break
            self._tail = text[-_OVERLAP:]
        return self.why


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


# ---- listing --------------------------------------------------------------------------------


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
        for rel, blob in rules:
            target = scratch / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            with target.open("wb") as out:  # streamed: a huge .gitignore is git's to refuse
                subprocess.run(
                    ["git", "cat-file", "blob", blob],
                    cwd=source.root,
                    stdout=out,
                    stderr=subprocess.DEVNULL,
                    check=False,
                )
        no_machine_rules = ["-c", f"core.excludesFile={os.devnull}"]
        proc = git_run(
            [*no_machine_rules, "check-ignore", "--no-index", "-z", "--stdin"],
            scratch,
            input=b"\0".join(p.encode("utf-8", errors="surrogateescape") for p in paths) + b"\0",
        )
    return {p.decode("utf-8", errors="surrogateescape") for p in proc.stdout.split(b"\0") if p}


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


# ---- reading --------------------------------------------------------------------------------


def _file_chunks(path: Path) -> Iterator[bytes]:
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)  # a link swapped in now is not followed
    fd = os.open(path, flags)
    with os.fdopen(fd, "rb") as f:
        while chunk := f.read(CHUNK):
            yield chunk


def _stream_blobs(root: Path, items: Sequence[Item]) -> Iterator[tuple[Item, Iterator[bytes]]]:
    """One `git cat-file --batch` answering each blob in turn, read in chunks."""
    if not items:
        return
    with _cat_file(root) as proc:
        assert proc.stdin is not None and proc.stdout is not None
        for item in items:
            proc.stdin.write(f"{item.blob}\n".encode())
            proc.stdin.flush()
            header = proc.stdout.readline().split()
            if len(header) != 3 or header[1] != b"blob":
                raise PackagingError(f"{item.path}: its blob is missing from the repository")
            yield item, _blob_chunks(proc.stdout, int(header[2]))


def _blob_chunks(out: IO[bytes], size: int) -> Iterator[bytes]:
    left = size
    while left:
        chunk = out.read(min(CHUNK, left))
        if not chunk:
            raise PackagingError("git cat-file ended early")
        left -= len(chunk)
        yield chunk
    out.read(1)  # the newline after each blob


@contextmanager
def _cat_file(root: Path) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(
        ["git", "cat-file", "--batch"],
        cwd=root,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield proc
    finally:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.close()
        proc.stdout.close()
        proc.wait()


def inside(path: str, prefix: str) -> str:
    """`path` relative to folder `prefix` ("" for the root)."""
    return posixpath.relpath(path, prefix) if prefix else path
