"""Whether a process still runs, named by pid and start time so a reused pid is not mistaken for
it. Used by the local provider's supervisor (its runs) and by apply (the owner of an intent), and
which processes belong to one local run, so trainops signals nothing else."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
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


def marked(pgid: int, marker: Mapping[str, str]) -> list[int]:
    """Live processes of group `pgid` whose environment carries every `marker` variable: the
    processes trainops itself started for one run (it set those variables), never a process a
    forged pgid in a file points at. Empty where /proc is not available."""
    if not PROC.is_dir():
        return []
    wanted = {f"{k}={v}".encode() for k, v in marker.items()}
    found = []
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        fields = proc_stat(int(entry.name))
        if fields is None or len(fields) < 3 or fields[2] != str(pgid):
            continue
        if fields[0] in ("Z", "X", "x"):
            continue
        try:
            environ = set((entry / "environ").read_bytes().split(b"\0"))
        except OSError:
            continue
        if wanted <= environ:
            found.append(int(entry.name))
    return found


def signal_marked(pgid: int, marker: Mapping[str, str], sig: int) -> bool:
    """Send `sig` to the processes of `marked(pgid, marker)`; the whole group at once when its
    leader is one of them (a session leader's group holds only its descendants). False when
    none was found."""
    members = marked(pgid, marker)
    if not members:
        return False
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if pgid in members:
            os.killpg(pgid, sig)
            return True
    for pid in members:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)
    return True


def stop_marked(pgid: int, marker: Mapping[str, str], grace: float) -> None:
    """SIGTERM the marked processes of group `pgid`, then SIGKILL what is left after `grace`
    seconds (at once when `grace` is 0). Nothing is signaled where nothing can be verified."""
    import signal

    if not PROC.is_dir():
        return
    if grace > 0:
        if not signal_marked(pgid, marker, signal.SIGTERM):
            return
        if _wait_unmarked(pgid, marker, grace):
            return
    signal_marked(pgid, marker, signal.SIGKILL)
    _wait_unmarked(pgid, marker, 1.0)


def _wait_unmarked(pgid: int, marker: Mapping[str, str], seconds: float) -> bool:
    import time

    deadline = time.monotonic() + seconds
    while marked(pgid, marker):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def running_with(*needles: str) -> list[int]:
    """Live processes whose command line has every one of `needles` (an argument equal to it,
    or containing it). Empty where /proc is not available."""
    if not PROC.is_dir():
        return []
    found = []
    wanted = [n.encode() for n in needles]
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if all(any(n in a for a in argv) for n in wanted):
            found.append(int(entry.name))
    return found
