"""How trainops runs Python's cyclic garbage collector.

A command builds large trees of small objects that live until it exits (every manifest, every
run record of the state branch) and makes almost no reference cycles. Under the default
thresholds (a young collection every 700 allocations, a full one every 100 of those once the
heap has grown by a quarter) a pass walks its whole heap again and again as it grows, to find
nothing: a 5,000-job `plan` made 4 full collections, 0.34 s, that freed no object, and a
30,000-job one 10, 2.3 s (issue 13). `tune()`, called once by the CLI, collects as mypy does:
young objects every 200,000 allocations, a full collection after 30 times 30 of those. Cycles
are still collected, so `trainops serve` stays bounded.

The YAML loader also reads each manifest with the collector paused (`paused()`): loading a
file allocates many containers and no cycles, and a collection mid-file would walk them.
"""

from __future__ import annotations

import gc
from contextlib import AbstractContextManager

__all__ = ["paused", "tune"]

# (young, middle, full): see the module docstring
THRESHOLDS = (200_000, 30, 30)


def tune() -> None:
    """The collector's thresholds for a trainops process (see the module docstring)."""
    gc.set_threshold(*THRESHOLDS)


class _Paused:
    """The context manager `paused` returns: a class, not a generator, as it is entered once
    per manifest file read (10,000 times in a large repository)."""

    __slots__ = ("_resume",)

    def __enter__(self) -> None:
        self._resume = gc.isenabled()
        gc.disable()

    def __exit__(self, *exc: object) -> None:
        if self._resume:
            gc.enable()


def paused() -> AbstractContextManager[None]:
    """No cyclic collection inside the block; the collector's state is restored after it."""
    return _Paused()
