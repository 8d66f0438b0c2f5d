"""The supervisor of one local run: starts its command detached and records its fate in status.json.

`main(RUN_DIR)` (`python -m trainops.providers._supervisor RUN_DIR`) forks once: the parent records
the supervisor as `pending` and exits at once, so trainops never keeps a child to reap; the child
leads a new session (its pid is the run's process group), starts the command, and writes
`running`, then `succeeded` or `failed`. Standard library only: a run costs one bare interpreter.

Every read-modify-write of status.json holds an flock on the run's `.lock`: a `canceled` or lost
verdict written by trainops is final, and a supervisor that finds one never starts the command.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import json
import os
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from trainops import scrub
from trainops.processes import PROC as _PROC
from trainops.processes import identity, proc_stat

STATUS = "status.json"
META = "meta.json"
INPUT = "input.json"
LOG = "log.txt"
OUTPUTS = "outputs"
_LOCK = ".lock"
TERMINAL = frozenset({"succeeded", "failed", "canceled"})


# ---- status.json, shared with the provider --------------------------------------------------


@contextlib.contextmanager
def status_lock(run_dir: Path) -> Iterator[None]:
    fd = os.open(run_dir / _LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the only descriptor releases the lock


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, NotADirectoryError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_json(path: Path, data: Any) -> None:
    """Write-then-rename, so a reader sees the old file or the new one, never half of one."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_status(run_dir: Path) -> dict[str, Any] | None:
    return read_json(run_dir / STATUS)


def write_status(run_dir: Path, status: dict[str, Any]) -> None:
    write_json(run_dir / STATUS, status)


# ---- processes ------------------------------------------------------------------------------


def group_alive(pgid: int, since: str = "") -> bool:
    """Whether any live process of group `pgid` remains (started no earlier than `since`, so a
    reused group id is not mistaken for ours)."""
    if not _PROC.is_dir():
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    floor = int(since) if since.isdigit() else 0
    for entry in _PROC.iterdir():
        if not entry.name.isdigit():
            continue
        fields = proc_stat(int(entry.name))
        if (
            fields is not None
            and len(fields) > 19
            and fields[2] == str(pgid)
            and fields[0] not in ("Z", "X", "x")
            and int(fields[19]) >= floor
        ):
            return True
    return False


# ---- the supervisor -------------------------------------------------------------------------


def main(argv: list[str]) -> int:
    run_dir = Path(argv[1]).resolve()
    child = os.fork()
    if child:
        # The launcher: name the supervisor so trainops can tell it alive or gone, then leave.
        with status_lock(run_dir):
            if read_status(run_dir) is None:
                write_status(
                    run_dir,
                    {
                        "status": "pending",
                        "supervisor_pid": child,
                        "supervisor_start": identity(child),
                        "pgid": child,
                    },
                )
        return 0
    os.setsid()
    code = 1
    try:
        code = _supervise(run_dir)
    except BaseException:
        # No final status: trainops will report the run as vanished. Leave the why in the log.
        traceback.print_exc(file=sys.stdout)
    finally:
        sys.stdout.flush()
        os._exit(code)


def _supervise(run_dir: Path) -> int:
    meta = read_json(run_dir / META) or {}
    argv: list[str] = meta.get("argv") or []
    cwd = Path(meta.get("cwd") or run_dir)
    # trainops' own credentials (the reporting token, provider tokens) are not the training's:
    # a script that prints its environment must not leak them into logs and comments.
    withheld = {"GITHUB_TOKEN", "GH_TOKEN", "REPLICATE_API_TOKEN", *meta.get("withhold_env", [])}
    env = {k: v for k, v in os.environ.items() if k not in withheld}
    env.update(
        TRAINOPS_INPUT=str(run_dir / INPUT),
        TRAINOPS_OUTPUT_DIR=str(run_dir / OUTPUTS),
        TRAINOPS_RUN_ID=run_dir.name,
    )
    env.setdefault("PYTHONUNBUFFERED", "1")  # so `trainops logs` follows a live run
    # Cancel signals the whole group: survive it to see the command end. A handler, unlike
    # SIG_IGN, is reset by exec, so the command itself still gets the default behaviour.
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda *_: None)

    with status_lock(run_dir):
        status = read_status(run_dir) or {}
        if status.get("status", "pending") != "pending":
            return 0  # canceled, or declared lost, before it started: never start late
        base = {
            "status": "pending",
            "supervisor_pid": os.getpid(),
            "supervisor_start": identity(os.getpid()),
            "pgid": os.getpgrp(),
        }
        if not argv:
            return _refuse(run_dir, base, "meta.json has no command: the run was not set up")
        if not cwd.is_dir():
            return _refuse(run_dir, base, f"workdir {meta.get('workdir') or cwd} does not exist")
        try:
            proc = subprocess.Popen(
                argv,
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=None,
                stderr=subprocess.PIPE,
                close_fds=True,
                preexec_fn=_die_with_parent(),
            )
        except FileNotFoundError:
            return _refuse(
                run_dir,
                base,
                f"command not found: {argv[0]!r} (not on PATH, "
                f"nor a file relative to workdir {meta.get('workdir') or cwd})",
            )
        except OSError as exc:
            return _refuse(run_dir, base, f"cannot start {argv[0]!r}: {exc.strerror or exc}")
        write_status(
            run_dir, {**base, "status": "running", "pid": proc.pid, "started_at": time.time()}
        )

    assert proc.stderr is not None
    scrub.watch(meta.get("scrub_env") or [])  # its last line becomes the run's recorded error
    last: list[str] = []
    reader = threading.Thread(target=_copy_stderr, args=(proc.stderr, last), daemon=True)
    reader.start()
    code = proc.wait()
    reader.join(timeout=2)  # a grandchild may hold stderr open: do not wait for it
    with status_lock(run_dir):
        status = read_status(run_dir) or {}
        if status.get("status") in TERMINAL:
            return 0  # canceled while running: that verdict stands
        final: dict[str, Any] = {**status, "completed_at": time.time(), "exit_code": code}
        if code == 0:
            final["status"] = "succeeded"
        else:
            reason = (
                f"exit code {code}"
                if code > 0
                else f"killed by signal {signal.Signals(-code).name}"
            )
            final.update(
                status="failed", error=f"{reason}: {last[0]}" if last else reason, retryable=True
            )
        write_status(run_dir, final)
    return 0


def _refuse(run_dir: Path, base: dict[str, Any], error: str) -> int:
    """The command could not start: a failure no resubmission cures."""
    now = time.time()
    print(f"trainops: {error}", flush=True)
    write_status(
        run_dir,
        {
            **base,
            "status": "failed",
            "started_at": now,
            "completed_at": now,
            "error": error,
            "retryable": False,
        },
    )
    return 0


def _copy_stderr(stream: IO[bytes], last: list[str]) -> None:
    """Copy the command's stderr into the log, keeping its last non-empty line for the error."""
    out = sys.stdout.buffer
    for line in iter(stream.readline, b""):
        out.write(line)
        out.flush()
        text = line.decode("utf-8", "replace").strip()
        if text:
            last[:] = [scrub.scrub(text)[:500]]


def _die_with_parent() -> Callable[[], None] | None:
    """Linux: the command is killed if the supervisor dies, so no training runs unrecorded."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None
    pr_set_pdeathsig = 1
    supervisor = os.getpid()

    def arm() -> None:
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL)
        if os.getppid() != supervisor:  # it died before the line above took effect
            os._exit(1)

    return arm


if __name__ == "__main__":
    sys.exit(main(sys.argv))
