"""Delivery to S3 (boto3): `<uri prefix>/<job>/<revision>/<file name>`.

Each object carries the sha256 of its content as user metadata (`x-amz-meta-sha256`); before
writing, a HEAD request compares it with the local file's, so only missing or different objects
are written, and the manifest (`trainops.json`) is written last: once it is there, the copy is
complete. The permissions needed are `s3:GetObject` and `s3:PutObject` on the prefix; without
`s3:ListBucket` S3 answers the HEAD of a missing key with 403, not 404 (AWS HeadObject API
reference), so a 403 there means "unknown": the object is written, then read back (HEAD) and its
sha256 compared. Credentials, region and endpoint come from boto3's own environment variables
(`AWS_ACCESS_KEY_ID`, `AWS_PROFILE`, `AWS_REGION`, `AWS_ENDPOINT_URL[_S3]`, ...).
"""

from __future__ import annotations

from typing import Any

from trainops.delivery import s3api
from trainops.delivery.base import Bundle, DeliveryError, File, Tally
from trainops.manifest import S3Target


def object_keys(target: S3Target, bundle: Bundle) -> dict[str, str]:
    """File name -> object key, in delivery order."""
    _, prefix = s3api.split_uri(target.uri)
    base = "/".join(p for p in (prefix, bundle.job, bundle.revision) if p)
    return {f.name: f"{base}/{f.name}" for f in bundle.files}


def deliver(target: S3Target, bundle: Bundle) -> Tally:
    bucket, _ = s3api.split_uri(target.uri)
    keys = object_keys(target, bundle)
    client = s3api.client()
    written: list[str] = []
    present: list[str] = []
    for f in bundle.files:
        key = keys[f.name]
        held = _holds(client, bucket, key, f)
        if held:
            present.append(f.name)
            continue
        _put(client, bucket, key, f)
        if held is None:  # HEAD was refused: read back what the PUT wrote
            back = _holds(client, bucket, key, f)
            if back is None:
                raise DeliveryError(
                    f"wrote s3://{bucket}/{key} but cannot read it back (403): without "
                    "s3:GetObject every delivery would write it again",
                    s3api.needs("s3:GetObject", bucket, key),
                )
            if not back:
                raise DeliveryError(
                    f"s3://{bucket}/{key} does not hold the sha256 just written to it",
                    "another writer changed it meanwhile; the next apply writes it again",
                )
        written.append(f.name)
    base = keys[bundle.manifest.name].rsplit("/", 1)[0]
    return Tally(tuple(written), tuple(present), f"s3://{bucket}/{base}/")


def fetch(uri: str, dest: Any, what: str) -> None:
    """Download the object at `uri` (a run's output in S3) to the local file `dest`."""
    from botocore.exceptions import ClientError

    bucket, _, key = uri.removeprefix("s3://").partition("/")  # the key exactly as recorded
    client = s3api.client()
    try:
        s3api.call(lambda: client.download_file(bucket, key, str(dest)), bucket, key)
    except ClientError as exc:
        if s3api.error_code(exc) in s3api.MISSING:
            raise DeliveryError(
                f"{what} is gone (s3://{bucket}/{key})",
                "the run's outputs were removed; rerun the job (bump spec.rerun)",
            ) from None
        raise s3api.error(exc, "reading", bucket, key) from None


def _holds(client: Any, bucket: str, key: str, f: File) -> bool | None:
    """Whether the object holds `f` (by sha256 and size); None when S3 will not say (403)."""
    from botocore.exceptions import ClientError

    try:
        head = s3api.call(lambda: client.head_object(Bucket=bucket, Key=key), bucket, key)
    except ClientError as exc:
        if s3api.error_code(exc) in s3api.MISSING:
            return False  # also what a missing bucket answers to HEAD; the PUT will say
        if s3api.error_code(exc) in s3api.UNKNOWN:
            return None  # a missing key without s3:ListBucket, or no s3:GetObject: the PUT says
        raise s3api.error(exc, "reading", bucket, key) from None
    meta = head.get("Metadata") or {}
    return bool(meta.get(s3api.SHA256_META) == f.sha256 and head.get("ContentLength") == f.size)


def _put(client: Any, bucket: str, key: str, f: File) -> None:
    from boto3.exceptions import S3UploadFailedError
    from botocore.exceptions import ClientError

    try:
        s3api.call(
            lambda: client.upload_file(
                str(f.path), bucket, key, ExtraArgs={"Metadata": {s3api.SHA256_META: f.sha256}}
            ),
            bucket,
            key,
        )
    except S3UploadFailedError as exc:
        cause = exc.__context__
        if isinstance(cause, ClientError):
            raise s3api.error(cause, "writing", bucket, key) from None
        raise DeliveryError(f"writing s3://{bucket}/{key} failed: {exc}") from None
    except ClientError as exc:
        raise s3api.error(exc, "writing", bucket, key) from None
