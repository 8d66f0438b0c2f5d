"""The StateStore protocol: a set of text files versioned with compare-and-swap (DESIGN §8, §9).

The store knows nothing of jobs or runs; `trainops.state.model` (the records), `layout` (where
they live), `schema` and `trust` (reading them as input) give the files their meaning.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class StateSnapshot:
    """The state files as read at one version. `version` is opaque (a commit sha for git);
    an empty string means the state has never been written. `unreadable` holds the files that
    could not be read as text (path -> why: not UTF-8, too large): the state is input (DESIGN
    §9), so one such file is that job's problem, not every job's."""

    version: str
    files: Mapping[str, str] = field(default_factory=dict)
    unreadable: Mapping[str, str] = field(default_factory=dict)


class StateStore(Protocol):
    def load(self) -> StateSnapshot:
        """Fetch (when there is a remote) and read every state file."""
        ...

    def read(self, version: str, paths: list[str]) -> dict[str, str]:
        """The text of each of `paths` at `version`, for files `load` does not read (the
        snapshots, DESIGN §9); a path missing there is left out."""
        ...

    def save(self, base: str, changes: Mapping[str, str | None], message: str) -> str:
        """Write `changes` (path -> new text, or None to delete) on top of version `base` as one
        atomic step and return the new version. Raise `StateConflict` when the state is no longer
        at `base` (another reconciler won the swap): the caller re-reads and re-plans."""
        ...


@runtime_checkable
class ReadsAhead(Protocol):
    """Optional, for a `StateStore`: start the slow part of the next `load` (fetching, reading
    files) in the background; `load` then waits for it and raises what it raised."""

    def read_ahead(self) -> None: ...
