"""`spec.data` and `spec.digests` (DESIGN §18): the repository paths a spec hands to its run, and
which inputs a sha256 can pin (`PINNABLE`: objects behind a URL)."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, Field, WithJsonSchema

from trainops.manifest.fields import PATH_MAX, SCHEMA_RELATIVE, bounded_path


def _data_path(path: str) -> str:
    """A repository-relative path: never absolute, never `..`, never a URL."""
    clean = path.replace("\\", "/")
    parts = [p for p in clean.strip("/").split("/") if p not in ("", ".")]
    if clean.startswith("/") or re.match(r"^[A-Za-z]:", clean) or "://" in clean:
        raise ValueError(f"{path!r} must be a path relative to the repository root")
    if not parts or ".." in parts:
        raise ValueError(f"{path!r} must name a file or folder inside the repository")
    return "/".join(parts) + ("/" if clean.endswith("/") else "")


# What `spec.digests` can pin: an object behind a URL that can be hashed (a Hub input is pinned
# by the revision in its URL instead).
PINNABLE = ("http://", "https://", "s3://")

DataPath = Annotated[
    str,
    Field(min_length=1, max_length=PATH_MAX),
    AfterValidator(_data_path),
    AfterValidator(bounded_path),
    WithJsonSchema(
        {
            "type": "string",
            "minLength": 1,
            "maxLength": PATH_MAX,
            "pattern": SCHEMA_RELATIVE + r"(?!.*://)(?=.*[^/\\.])",
        }
    ),
]
