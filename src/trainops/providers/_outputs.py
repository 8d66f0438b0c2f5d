"""How a run's output files get their names (DESIGN §2), for every provider whose command writes
files: each file keyed by its name without extension (`weights.bin` -> `weights`); on a clash the
shallowest file wins, then the first by path; hidden files (temporaries) are skipped."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import PurePosixPath


def named(paths: Iterable[str]) -> dict[str, str]:
    """Output name -> relative path (with `/`), for the relative paths of a run's files."""
    visible = [p for p in paths if p and not any(part.startswith(".") for part in p.split("/"))]
    found: dict[str, str] = {}
    for rel in sorted(visible, key=lambda p: (len(p.split("/")), p)):
        found.setdefault(PurePosixPath(rel).stem, rel)
    return found
