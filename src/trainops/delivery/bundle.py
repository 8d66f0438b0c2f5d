"""What a delivery copies: a succeeded run's output files, hashed, plus a `trainops.json` manifest.

An output value is read by its shape, not by provider: an absolute path is a file (the local
provider), an http(s) URL is a file to download (Replicate's `weights`), anything else is a
reference recorded in the manifest only (Replicate's `version`, `owner/name:id`). A file is read
only when it lies in the run's own output folder, reached without a symlink: outputs come from the
state branch, which anyone who can push may write (`/etc/passwd`, `/proc/self/environ`), and from
a provider's answer. A URL is downloaded only through the egress policy (`egress.py`, DESIGN
§13a): an output on an internal or metadata host the environment does not name is never
requested, and the delivery fails naming that host. The manifest is deterministic (no clock),
so delivering the same run twice produces the same bytes.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote, urlsplit

from trainops.delivery.base import MANIFEST, Bundle, DeliveryError, File
from trainops.state.model import Run

DOWNLOAD_TIMEOUT = 60.0  # seconds without progress, not for the whole transfer
_CHUNK = 1 << 20


def hash_file(path: Path) -> tuple[int, str, str]:
    """Size, sha256 and git blob sha1 of a file, in one read."""
    size = path.stat().st_size
    sha256 = hashlib.sha256()
    sha1 = hashlib.sha1(f"blob {size}\0".encode())
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            sha256.update(chunk)
            sha1.update(chunk)
    return size, sha256.hexdigest(), sha1.hexdigest()


def _file(name: str, path: Path) -> File:
    size, sha256, sha1 = hash_file(path)
    return File(name, path, size, sha256, sha1)


@contextmanager
def gather(
    job: str, run: Run, folder: Path | None = None, prefix: str | None = None
) -> Iterator[Bundle]:
    """The run's outputs as local files (downloads live in a temporary folder removed on exit).
    Files are read only inside `folder`, the run's own output folder, and s3:// objects only
    under `prefix`, the run's own output prefix; every output is checked before anything is
    read, so a refused one means nothing is delivered."""
    if not run.outputs:
        raise DeliveryError(f"{job}: run {run.run_id} recorded no outputs: nothing to deliver")
    for key, value in sorted(run.outputs.items()):
        if os.path.isabs(value):
            _own_file(job, key, value, run, folder)
        elif value.startswith("s3://"):
            _own_object(job, key, value, run, prefix)
        elif value.startswith(("http://", "https://")):
            _allowed_url(job, key, value, run)
    with tempfile.TemporaryDirectory(prefix="trainops-delivery-") as tmp:
        files: list[File] = []
        references: dict[str, str] = {}
        for key, value in sorted(run.outputs.items()):
            if value.startswith(("http://", "https://")):
                name = _url_name(value) or key
                dest = Path(tmp) / "files" / name
                files.append(_download(job, key, value, dest, name, run.run_id or ""))
            elif value.startswith("s3://"):
                name = PurePosixPath(value).name
                files.append(_fetch_object(job, key, value, Path(tmp) / "files" / name, name))
            elif os.path.isabs(value):
                path = _own_file(job, key, value, run, folder)
                files.append(_file(path.name, path))
            else:
                references[key] = value
        _check_names(job, files)
        manifest = Path(tmp) / MANIFEST
        manifest.write_text(_manifest_text(job, run, files, references), encoding="utf-8")
        files.append(_file(MANIFEST, manifest))
        yield Bundle(job, run.revision, run.run_id or "", tuple(files))


def _own_file(job: str, key: str, value: str, run: Run, folder: Path | None) -> Path:
    """`value` as a file inside `folder`, reached without symlinks; else `DeliveryError`."""
    refused = DeliveryError(
        f"{job}: output {key!r} of run {run.run_id} ({value}) is not a file in the run's own "
        "output folder: nothing delivered",
        "outputs are read from the state branch; check who wrote it (DESIGN §9)",
    )
    if folder is None:
        raise refused
    folder = Path(os.path.normpath(folder))
    lexical = Path(os.path.normpath(value))
    try:
        inner = lexical.relative_to(folder)
    except ValueError:
        raise refused from None
    if not folder.is_dir():
        raise DeliveryError(
            f"{job}: output {key!r} of run {run.run_id} is gone ({value})",
            "the run's output folder was removed; rerun the job (bump spec.rerun)",
        )
    root = folder.resolve()
    resolved = lexical.resolve()
    # Resolving changes nothing below the folder only when no part of the path is a symlink.
    if resolved != root / inner or not resolved.is_relative_to(root):
        raise refused
    if not resolved.is_file():
        raise DeliveryError(
            f"{job}: output {key!r} of run {run.run_id} is gone ({value})",
            "the run's output folder was removed; rerun the job (bump spec.rerun)",
        )
    return resolved


def _own_object(job: str, key: str, value: str, run: Run, prefix: str | None) -> None:
    """`value` must be an object under the run's own output prefix (state is input: an output
    naming another bucket or run must not make trainops copy it anywhere)."""
    rest = value[len(prefix) :] if prefix and value.startswith(prefix) else ""
    if not rest or any(p in ("", ".", "..") for p in rest.split("/")):
        raise DeliveryError(
            f"{job}: output {key!r} of run {run.run_id} ({value}) is not an object under the "
            "run's own output prefix: nothing delivered",
            "outputs are read from the state branch; check who wrote it (DESIGN §9)",
        )


def _allowed_url(job: str, key: str, url: str, run: Run) -> None:
    """`url` must be one the egress policy asks, by its text and its addresses now (the
    download judges each connection and redirect again)."""
    from trainops.egress import Policy

    host, why = Policy().check(url)
    if why:
        raise _refused_url(job, key, run.run_id or "", host, why)


def _refused_url(job: str, key: str, run_id: str, host: str, why: str) -> DeliveryError:
    return DeliveryError(
        f"{job}: output {key!r} of run {run_id} is on {host[:100] or 'no host'}, which trainops "
        f"does not fetch from ({why}): nothing delivered",
        "an output URL comes from the provider's answer or the state branch, both untrusted "
        "(DESIGN §13a); if that host is yours, name it in TRAINOPS_EGRESS_HOSTS",
    )


def _fetch_object(job: str, key: str, uri: str, dest: Path, name: str) -> File:
    from trainops.delivery import s3

    dest.parent.mkdir(parents=True, exist_ok=True)
    s3.fetch(uri, dest, f"{job}: output {key!r}")
    return _file(name, dest)


def _manifest_text(job: str, run: Run, files: list[File], references: Mapping[str, str]) -> str:
    data: dict[str, Any] = {
        "job": job,
        "revision": run.revision,
        "run_id": run.run_id,
        "attempt": run.attempt,
        "provider": run.provider,
        "source_commit": run.source_commit,
        "files": {f.name: {"sha256": f.sha256, "size": f.size} for f in files},
        "outputs": dict(references),
    }
    if run.trainer:
        data["trainer"] = run.trainer
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


def _check_names(job: str, files: list[File]) -> None:
    seen: set[str] = set()
    for f in files:
        if f.name == MANIFEST:
            raise DeliveryError(
                f"{job}: an output file is named {MANIFEST}, which trainops writes itself",
                "rename that output file",
            )
        if f.name in seen:
            raise DeliveryError(
                f"{job}: two outputs would be delivered as {f.name!r}",
                "give output files distinct names",
            )
        seen.add(f.name)


def _url_name(url: str) -> str:
    name = PurePosixPath(unquote(urlsplit(url).path)).name
    return "" if name in ("", ".", "..") else name


def safe_url(url: str) -> str:
    """A URL fit for a message: no query (signed URLs carry credentials there), no userinfo."""
    parts = urlsplit(url)
    return (
        f"{parts.scheme}://{parts.hostname or ''}{':' + str(parts.port) if parts.port else ''}"
        f"{parts.path}"
    )


def _download(job: str, key: str, url: str, dest: Path, name: str, run_id: str) -> File:
    """Stream `url` to `dest` (never held in memory whole), then hash it; every connection and
    redirect judged by the egress policy, nothing of this machine's environment sent."""
    import httpx

    from trainops.egress import Policy, Refused

    dest.parent.mkdir(parents=True, exist_ok=True)
    shown = safe_url(url)
    policy = Policy()
    try:
        with policy.client(DOWNLOAD_TIMEOUT) as client, policy.stream(client, "GET", url) as resp:
            if resp.status_code != 200:
                raise DeliveryError(
                    f"{job}: downloading output {key!r} from {shown} failed: "
                    f"HTTP {resp.status_code}"
                )
            with dest.open("wb") as f:
                for chunk in resp.iter_bytes(_CHUNK):
                    f.write(chunk)
    except Refused as exc:
        raise _refused_url(job, key, run_id, exc.host, exc.reason) from None
    except httpx.HTTPError as exc:
        raise DeliveryError(
            f"{job}: downloading output {key!r} from {shown} failed: {type(exc).__name__}"
        ) from None
    return _file(name, dest)
