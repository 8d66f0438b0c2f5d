"""The supervisor of one local run: starts its command detached and records its fate in status.json.

`main(RECORD)` (`python -m trainops.providers._supervisor RECORD`, the run's record folder in the
clone's git directory, which `git clean` never reaches) forks once: the parent records
the supervisor as `pending` and exits at once, so trainops never keeps a child to reap; the child
leads a new session (its pid is the run's process group), starts the command, and writes
`running`, then `succeeded` or `failed`. Its environment is the job's (trainops.jobenv), and its
stdout is the run's log.txt, both set up by trainops. It imports only the standard library and
two small trainops modules (`processes`, `scrub`), never pydantic, yaml or a client library: a run
costs one bare interpreter.

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
from trainops.processes import identity

STATUS = "status.json"
META = "meta.json"
INPUT = "input.json"
LOG = "log.txt"
OUTPUTS = "outputs"
_LOCK = ".lock"
TERMINAL = frozenset({"succeeded", "failed", "canceled"})
LOG_CAP = 64 << 20  # bytes of log.txt written as they come
LOG_KEEP = 1 << 20  # bytes of the end of a longer output kept and written when the run ends


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
    # The supervisor was started with the job's environment, built by trainops.jobenv (a
    # minimal base, the TRAINOPS_* variables and the names in spec.env): the command gets it
    # as it is, and nothing of trainops' own environment.
    env = dict(os.environ)
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
                stdout=subprocess.PIPE,
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

    assert proc.stdout is not None and proc.stderr is not None
    log = CappedLog(sys.stdout.buffer)
    scrub.watch(meta.get("scrub_env") or [])  # its last line becomes the run's recorded error
    last: list[str] = []
    reader = threading.Thread(target=_pump, args=(proc.stdout, proc.stderr, log, last))
    reader.daemon = True
    reader.start()
    code = proc.wait()
    reader.join(timeout=2)  # a grandchild may hold a pipe open: do not wait for it
    log.close()
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


class CappedLog:
    """log.txt, bounded (DESIGN §13): the first `LOG_CAP` bytes are written as they come; after
    that a marker, and only the last `LOG_KEEP` bytes are kept in memory and appended when the
    command ends, so the log holds the start and the end of the run, never more than ~65 MiB."""

    def __init__(self, out: IO[bytes], cap: int = LOG_CAP, keep: int = LOG_KEEP) -> None:
        self._out, self._lock = out, threading.Lock()
        self._cap, self._keep = cap, keep
        self._written = 0
        self._dropped = 0
        self._tail = bytearray()

    def write(self, data: bytes) -> None:
        with self._lock:
            room = max(0, self._cap - self._written)
            if room:
                self._out.write(data[:room])
                self._out.flush()
                self._written += min(room, len(data))
                data = data[room:]
                if data:
                    self._out.write(_marker(self._cap).encode())
                    self._out.flush()
            if data:
                self._dropped += len(data)
                self._tail += data
                del self._tail[: max(0, len(self._tail) - self._keep)]

    def close(self) -> None:
        with self._lock:
            if self._dropped:
                skipped = self._dropped - len(self._tail)
                self._out.write(
                    f"\ntrainops: {skipped} bytes skipped; the last {len(self._tail)} bytes "
                    "follow\n".encode()
                )
                self._out.write(bytes(self._tail))
                self._out.flush()
                self._dropped, self._tail = 0, bytearray()


def _marker(cap: int) -> str:
    return (
        f"\ntrainops: log.txt reached {cap} bytes; the rest of the output is dropped "
        "except its last part, written when the run ends\n"
    )


def _pump(out: IO[bytes], err: IO[bytes], log: CappedLog, last: list[str]) -> None:
    """Copy the command's stdout and stderr into the log in chunks (a line-less output is no
    problem), in the order they arrive as far as one reader can tell; keep stderr's last
    non-empty line for the run's error."""
    import selectors

    pending = b""
    with selectors.DefaultSelector() as sel:
        sel.register(out, selectors.EVENT_READ, False)
        sel.register(err, selectors.EVENT_READ, True)
        while sel.get_map():
            # stdout first when both are ready: a program writes its progress, then the error
            for key, _ in sorted(sel.select(), key=lambda ready: ready[0].data):
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    sel.unregister(key.fileobj)
                    continue
                log.write(chunk)
                if key.data:
                    lines = (pending + chunk).split(b"\n")
                    pending = lines.pop()[-4096:]
                    _keep_last(lines, last)
    _keep_last([pending], last)


def _keep_last(lines: list[bytes], last: list[str]) -> None:
    for line in reversed(lines):
        text = line.decode("utf-8", "replace").strip()
        if text:
            last[:] = [scrub.scrub(text)[:500]]
            return


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
