"""How much of a long sweep the default suite runs.

A kill-point sweep repeats whole CLI runs against a provider, one test per point. The default
suite runs a fixed selection of each sweep (the points where a crash loses the most: a recorded
intent with no submit, a submit whose answer was never saved, a commit never pushed) so it stays
inside its time budget; `TRAINOPS_SWEEP=full` runs every point, as `TRAINOPS_TRIALS` scales the
random-kill and fault passes.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

FULL = os.environ.get("TRAINOPS_SWEEP", "") == "full"


def points(every: Sequence[str], default: Sequence[str]) -> list[str]:
    """`every` under TRAINOPS_SWEEP=full, else the points of `default`, in `every`'s order."""
    unknown = sorted(set(default) - set(every))
    if unknown:
        raise ValueError(f"not points of this sweep: {unknown}")
    return list(every) if FULL else [p for p in every if p in default]
