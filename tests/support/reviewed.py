"""What `apply --github` tells a commit about submissions no reviewed plan showed (DESIGN §20,
`github/unreviewed.py`), for tests whose subject is another comment on the same commit.

A commit pushed straight to main has no pull request in the GitHub emulator: it is unreviewed,
and under the default `policy.require_reviewed_plan: warn` the apply that submits its jobs posts
one comment listing them. `run_comments` checks that comment says exactly that, then hands back
the others.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from tests.emulators.github import GitHubEmulator
from trainops.github.unreviewed import UNREVIEWED_MARKER

__all__ = ["run_comments", "unreviewed_comments"]

PUSHED = "no reviewed plan: pushed directly"


def unreviewed_comments(emu: GitHubEmulator, sha: str) -> list[str]:
    """The bodies of the unreviewed-submissions comments on `sha`, oldest first."""
    return [
        str(c["body"])
        for c in emu.commit_comments(sha)
        if str(c["body"]).startswith(UNREVIEWED_MARKER) and c["user"] == emu.user
    ]


def run_comments(
    emu: GitHubEmulator, sha: str, *, pushed: Collection[Collection[str]] = ()
) -> list[dict[str, Any]]:
    """The commit comments on `sha` but the unreviewed-submissions ones, after checking there
    is one per entry of `pushed` (the jobs a pass submitted, in the order of the passes), each
    listing exactly those jobs as pushed directly, started under `warn`."""
    told = unreviewed_comments(emu, sha)
    assert len(told) == len(pushed), told
    for body, jobs in zip(told, pushed, strict=True):
        listed = sorted(line for line in body.splitlines() if line.startswith("- `"))
        assert listed == sorted(f"- `{job}`: {PUSHED}" for job in jobs), body
        assert "Started although no reviewed plan of this commit showed them" in body
    return [c for c in emu.commit_comments(sha) if not str(c["body"]).startswith(UNREVIEWED_MARKER)]
