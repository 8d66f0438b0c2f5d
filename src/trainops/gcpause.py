"""Pausing Python's cyclic garbage collector around bulk reads.

Reading thousands of manifests or state files allocates many small containers and no reference
cycles. Each collection the allocations trigger walks every container already alive, so with the
collector running, a pass over 5,000 jobs spent about a third of its reading time collecting
nothing. `paused()` turns it off for such a block and back on after it, as it was.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["paused"]


@contextmanager
def paused() -> Iterator[None]:
    """No cyclic collection inside the block; the collector's state is restored after it."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
