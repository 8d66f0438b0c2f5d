"""A Ray run's outputs in S3 (`providers.ray.output_uri` = s3://...): the objects under its own
`<run-id>/outputs/` prefix, named as for local (DESIGN §2), and its `metrics.json`.

Object names come from the job (hostile input): a key with `..` or an empty part is skipped, and
`metrics.json` is read only when small (`metrics.MAX_BYTES`). boto3 takes its credentials,
region and endpoint from its own environment variables (`AWS_ENDPOINT_URL`, ...).
"""

from __future__ import annotations

import json
from typing import Any

from trainops import metrics
from trainops.errors import ProviderError
from trainops.providers._outputs import named

MAX_KEYS = 10_000  # a run that wrote more files than this has its first ones named


def split(uri: str) -> tuple[str, str]:
    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    return bucket, prefix


def read(prefix_uri: str) -> tuple[dict[str, str], dict[str, float]]:
    """(outputs, metrics) of the run whose outputs are under `prefix_uri` (ends with `/`)."""
    bucket, prefix = split(prefix_uri)
    client = _client()
    sizes: dict[str, int] = {}
    try:
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        for page in pages:
            for item in page.get("Contents") or []:
                key = item.get("Key")
                if isinstance(key, str) and key.startswith(prefix) and len(sizes) < MAX_KEYS:
                    sizes[key[len(prefix) :]] = int(item.get("Size") or 0)
    except Exception as exc:  # botocore raises many unrelated types
        raise ProviderError(
            f"reading the outputs under {prefix_uri} failed ({type(exc).__name__})",
            "trainops reads Ray outputs with boto3: AWS_* credentials and AWS_ENDPOINT_URL "
            "come from the environment",
        ) from None
    usable = [rel for rel in sizes if all(p not in ("", ".", "..") for p in rel.split("/"))]
    outputs = {name: f"s3://{bucket}/{prefix}{rel}" for name, rel in named(usable).items()}
    found: dict[str, float] = {}
    if metrics.FILE in sizes and sizes[metrics.FILE] <= metrics.MAX_BYTES:
        try:
            body = client.get_object(Bucket=bucket, Key=f"{prefix}{metrics.FILE}")["Body"].read(
                metrics.MAX_BYTES + 1
            )
            found = metrics.clean(json.loads(body.decode("utf-8"), parse_constant=_no_constant))
        except Exception:
            found = {}  # metrics are optional: a bad file leaves them out, never stops a pass
    return outputs, found


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON can carry")


def _client() -> Any:
    import boto3
    from botocore.config import Config

    config = Config(
        retries={"mode": "standard", "max_attempts": 4}, connect_timeout=10, read_timeout=60
    )
    try:
        return boto3.session.Session().client("s3", config=config)
    except Exception as exc:
        raise ProviderError(f"cannot set up an S3 client: {type(exc).__name__}") from None
