"""An S3 prefix as an alias: a server-side copy of the promoted run's delivered files.

The source is the prefix the run's S3 delivery wrote (`<uri>/<job>/<revision>/`). Its manifest
(`trainops.json`) names the files, so no listing is needed (no `s3:ListBucket`). Objects are
copied with boto3's managed copy, which turns into a multipart `UploadPartCopy` from
`copy_threshold` on (`CopyObject` copies at most 5 GiB), and carry the source's `sha256` metadata
either way; an object the alias already holds with the same sha256 and size is not copied again.
The manifest is copied last: it is the pointer, so the alias names a run only once every file of
that run is there. Files the alias's previous manifest listed and the new run lacks are removed
after it; nothing else under the prefix is ever removed (it may be someone else's).

Needed permissions: `s3:GetObject` on the source prefix; `s3:GetObject`, `s3:PutObject` and
`s3:DeleteObject` on the alias prefix (docs/security.md). Without `s3:ListBucket`, S3 answers a
HEAD or GET of a missing key with 403: on the alias that means "not there yet".
"""

from __future__ import annotations

import json
from typing import Any

from trainops.delivery import s3api
from trainops.delivery.base import MANIFEST
from trainops.faults import crashpoint
from trainops.manifest import S3Alias
from trainops.promotion.base import PromotionError
from trainops.state.model import Run

# `CopyObject` refuses a source larger than 5 GiB (AWS CopyObject API reference); from this size
# on the copy is multipart. Parts are at most `_PART_SIZE` (s3transfer widens them to keep to
# 10,000 parts) and at least S3's 5 MiB minimum.
COPY_THRESHOLD = 5 * 1024**3
_PART_SIZE = 512 * 1024**2
_MIN_PART = 5 * 1024**2

# Without s3:ListBucket a missing key answers 403 (AWS HeadObject / GetObject API references).
_ABSENT = s3api.MISSING | {"403", "AccessDenied"}


def _head(client: Any, bucket: str, key: str, absent: frozenset[str]) -> dict[str, Any] | None:
    from botocore.exceptions import ClientError

    try:
        return dict(s3api.call(lambda: client.head_object(Bucket=bucket, Key=key), bucket, key))
    except ClientError as exc:
        if s3api.error_code(exc) in absent:
            return None
        raise s3api.error(exc, "reading", bucket, key) from None


def _held(head: dict[str, Any] | None) -> tuple[str, int] | None:
    if head is None:
        return None
    return str((head.get("Metadata") or {}).get(s3api.SHA256_META, "")), int(head["ContentLength"])


def _read_manifest(client: Any, bucket: str, key: str, absent: frozenset[str]) -> Any:
    """The JSON of the manifest at `key`; None when it is not there (or not JSON)."""
    from botocore.exceptions import ClientError

    try:
        body = s3api.call(lambda: client.get_object(Bucket=bucket, Key=key), bucket, key)["Body"]
        return json.loads(body.read(1 << 20))
    except ClientError as exc:
        if s3api.error_code(exc) in absent:
            return None
        raise s3api.error(exc, "reading", bucket, key) from None
    except ValueError:
        return None


def _names(data: Any) -> dict[str, tuple[str, int]]:
    """File name -> (sha256, size) as a trainops manifest lists them (unsafe names dropped)."""
    files = data.get("files") if isinstance(data, dict) else None
    if not isinstance(files, dict):
        return {}
    named: dict[str, tuple[str, int]] = {}
    for name, entry in files.items():
        if not isinstance(name, str) or not name or "/" in name or name in (".", "..", MANIFEST):
            continue
        entry = entry if isinstance(entry, dict) else {}
        size = entry.get("size")
        named[name] = (str(entry.get("sha256") or ""), size if isinstance(size, int) else -1)
    return named


def move(alias: S3Alias, source: str, run: Run, *, copy_threshold: int = COPY_THRESHOLD) -> str:
    """Point the alias prefix at `run`'s delivery at `source`. `copy_threshold` is the size from
    which an object is copied in parts (at most 5 GiB, what `CopyObject` accepts)."""
    if not source.startswith("s3://"):
        raise PromotionError(
            f"run {run.run_id} has no recorded S3 delivery to copy to {alias.uri}",
            "its delivery predates promotion; bump spec.rerun to deliver a new run",
        )
    from boto3.s3.transfer import TransferConfig
    from botocore.exceptions import ClientError

    src_bucket, src_prefix = s3api.split_uri(source)
    dst_bucket, dst_prefix = s3api.split_uri(alias.uri)
    client = s3api.client()
    src_manifest = f"{src_prefix}/{MANIFEST}" if src_prefix else MANIFEST
    data = _read_manifest(client, src_bucket, src_manifest, _ABSENT)
    if not isinstance(data, dict):
        raise PromotionError(f"{source} holds no {MANIFEST}: the delivery is not complete")
    # The prefix is the revision's, shared by its attempts: its manifest must name this run,
    # or the alias would get another run's files on the word of a state record (DESIGN §9).
    named = (str(data.get("run_id") or ""), str(data.get("revision") or ""))
    if named != (run.run_id, run.revision):
        raise PromotionError(
            f"{source} holds the delivery of run {named[0] or '(none)'}, not of run "
            f"{run.run_id}: {alias.uri} is left as it is",
            "the state branch is input: fix the run's record there (or bump spec.rerun)",
        )
    files = _names(data)
    order = [*sorted(files), MANIFEST]
    dst_manifest = f"{dst_prefix}/{MANIFEST}" if dst_prefix else MANIFEST
    before = set(_names(_read_manifest(client, dst_bucket, dst_manifest, _ABSENT)))
    threshold = max(_MIN_PART, min(copy_threshold, COPY_THRESHOLD))
    config = TransferConfig(
        multipart_threshold=threshold,
        multipart_chunksize=max(_MIN_PART, min(threshold, _PART_SIZE)),
    )
    copied = 0
    for name in order:
        src_key = f"{src_prefix}/{name}" if src_prefix else name
        key = f"{dst_prefix}/{name}" if dst_prefix else name
        if name == MANIFEST:
            crashpoint("promote-moving")
        src = _head(client, src_bucket, src_key, _ABSENT)
        if src is None:
            raise PromotionError(
                f"s3://{src_bucket}/{src_key}, which {source}{MANIFEST} lists, is missing or not "
                f"readable: {alias.uri} is left as it is",
                "promotion needs s3:GetObject on the delivery's prefix; if the file was removed, "
                "bump spec.rerun to deliver anew",
            )
        if name in files and _held(src) != files[name]:
            raise PromotionError(
                f"s3://{src_bucket}/{src_key} does not match what {source}{MANIFEST} lists "
                f"for it: {alias.uri} is left as it is",
                "the delivery was changed after it was written; bump spec.rerun to deliver anew",
            )
        if _held(_head(client, dst_bucket, key, _ABSENT)) == _held(src):
            continue
        # The metadata is given (REPLACE) rather than left to the copy: a multipart copy has no
        # MetadataDirective, and older s3transfer releases dropped the source's metadata there.
        extra = {"Metadata": dict(src.get("Metadata") or {}), "MetadataDirective": "REPLACE"}
        try:
            s3api.call(
                lambda s=src_key, k=key, x=extra: client.copy(
                    {"Bucket": src_bucket, "Key": s}, dst_bucket, k, ExtraArgs=x, Config=config
                ),
                dst_bucket,
                key,
            )
        except ClientError as exc:
            raise s3api.error(exc, "copying to", dst_bucket, key) from None
        copied += 1
    stale = [f"{dst_prefix}/{n}" if dst_prefix else n for n in sorted(before - set(files))]
    for key in stale:
        try:
            s3api.call(
                lambda k=key: client.delete_object(Bucket=dst_bucket, Key=k), dst_bucket, key
            )
        except ClientError as exc:
            raise s3api.error(exc, "removing", dst_bucket, key) from None
    if not copied and not stale:
        return f"{alias.uri} already holds run {run.run_id}"
    return f"{alias.uri} now holds run {run.run_id} ({copied} copied, {len(stale)} removed)"


__all__ = ["COPY_THRESHOLD", "move"]
