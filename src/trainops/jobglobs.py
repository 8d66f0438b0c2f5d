"""The `jobs` globs of `trainops.yaml`: which files of a `Source` (repo.py) they select, the
links standing on their path, and the folders that hold every file they can select.

`**` matches any number of folders, `*` and `?` stay inside one name; a pattern's folders
before its first wildcard are the only part of the repository listed for it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

from trainops.errors import Problem
from trainops.repo import LINK_HINT, SKIP_DIRS, Source

LINK_MESSAGE = "symlink on the jobs path is not followed"


@dataclass
class Selection:
    """What the `jobs` globs select: manifest files, and the links standing on the jobs path
    (each an error: a link is never followed, so the job set is incomplete)."""

    files: list[str] = field(default_factory=list)
    links: list[str] = field(default_factory=list)

    def link_problems(self) -> list[Problem]:
        return [Problem(path, message=LINK_MESSAGE, hint=LINK_HINT) for path in self.links]


def select(source: Source, patterns: list[str]) -> Selection:
    """The manifest files matched by `trainops.yaml`'s `jobs` globs, sorted, each once, and every
    link on their path: one that a glob selects or that could be a folder holding a match."""
    found: set[str] = set()
    links: set[str] = set()
    for pattern in patterns:
        regex = _glob_regex(pattern)
        for entry in source.entries(_static_prefix(pattern)):
            if not SKIP_DIRS.isdisjoint(entry.path.split("/")):
                continue
            if entry.link:
                if regex.match(entry.path) or _may_hold(pattern, entry.path):
                    links.add(entry.path)
            elif regex.match(entry.path):
                found.add(entry.path)
    return Selection(sorted(found), sorted(links))


def selects(patterns: list[str], path: str) -> bool:
    """Whether one of the `jobs` globs selects `path`."""
    return any(_glob_regex(pattern).match(path) for pattern in patterns)


def pathspecs(patterns: list[str]) -> list[str]:
    """Folders (or files) that hold every path the globs can select; [] means the whole tree."""
    specs = set()
    for pattern in patterns:
        spec = pattern if not any(c in pattern for c in "*?[") else _static_prefix(pattern)
        if not spec:
            return []
        specs.add(spec)
    return sorted(specs)


def _may_hold(pattern: str, folder: str) -> bool:
    """Whether some path below `folder` could match `pattern` (so a link there could be a
    folder of manifests): decided on names alone, the same for a commit and a working tree."""
    pat, segs = pattern.split("/"), folder.split("/")

    def match(pi: int, si: int) -> bool:
        if si == len(segs):
            return pi < len(pat)
        if pi == len(pat):
            return False
        if pat[pi] == "**":
            return match(pi + 1, si) or match(pi, si + 1)
        return bool(_glob_regex(pat[pi]).match(segs[si])) and match(pi + 1, si + 1)

    return match(0, 0)


def _static_prefix(pattern: str) -> str:
    parts = pattern.split("/")
    fixed: list[str] = []
    for part in parts[:-1]:
        if any(c in part for c in "*?["):
            break
        fixed.append(part)
    return "/".join(fixed)


@lru_cache(maxsize=64)
def _glob_regex(pattern: str) -> re.Pattern[str]:
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
        elif pattern.startswith("**", i):
            out += ".*"
            i += 2
        elif pattern[i] == "*":
            out += "[^/]*"
            i += 1
        elif pattern[i] == "?":
            out += "[^/]"
            i += 1
        else:
            out += re.escape(pattern[i])
            i += 1
    return re.compile(out + r"\Z")
