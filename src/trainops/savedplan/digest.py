"""A saved plan's digests (DESIGN §20): the file's own (sha256 of the bytes as written, its
value zeroed: `digest_of`, `sign`), which says "edited by hand" and is no signature, and those
of what a plan is bound to (`prices_digest`, `lock_digest`)."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping


def prices_digest(prices: Mapping[str, float]) -> str:
    text = json.dumps({k: float(v) for k, v in prices.items()}, sort_keys=True)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def lock_digest(raw: bytes | None) -> str:
    return "" if raw is None else "sha256:" + hashlib.sha256(raw).hexdigest()


UNSIGNED = "sha256:" + "0" * 64
# The digest is the document's second field (after the fixed `format`): its first occurrence.
_DIGEST = re.compile(rb'"digest": *"(sha256:[0-9a-f]{64})"')


def digest_of(raw: bytes) -> str:
    """sha256 of `raw` with its digest's value as zeros (`UNSIGNED`)."""
    found = _DIGEST.search(raw, 0, 4096)
    if found is not None:
        raw = raw[: found.start(1)] + UNSIGNED.encode() + raw[found.end(1) :]
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def sign(text: str) -> str:
    """`text` (a saved plan's JSON) with its digest made to match: what anyone who reads this
    source can do to an edited file. The digest says "edited by hand", it is no signature:
    what keeps an edited plan from doing harm is `stale_lines` (it only narrows)."""
    raw = text.encode()
    found = _DIGEST.search(raw, 0, 4096)
    if found is None:
        return text
    return (raw[: found.start(1)] + digest_of(raw).encode() + raw[found.end(1) :]).decode()
