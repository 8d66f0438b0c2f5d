"""What every trainops comment on GitHub shares (DESIGN §11): finding our own comments again
(`by_us`: a marker first, written with trainops's identity, the sticky-comment author check) and
fitting text to GitHub's limits (`fit`, `one_line`)."""

from __future__ import annotations

from typing import Any

from trainops import escape
from trainops.github.client import GitHubClient

__all__ = ["PLAN_MARKER", "by_us", "fit", "one_line"]

# The first line of the sticky plan comment (`plan_report`), how it and its reviewed-plan block
# (`reviewed`) are found again.
PLAN_MARKER = "<!-- trainops:plan -->"


def by_us(gh: GitHubClient, comments: list[Any], marker: str) -> list[dict[str, Any]]:
    """The comments that start with `marker` and were written with trainops's identity
    (`GitHubClient.wrote`): anyone can write a marker, and someone else's comment is neither
    edited nor taken as ours."""
    return [
        c
        for c in comments
        if gh.wrote(c)
        and isinstance(c.get("id"), int)
        and str(c.get("body") or "").startswith(marker)
    ]


def fit(text: str, limit: int) -> str:
    """`text` cut at a line end to at most `limit` characters, saying so."""
    if len(text) <= limit:
        return text
    note = "\n\n_… truncated to fit GitHub's size limit; run `trainops plan` for all of it._\n"
    cut = text[: max(0, limit - len(note))].rsplit("\n", 1)[0]
    return cut + note if len(cut) + len(note) <= limit else text[:limit]


def one_line(text: str, limit: int = 500) -> str:
    """Plain text on one line (a status description), control characters shown escaped."""
    line = escape.line(" ".join(text.split()))
    return line if len(line) <= limit else line[: limit - 1] + "…"
