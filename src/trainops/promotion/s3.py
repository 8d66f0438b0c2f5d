"""An S3 prefix as an alias: a server-side copy of the promoted run's delivered files.

The source is the prefix the run's S3 delivery wrote (`<uri>/<job>/<revision>/`). Objects are
copied with their `sha256` metadata; an object the alias already holds with the same sha256 and
size is not copied again. The manifest (`trainops.json`, naming job, revision and run) is copied
last: it is the pointer, so the alias names a run only once every file of that run is there.
Files the alias's previous manifest listed and the new run lacks are removed after it; nothing
else under the prefix is ever removed (it may be someone else's).
"""

from __future__ import annotations

from typing import Any

from trainops.delivery.bundle import MANIFEST
from trainops.delivery.s3 import SHA256_META, _call, _client, _code, _error, split_uri
from trainops.faults import crashpoint
from trainops.manifest import S3Alias
from trainops.promotion.targets import PromotionError
from trainops.state.model import Run

_MISSING = frozenset({"404", "NoSuchKey", "NotFound"})


def _keys(client: Any, bucket: str, prefix: str) -> list[str]:
    from botocore.exceptions import ClientError

    keys: list[str] = []
    try:
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        for page in _call(lambda: list(pages), bucket, prefix):
            keys += [str(o["Key"]) for o in page.get("Contents") or []]
    except ClientError as exc:
        raise _error(exc, "listing", bucket, prefix) from None
    return keys


def _head(client: Any, bucket: str, key: str) -> tuple[str, int] | None:
    from botocore.exceptions import ClientError

    try:
        head = _call(lambda: client.head_object(Bucket=bucket, Key=key), bucket, key)
    except ClientError as exc:
        if _code(exc) in _MISSING:
            return None
        raise _error(exc, "reading", bucket, key) from None
    return str((head.get("Metadata") or {}).get(SHA256_META, "")), int(head["ContentLength"])


def _listed(client: Any, bucket: str, key: str) -> set[str]:
    """The file names the alias's current manifest lists (empty when it has none)."""
    import json

    from botocore.exceptions import ClientError

    try:
        body = _call(lambda: client.get_object(Bucket=bucket, Key=key), bucket, key)["Body"]
        data = json.loads(body.read(1 << 20))
    except ClientError as exc:
        if _code(exc) in _MISSING:
            return set()
        raise _error(exc, "reading", bucket, key) from None
    except ValueError:
        return set()  # not a manifest trainops wrote: remove nothing
    files = data.get("files") if isinstance(data, dict) else None
    if not isinstance(files, dict):
        return set()
    return {n for n in files if isinstance(n, str) and n and "/" not in n and n not in ("..",)}


def _manifest_run(client: Any, bucket: str, key: str) -> tuple[str, str]:
    """(run id, revision) the delivery manifest at `key` names; ("", "") when unreadable."""
    import json

    from botocore.exceptions import ClientError

    try:
        body = _call(lambda: client.get_object(Bucket=bucket, Key=key), bucket, key)["Body"]
        data = json.loads(body.read(1 << 20))
    except ClientError as exc:
        raise _error(exc, "reading", bucket, key) from None
    except ValueError:
        return "", ""
    if not isinstance(data, dict):
        return "", ""
    return str(data.get("run_id") or ""), str(data.get("revision") or "")


def move(alias: S3Alias, source: str, run: Run) -> str:
    if not source.startswith("s3://"):
        raise PromotionError(
            f"run {run.run_id} has no recorded S3 delivery to copy to {alias.uri}",
            "its delivery predates promotion; bump spec.rerun to deliver a new run",
        )
    from botocore.exceptions import ClientError

    src_bucket, src_prefix = split_uri(source)
    dst_bucket, dst_prefix = split_uri(alias.uri)
    client = _client()
    names = {k[len(src_prefix) + 1 :]: k for k in _keys(client, src_bucket, src_prefix + "/")}
    if MANIFEST not in names:
        raise PromotionError(f"{source} holds no {MANIFEST}: the delivery is not complete")
    # The prefix is the revision's, shared by its attempts: its manifest must name this run,
    # or the alias would get another run's files on the word of a state record (DESIGN §9).
    named = _manifest_run(client, src_bucket, names[MANIFEST])
    if named != (run.run_id, run.revision):
        raise PromotionError(
            f"{source} holds the delivery of run {named[0] or '(none)'}, not of run "
            f"{run.run_id}: {alias.uri} is left as it is",
            "the state branch is input: fix the run's record there (or bump spec.rerun)",
        )
    order = [*sorted(n for n in names if n != MANIFEST), MANIFEST]
    before = _listed(client, dst_bucket, f"{dst_prefix}/{MANIFEST}" if dst_prefix else MANIFEST)
    copied = 0
    for name in order:
        key = f"{dst_prefix}/{name}" if dst_prefix else name
        if name == MANIFEST:
            crashpoint("promote-moving")
        held = _head(client, dst_bucket, key)
        if held is not None and held == _head(client, src_bucket, names[name]):
            continue
        try:
            _call(
                lambda n=name, k=key: client.copy_object(
                    Bucket=dst_bucket, Key=k, CopySource={"Bucket": src_bucket, "Key": names[n]}
                ),
                dst_bucket,
                key,
            )
        except ClientError as exc:
            raise _error(exc, "copying to", dst_bucket, key) from None
        copied += 1
    stale = [f"{dst_prefix}/{n}" if dst_prefix else n for n in sorted(before - set(names))]
    for key in stale:
        try:
            _call(lambda k=key: client.delete_object(Bucket=dst_bucket, Key=k), dst_bucket, key)
        except ClientError as exc:
            raise _error(exc, "removing", dst_bucket, key) from None
    if not copied and not stale:
        return f"{alias.uri} already holds run {run.run_id}"
    return f"{alias.uri} now holds run {run.run_id} ({copied} copied, {len(stale)} removed)"


__all__ = ["move"]
