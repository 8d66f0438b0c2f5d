"""A job's history: every run it ever had, from the tip and the git history of its file.

Retention (DESIGN §9) drops old runs from the tip, and the file it writes names in `archive` the
state commit whose copy of the file still holds them; that copy's own `archive` leads further
back. So the history of a job is a chain of its own file's versions, one hop per compaction
(every `KEEP_TERMINAL`-odd runs), never a walk over the branch's commits: a 20,000-commit branch
costs a job with 40 runs a dozen reads. Each copy is validated like the tip (the branch is
input); a hop that fails, loops or runs past `MAX_HOPS` ends the walk with a `problem`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from trainops.state.layout import legacy_state_path, state_path
from trainops.state.model import Run
from trainops.state.schema import StateFileError, read_state_file

__all__ = ["History", "job_history"]

MAX_HOPS = 100_000


class _Readable(Protocol):
    def read(self, version: str, paths: list[str]) -> dict[str, str]: ...

    def tip(self) -> str: ...


@dataclass
class History:
    job: str
    runs: list[Run] = field(default_factory=list)  # oldest first, each (revision, attempt) once
    hops: int = 0  # versions of the job's file read
    problem: str = ""  # why the walk stopped before the chain's end


def job_history(store: _Readable, job: str, version: str | None = None) -> History:
    """Walk `job`'s file from `version` (default: the branch tip) back along `archive`."""
    version = store.tip() if version is None else version
    result = History(job)
    seen: dict[tuple[str, int], Run] = {}
    visited: set[str] = set()
    while version:
        if version in visited or result.hops >= MAX_HOPS:
            result.problem = f"the archive chain of {job} loops at {version[:12]}"
            break
        visited.add(version)
        result.hops += 1
        texts = store.read(version, [state_path(job), legacy_state_path(job)])
        text = texts.get(state_path(job), texts.get(legacy_state_path(job)))
        if text is None:
            if result.hops > 1:
                result.problem = f"state commit {version[:12]} has no record of {job}"
            break
        try:
            state = read_state_file(text)
            if state.job != job:
                raise StateFileError(f"it claims job {state.job!r}")
        except StateFileError as exc:
            result.problem = f"{state_path(job)} at {version[:12]}: {exc}"
            break
        for run in state.runs:  # a newer copy of a run wins over an older one
            seen.setdefault((run.revision, run.attempt), run)
        version = state.archive
    result.runs = sorted(seen.values(), key=lambda r: (r.created_at, r.attempt))
    return result
