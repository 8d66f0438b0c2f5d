"""Where a YAML node stands, and how a refusal says so.

Owns the packed position (`pack`: line and column in one int), the path a position is kept
under (`Path_`), the refusal raised while a file is read (`Refused`, caught where the file is
loaded), a `Problem` at one of libyaml's marks (`at`), and the redaction of token-looking
values (`TOKEN`, `redact`): a refusal quotes keys, aliases and tags, never a credential.
"""

from __future__ import annotations

import re
from typing import Any

from trainops.errors import Problem

Path_ = tuple[str | int, ...]

# A position is kept as one int, line << COL_BITS | column: no tuple per key for the cyclic
# collector to track (a file is at most MAX_FILE_BYTES, so a column fits in the low bits).
COL_BITS = 21
COL_MASK = (1 << COL_BITS) - 1

# Values that look like credentials (DESIGN §13). Matched anywhere in a string.
TOKEN = re.compile(
    r"\b(?:r8_[A-Za-z0-9]{20,}|hf_[A-Za-z0-9]{20,}|AKIA[0-9A-Z]{16}|ASIA[0-9A-Z]{16}"
    r"|ghp_[A-Za-z0-9]{30,}|gho_[A-Za-z0-9]{30,}|ghs_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{30,})"
)


def has_token(text: str) -> bool:
    """Whether `text` holds a token-looking value (TOKEN). Every pattern but the AWS keys has an
    underscore: a substring test first spares the regex nearly every value of a manifest (it is
    asked of every distinct value read)."""
    return ("_" in text or "AKIA" in text or "ASIA" in text) and TOKEN.search(text) is not None


def pack(mark: Any) -> int:
    line: int = mark.line + 1
    col: int = mark.column + 1
    return line << COL_BITS | col


class Refused(Exception):
    """What trainops refuses in a file (a tag, a duplicate key, a limit), at libyaml's mark."""

    def __init__(self, mark: Any, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.mark, self.message, self.hint = mark, message, hint


def redact(message: str) -> str:
    # Refusals quote keys, aliases and tags; a token used as one must still never be printed.
    return TOKEN.sub("<redacted token>", message)


def at(file: str, mark: Any, message: str, hint: str = "") -> Problem:
    if mark is None:
        return Problem(file, message=message, hint=hint)
    return Problem(file, mark.line + 1, mark.column + 1, message, hint)
