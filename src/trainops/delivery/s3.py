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

from trainops.delivery.base import Bundle, DeliveryError, File, Tally
from trainops.manifest import S3Target

SHA256_META = "sha256"
_MISSING = frozenset({"404", "NoSuchKey", "NotFound"})
_DENIED = frozenset(
    {
        "403",
        "AccessDenied",
        "AllAccessDisabled",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "InvalidToken",
    }
)
_CREDENTIALS_HINT = (
    "credentials come from the environment: AWS_ACCESS_KEY_ID and "
    "AWS_SECRET_ACCESS_KEY (or AWS_PROFILE); they need s3:GetObject and "
    "s3:PutObject on the prefix"
)
# What HEAD answers for a missing key to a caller without s3:ListBucket (no body on HEAD: the code
# is the status).
_UNKNOWN = frozenset({"403", "AccessDenied"})


def _needs(permission: str, bucket: str, key: str) -> str:
    where = key.rsplit("/", 1)[0] + "/*" if "/" in key else "*"
    return (
        f"the credentials (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE) need "
        f"{permission} on arn:aws:s3:::{bucket}/{where} (docs/security.md has the policy)"
    )


def split_uri(uri: str) -> tuple[str, str]:
    """`s3://bucket/some/prefix/` -> ("bucket", "some/prefix")."""
    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    return bucket, prefix.strip("/")


def object_keys(target: S3Target, bundle: Bundle) -> dict[str, str]:
    """File name -> object key, in delivery order."""
    _, prefix = split_uri(target.uri)
    base = "/".join(p for p in (prefix, bundle.job, bundle.revision) if p)
    return {f.name: f"{base}/{f.name}" for f in bundle.files}


def deliver(target: S3Target, bundle: Bundle) -> Tally:
    bucket, _ = split_uri(target.uri)
    keys = object_keys(target, bundle)
    client = _client()
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
                    _needs("s3:GetObject", bucket, key),
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
    client = _client()
    try:
        _call(lambda: client.download_file(bucket, key, str(dest)), bucket, key)
    except ClientError as exc:
        if _code(exc) in _MISSING:
            raise DeliveryError(
                f"{what} is gone (s3://{bucket}/{key})",
                "the run's outputs were removed; rerun the job (bump spec.rerun)",
            ) from None
        raise _error(exc, "reading", bucket, key) from None


def _client() -> Any:
    import boto3
    from botocore.config import Config

    config = Config(
        retries={"mode": "standard", "max_attempts": 4}, connect_timeout=10, read_timeout=60
    )
    try:
        return boto3.session.Session().client("s3", config=config)
    except Exception as exc:  # botocore raises many unrelated types for a bad environment
        raise DeliveryError(
            f"cannot set up an S3 client: {type(exc).__name__}: {exc}", _CREDENTIALS_HINT
        ) from None


def _holds(client: Any, bucket: str, key: str, f: File) -> bool | None:
    """Whether the object holds `f` (by sha256 and size); None when S3 will not say (403)."""
    from botocore.exceptions import ClientError

    try:
        head = _call(lambda: client.head_object(Bucket=bucket, Key=key), bucket, key)
    except ClientError as exc:
        if _code(exc) in _MISSING:
            return False  # also what a missing bucket answers to HEAD; the PUT will say
        if _code(exc) in _UNKNOWN:
            return None  # a missing key without s3:ListBucket, or no s3:GetObject: the PUT says
        raise _error(exc, "reading", bucket, key) from None
    meta = head.get("Metadata") or {}
    return bool(meta.get(SHA256_META) == f.sha256 and head.get("ContentLength") == f.size)


def _put(client: Any, bucket: str, key: str, f: File) -> None:
    from boto3.exceptions import S3UploadFailedError
    from botocore.exceptions import ClientError

    try:
        _call(
            lambda: client.upload_file(
                str(f.path), bucket, key, ExtraArgs={"Metadata": {SHA256_META: f.sha256}}
            ),
            bucket,
            key,
        )
    except S3UploadFailedError as exc:
        cause = exc.__context__
        if isinstance(cause, ClientError):
            raise _error(cause, "writing", bucket, key) from None
        raise DeliveryError(f"writing s3://{bucket}/{key} failed: {exc}") from None
    except ClientError as exc:
        raise _error(exc, "writing", bucket, key) from None


def _call(fn: Any, bucket: str, key: str) -> Any:
    """Run one boto3 call, turning credential and connection trouble into a `DeliveryError`."""
    from botocore.exceptions import BotoCoreError, NoCredentialsError, PartialCredentialsError

    try:
        return fn()
    except (NoCredentialsError, PartialCredentialsError):
        raise DeliveryError(
            f"no AWS credentials to write s3://{bucket}/{key}", _CREDENTIALS_HINT
        ) from None
    except BotoCoreError as exc:  # endpoint unreachable, timeouts after retries, ...
        raise DeliveryError(f"S3 request for s3://{bucket}/{key} failed: {exc}") from None


def _code(exc: Any) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _error(exc: Any, doing: str, bucket: str, key: str) -> DeliveryError:
    code = _code(exc)
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", "?")
    if code == "NoSuchBucket":
        return DeliveryError(
            f"S3 bucket {bucket!r} does not exist", "create it, or fix the s3 uri in spec.deliver"
        )
    if code in _DENIED:
        permission = {
            "reading": "s3:GetObject",
            "writing": "s3:PutObject",
            "removing": "s3:DeleteObject",
            "copying to": "s3:PutObject (and s3:GetObject on the source)",
        }.get(doing)
        if code not in _UNKNOWN:
            permission = None  # the credentials themselves are refused
        return DeliveryError(
            f"access denied {doing} s3://{bucket}/{key} ({code})",
            _needs(permission, bucket, key) if permission else _CREDENTIALS_HINT,
        )
    message = exc.response.get("Error", {}).get("Message", "")
    return DeliveryError(
        f"{doing} s3://{bucket}/{key} failed: HTTP {status} {code}"
        + (f": {message}" if message else "")
    )
