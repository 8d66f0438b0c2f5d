"""S3 as the delivery and the S3 alias promotion talk to it (boto3): one client with standard
retries and timeouts, one call wrapper that turns credential and connection trouble into a
`DeliveryError`, and what each error code means for the object asked about. Also the two
conventions both sides share: how an `s3://` uri splits, and the object metadata key holding the
sha256 of its content. Credentials, region and endpoint come from boto3's own environment
variables (`AWS_ACCESS_KEY_ID`, `AWS_PROFILE`, `AWS_REGION`, `AWS_ENDPOINT_URL[_S3]`, ...).
"""

from __future__ import annotations

from typing import Any

from trainops.delivery.base import DeliveryError

SHA256_META = "sha256"
# What S3 answers for a key (or bucket) that is not there.
MISSING = frozenset({"404", "NoSuchKey", "NotFound"})
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
UNKNOWN = frozenset({"403", "AccessDenied"})


def needs(permission: str, bucket: str, key: str) -> str:
    """The hint naming the permission the credentials lack on the object's prefix."""
    where = key.rsplit("/", 1)[0] + "/*" if "/" in key else "*"
    return (
        f"the credentials (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE) need "
        f"{permission} on arn:aws:s3:::{bucket}/{where} (docs/security.md has the policy)"
    )


def split_uri(uri: str) -> tuple[str, str]:
    """`s3://bucket/some/prefix/` -> ("bucket", "some/prefix")."""
    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    return bucket, prefix.strip("/")


def client() -> Any:
    """One boto3 S3 client (standard retries, bounded timeouts); a bad environment becomes a
    `DeliveryError`."""
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


def call(fn: Any, bucket: str, key: str) -> Any:
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


def error_code(exc: Any) -> str:
    """The error code of a botocore `ClientError` (for HEAD, the HTTP status)."""
    return str(exc.response.get("Error", {}).get("Code", ""))


def error(exc: Any, doing: str, bucket: str, key: str) -> DeliveryError:
    """What a refused S3 request `doing` (reading, writing, removing, copying to) the object
    means, with the permission it lacked when that is what S3 said."""
    code = error_code(exc)
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
        if code not in UNKNOWN:
            permission = None  # the credentials themselves are refused
        return DeliveryError(
            f"access denied {doing} s3://{bucket}/{key} ({code})",
            needs(permission, bucket, key) if permission else _CREDENTIALS_HINT,
        )
    message = exc.response.get("Error", {}).get("Message", "")
    return DeliveryError(
        f"{doing} s3://{bucket}/{key} failed: HTTP {status} {code}"
        + (f": {message}" if message else "")
    )
