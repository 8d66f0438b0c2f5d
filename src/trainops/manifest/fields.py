"""What every section of a manifest and of `trainops.yaml` is built from: the strict frozen
`CoreModel`, durations, job names, repository paths bounded before the system sees them, and the
Hub repo id and S3 bucket rules the deliver and promote targets share.

Where a model checks something in code that pydantic's regex engine cannot say (no lookahead), the
JSON Schema gets its own ECMA-262 pattern from here (`SCHEMA_RELATIVE`, `SCHEMA_INSIDE`).
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    WithJsonSchema,
)

API_VERSION = "trainops/v1"
KIND = "TrainingJob"
PROVIDERS = ("local", "replicate", "huggingface", "ray", "sagemaker")
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


class CoreModel(BaseModel):
    # strict: a string is never a bool or a number, a bool never a number (`suspend: "no"`
    # must not un-suspend a job, `retries: true` must not mean one retry) -- what the JSON
    # Schema says, `validate` says (tests/security/test_schema_parity.py).
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, strict=True)


def integral(value: Any) -> Any:
    """A float with an integral value (`600.0`) is the integer it equals: the JSON Schema's
    `integer` accepts it (JSON has one number type), so the models do too. Anything else is
    left for strict validation to refuse (a bool, a string, 600.5)."""
    if type(value) is float and value.is_integer():
        return int(value)
    return value


# On an integer field: strict, except that an integral float is its integer (see integral).
INTEGRAL = BeforeValidator(integral)

NAME_MAX = 255  # bytes of one path component on Linux and macOS (and 255 UTF-16 units on NTFS)
PATH_MAX = 1024  # characters of a path from a file: bounded before any system call sees it


def bounded_path(path: str) -> str:
    """A path from a file the system can be asked about: no component longer than NAME_MAX
    bytes (an OSError 'File name too long' otherwise, for the whole repository)."""
    for part in path.replace("\\", "/").split("/"):
        if len(part.encode("utf-8", "surrogatepass")) > NAME_MAX:
            raise ValueError(
                f"{part[:40]!r}... is {len(part.encode('utf-8', 'surrogatepass'))} bytes long; "
                f"a file or folder name is at most {NAME_MAX}"
            )
    return path


# JSON Schema (ECMA-262) patterns for what the models check in code: the Rust regex engine
# pydantic validates `pattern` with has no lookahead, so these are given to the schema only.
SCHEMA_COMPONENTS = r"(?!.*[^/\\]{256})"  # no name over 255 characters
SCHEMA_RELATIVE = r"^(?![/\\])(?![A-Za-z]:)(?!(?:.*[/\\])?\.\.(?:[/\\]|$))" + SCHEMA_COMPONENTS


# Durations already read (text -> seconds): a repository writes the same few in every manifest.
# Bounded: forgotten when full.
_SECONDS: dict[str, int] = {}
_SECONDS_MAX = 1024


def parse_duration(value: Any) -> int:
    """`90m`, `2h`, `1h30m`, `45s` -> seconds. A bare integer is taken as seconds."""
    if type(value) is str:
        seconds = _SECONDS.get(value)
        if seconds is None:
            seconds = _parse_duration(value)
            if len(_SECONDS) >= _SECONDS_MAX:
                _SECONDS.clear()
            _SECONDS[value] = seconds
        return seconds
    return _parse_duration(value)


def _parse_duration(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError("a duration is text like 90m, 2h or 1h30m")
    value = integral(value)
    if isinstance(value, int):
        if value <= 0:
            raise ValueError("a duration must be positive")
        return value
    match = _DURATION.match(value) if isinstance(value, str) else None
    if not match or not value:
        raise ValueError(f"{value!r} is not a duration like 90m, 2h or 1h30m")
    hours, minutes, seconds = (int(g or 0) for g in match.groups())
    total = hours * 3600 + minutes * 60 + seconds
    if total <= 0:
        raise ValueError("a duration must be positive")
    return total


def format_duration(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    text = (f"{hours}h" if hours else "") + (f"{minutes}m" if minutes else "")
    text += f"{secs}s" if secs or not text else ""
    return text


Duration = Annotated[
    int,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str),
    WithJsonSchema(
        {
            "anyOf": [
                # at least one non-zero component: "", "0m" and "0h0s" are refused, as by the model
                {"type": "string", "pattern": r"^(?=.*[1-9])(\d+h)?(\d+m)?(\d+s)?$"},
                {"type": "integer", "minimum": 1, "description": "seconds"},
            ],
            "examples": ["90m", "2h", "1h30m"],
        }
    ),
]
JobName = Annotated[str, Field(pattern=DNS_LABEL, max_length=63)]


HUB_PART = r"[A-Za-z0-9_](?:[A-Za-z0-9_.-]{0,94}[A-Za-z0-9_])?"


def hub_repo_id(repo: str) -> str:
    # The Hub's own rules (huggingface_hub `validate_repo_id`): refused here, not on every apply.
    if "--" in repo or ".." in repo:
        raise ValueError(f"{repo!r}: a Hub repo id cannot contain '--' or '..'")
    if repo.endswith(".git"):
        raise ValueError(f"{repo!r}: a Hub repo id cannot end with '.git'")
    return repo


def s3_bucket(uri: str) -> str:
    # AWS bucket naming rules beyond the pattern's charset and length.
    bucket = uri.removeprefix("s3://").split("/", 1)[0]
    if re.fullmatch(r"\d+\.\d+\.\d+\.\d+", bucket):
        raise ValueError(f"{uri!r}: a bucket name is not an IP address")
    if ".." in bucket or ".-" in bucket or "-." in bucket:
        raise ValueError(f"{uri!r}: a bucket name has no '..', '.-' or '-.'")
    if bucket.startswith(("xn--", "sthree-")) or bucket.endswith(("-s3alias", "--ol-s3")):
        raise ValueError(f"{uri!r}: {bucket!r} uses a prefix or suffix AWS reserves")
    return uri


def exactly_one(*names: str) -> dict[str, Any]:
    """The schema's way to say what model_post_init checks: exactly one target is given."""
    return {
        "oneOf": [{"required": [name], "properties": {name: {"type": "object"}}} for name in names]
    }


def inside(rule: str, path: str) -> str:
    # Read from and written to the repository only: a pull request must not make the review
    # gate read (and quote) files elsewhere on the runner, or write there.
    parts = path.replace("\\", "/").split("/")
    if path.startswith(("/", "\\")) or ".." in parts or (parts[0][1:2] == ":"):
        raise ValueError(f"{path!r} leaves the repository: {rule}")
    return bounded_path(path)


# `inside` as the schema's pattern (a second character ':' is a drive letter's, as `inside` reads)
SCHEMA_INSIDE = r"^(?![/\\])(?!.:)(?!(?:.*[/\\])?\.\.(?:[/\\]|$))" + SCHEMA_COMPONENTS


# `${{ matrix.NAME }}` (DESIGN §21): the whole reference; anything that starts like one; and a
# start that is no whole reference (`${{ matrix }}`, `${{ matrix.a.b }}`), which validate refuses.
MATRIX_NAME = r"[A-Za-z_][A-Za-z0-9_-]*"
MATRIX_REF = re.compile(rf"\$\{{\{{\s*matrix\.({MATRIX_NAME})\s*\}}\}}")
MATRIX_START = re.compile(r"\$\{\{\s*matrix\b")
MATRIX_BAD = re.compile(rf"\$\{{\{{\s*matrix\b(?!\.{MATRIX_NAME}\s*\}}\}})")
# A string a set's member fills in: one `${{ matrix.NAME }}` or more, none malformed. Checked as
# the member's value once substituted, so the field's own pattern does not apply to it here.
SCHEMA_MATRIX_TEXT: dict[str, Any] = {
    "type": "string",
    "pattern": MATRIX_REF.pattern,
    "not": {"pattern": MATRIX_BAD.pattern},
    "description": "A value with ${{ matrix.NAME }}: each member's value is checked as the "
    "field once substituted (only in a manifest with spec.matrix).",
}
# What a manifest without spec.matrix may not hold where a set may use a reference.
SCHEMA_NO_MATRIX: dict[str, Any] = {"not": {"type": "string", "pattern": MATRIX_START.pattern}}
# ... and what a set's manifest may not hold anywhere (the schema says it in those fields).
SCHEMA_NO_BAD_MATRIX: dict[str, Any] = {"not": {"type": "string", "pattern": MATRIX_BAD.pattern}}


def or_matrix_reference(schema: dict[str, Any]) -> None:
    """`json_schema_extra` of a patterned field where a set may write `${{ matrix.NAME }}`
    (validate/sweep.py ALLOWED): the field's schema, or a string with matrix references."""
    own = dict(schema)
    schema.clear()
    schema["anyOf"] = [own, SCHEMA_MATRIX_TEXT]
    for key in ("title", "description"):
        if key in own:
            schema[key] = own.pop(key)
