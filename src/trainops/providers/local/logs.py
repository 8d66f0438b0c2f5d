"""A local run's log as trainops shows it (`logs`, `log_tail`, `log_after`): read from the end or
from an offset, at most `_runlog.TAIL_BYTES` at a time, with the variables the run was given
masked wherever it is printed or posted (DESIGN §13).
"""

from __future__ import annotations

from pathlib import Path

from trainops import scrub
from trainops.providers import _runlog
from trainops.providers import _supervisor as sv


def tail(record: Path, work: Path, lines: int) -> tuple[str, int]:
    """The last `lines` lines of the run's output, and the byte offset where they end."""
    watch_run_env(record)
    return _runlog.tail(work / sv.LOG, lines)


def after(record: Path, work: Path, offset: int, final: bool) -> tuple[str, int]:
    """What the log gained after byte `offset`, and the offset to ask from next."""
    watch_run_env(record)
    return _runlog.after(work / sv.LOG, offset, final)


def watch_run_env(record: Path) -> None:
    """Mask, wherever this run's log is printed or posted, the variables the run was given: the
    names its record keeps (its `spec.env` then, and what trainops masked then), not only the
    names today's manifests list, which may no longer name them (DESIGN §13)."""
    meta = sv.read_json(record / sv.META) or {}
    names = [*(meta.get("env") or ()), *(meta.get("scrub_env") or ())]
    scrub.watch(n for n in names if isinstance(n, str))
