"""Data in (DESIGN §18): repository files and folders packaged for a run.

`package` reads a `spec.data` path from a `Source` (the working tree for `plan`, the applied commit
for `apply`, enumerated by the same `Source.entries` as manifests), leaves out what must never
leave the machine (credentials, `.git`, what `.gitignore` excludes, links), and builds one
deterministic archive: same content, same bytes, same sha256, which joins the revision (§3).
"""

from __future__ import annotations

import hashlib
import io
import posixpath
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from trainops.errors import Problem
from trainops.repo import Commit, Source, git_run
from trainops.yamlsource import Document

MIB = 1024 * 1024
# A fixed time for every zip entry (zip cannot say 1970): no clock or mtime reaches the bytes.
_EPOCH = (1980, 1, 1, 0, 0, 0)
_KEY_NAMES = frozenset(
    {"id_rsa", "id_dsa", "id_ecdsa", "id_ed25519", "id_ecdsa_sk", "id_ed25519_sk"}
)
_KEY_SUFFIXES = (".pem", ".key", ".p12", ".pfx", ".ppk", ".jks", ".keystore", ".gpg", ".asc")
_CREDENTIAL_NAMES = frozenset(
    {
        ".netrc",
        ".pypirc",
        ".npmrc",
        ".git-credentials",
        ".boto",
        ".s3cfg",
        ".htpasswd",
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


@dataclass(frozen=True)
class Package:
    """One `spec.data` entry, packaged: a zip of a folder, or a single file as it is."""

    key: str
    path: str  # repository-relative, as the manifest names it (no trailing `/`)
    folder: bool
    files: tuple[str, ...]  # packaged, relative to `path`
    left_out: tuple[tuple[str, str], ...]  # (relative path, why)
    content: bytes = field(repr=False)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()

    @property
    def digest(self) -> str:
        return f"sha256:{self.sha256}"

    @property
    def size(self) -> int:
        return len(self.content)

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
    """Why a file must never leave the machine ("" when it may): credentials and keys."""
    parts = rel.split("/")
    name = parts[-1]
    lower = name.lower()
    if any(p in _CREDENTIAL_DIRS for p in parts[:-1]) or name == ".git":
        return "credentials or git metadata"
    if lower.startswith(".env"):
        return "environment file"
    if lower in _KEY_NAMES or lower.endswith(_KEY_SUFFIXES):
        return "private key"
    if lower in _CREDENTIAL_NAMES or (
        lower.startswith("credentials") and len(parts) > 1 and parts[-2].lower() in (".aws", "aws")
    ):
        return "cloud credentials"
    return ""


def _looks_like_key(content: bytes) -> bool:
    head = content[:4096]
    return b"-----BEGIN" in head and b"PRIVATE KEY" in head


class DataError(Exception):
    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message, self.hint = message, hint


def package(source: Source, key: str, path: str, limit: int | None = None) -> Package:
    """Package `path` of `source` for input `key`. Raises DataError (what is wrong + hint)."""
    path = path.strip("/")
    entries = list(source.entries(path))
    prefix = f"{path}/"
    exact = [e for e in entries if e.path == path]
    if exact and exact[0].link:
        raise DataError(
            f"spec.data.{key}: {path} is a symlink; it is not followed",
            "put the files themselves in the repository",
        )
    if any(e.link and prefix.startswith(f"{e.path}/") for e in entries):
        raise DataError(
            f"spec.data.{key}: {path} lies behind a symlink; it is not followed",
            "put the files themselves in the repository",
        )
    folder = not exact
    inside = [e for e in entries if e.path.startswith(prefix)] if folder else exact
    if not inside:
        raise DataError(
            f"spec.data.{key}: {path} is not a file or folder of the repository"
            + (" at this commit" if isinstance(source, Commit) else ""),
            "the path is relative to the repository root; commit the data with the manifest",
        )
    left_out: list[tuple[str, str]] = []
    candidates: list[str] = []
    for entry in inside:
        rel = entry.path[len(prefix) :] if folder else posixpath.basename(entry.path)
        why = "symlink (not followed)" if entry.link else never_packaged(entry.path)
        if why:
            left_out.append((rel, why))
        else:
            candidates.append(entry.path)
    ignored = _gitignored(source.root, candidates)
    kept = []
    for p in candidates:
        if p in ignored:
            left_out.append((p[len(prefix) :] if folder else posixpath.basename(p), ".gitignore"))
        else:
            kept.append(p)
    contents = _read_all(source, kept)
    files: list[tuple[str, bytes]] = []
    for p in sorted(kept):
        rel = p[len(prefix) :] if folder else posixpath.basename(p)
        content = contents.get(p)
        if content is None:
            left_out.append((rel, "unreadable"))
        elif _looks_like_key(content):
            left_out.append((rel, "private key"))
        else:
            files.append((rel, content))
    if not files:
        raise DataError(
            f"spec.data.{key}: {path} holds nothing that can be packaged"
            + (f" (left out: {', '.join(p for p, _ in left_out[:5])})" if left_out else ""),
            "add the data files to the repository",
        )
    content = _zip(files) if folder else files[0][1]
    pkg = Package(key, path, folder, tuple(r for r, _ in files), tuple(sorted(left_out)), content)
    if limit is not None and pkg.size > limit:
        raise DataError(
            f"spec.data.{key}: {path} packages to {human_size(pkg.size)} "
            f"({pkg.size} bytes), over the provider's limit of {human_size(limit)}",
            "make the data smaller, or upload it elsewhere and put its URL in spec.input",
        )
    return pkg


def _zip(files: Iterable[tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
        for rel, content in sorted(files):
            info = zipfile.ZipInfo(rel, date_time=_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o100644 << 16
            info.create_system = 3  # unix, whatever the machine
            zf.writestr(info, content, compresslevel=6)
    return buf.getvalue()


def _gitignored(root: Path, paths: list[str]) -> set[str]:
    """The paths `.gitignore` excludes (as git sees them; `--no-index`: tracked ones too)."""
    if not paths:
        return set()
    proc = git_run(
        ["check-ignore", "--no-index", "-z", "--stdin"],
        root,
        input=b"\0".join(p.encode() for p in paths) + b"\0",
    )
    return {p.decode() for p in proc.stdout.split(b"\0") if p}


def _read_all(source: Source, paths: list[str]) -> dict[str, bytes | None]:
    """Whole files (data is not bound by the manifest size limit of `Source.read`)."""
    if not paths:
        return {}
    if isinstance(source, Commit):
        proc = git_run(
            ["cat-file", "--batch"],
            source.root,
            input=b"".join(f"{source.sha}:{p}\n".encode() for p in paths),
        )
        out: dict[str, bytes | None] = {}
        data, pos = proc.stdout, 0
        for p in paths:
            end = data.index(b"\n", pos)
            header = data[pos:end].split()
            pos = end + 1
            if len(header) != 3 or header[1] != b"blob":
                out[p] = None
                continue
            size = int(header[2])
            out[p] = data[pos : pos + size]
            pos += size + 1
        return out
    result: dict[str, bytes | None] = {}
    for p in paths:
        full = source.root / p
        result[p] = full.read_bytes() if full.is_file() and not full.is_symlink() else None
    return result


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
