"""Whether a process still runs, named by pid and start time so a reused pid is not mistaken for
it. Used by the local provider's supervisor (its runs) and by apply (the owner of an intent)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

PROC = Path("/proc")


def proc_stat(pid: int) -> list[str] | None:
    """Fields of /proc/PID/stat from the state on (index 0 = state, 2 = pgrp, 19 = start time)."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    return text[text.rfind(")") + 2 :].split()


def identity(pid: int) -> str:
    """The process's start time (clock ticks since boot) on Linux: with its pid it names one
    process, not a later one that reuses the pid. Empty where /proc is not available."""
    fields = proc_stat(pid)
    return fields[19] if fields is not None and len(fields) > 19 else ""


def is_alive(pid: int, ident: str = "") -> bool:
    """Whether the process `pid` (started at `ident`, when known) still runs. Zombies are dead;
    one that is our own child is reaped on the way."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)
    if PROC.is_dir():
        fields = proc_stat(pid)
        if fields is None or fields[0] in ("Z", "X", "x"):
            return False
        return not ident or len(fields) <= 19 or fields[19] == ident
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
