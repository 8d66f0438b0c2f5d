"""The `local` provider (DESIGN §10): runs a job's `command` on this machine, detached.

Each run lives in `<repo>/.trainops/runs/<job>-<revision>-<attempt>/`. The run id is deterministic,
and the directory is claimed by renaming a fully prepared one into place (atomic), so a repeated or
racing submit of the same attempt finds the claim and starts nothing: one training per (job,
revision, attempt), ever. A small supervisor (`_supervisor.py`) runs the command and writes
`status.json`; `observe` reads it. A claim whose submitter died before starting it is closed as
never started, so adoption declares its intent lost and the next attempt trains instead.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Collection
from dataclasses import replace
from pathlib import Path, PurePosixPath
from typing import Any

from trainops import scrub
from trainops.errors import Problem, ProviderError
from trainops.manifest import Job, LocalSpec
from trainops.processes import identity, is_alive
from trainops.providers import _supervisor as sv
from trainops.providers.base import Health, Intent, Observation, RunRef, Submission

VANISHED = "process vanished without writing a final status"
NEVER_STARTED = "never started: the apply that claimed it died before starting it"
_HEALTH = {
    "pending": Health.PENDING,
    "running": Health.RUNNING,
    "succeeded": Health.SUCCEEDED,
    "failed": Health.FAILED,
    "canceled": Health.CANCELED,
}
_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_PYTHONS = ("python", "python3")  # run with trainops' own interpreter, so venvs just work
# The supervisor runs from the very trainops that is running now, however it was installed.
_PACKAGE_ROOT = Path(__file__).resolve().parents[2]
_BOOT = (
    "import sys; sys.path.insert(0, sys.argv.pop(1)); "
    "from trainops.providers._supervisor import main; sys.exit(main(sys.argv))"
)


def run_id_for(job: str, revision: str, attempt: int) -> str:
    return f"{job}-{revision}-{attempt}"


def check_run(job: str, run: Any) -> str:
    """Why a recorded run cannot be `job`'s (empty when it can): a local run id is a function
    of (job, revision, attempt), and its outputs lie in its own `<run-id>/outputs/` folder."""
    if run.run_id:
        expected = run_id_for(job, run.revision, run.attempt)
        if run.run_id != expected:
            return f"run id {run.run_id!r} is not {job}'s (its run would be {expected!r})"
    for key, value in sorted(run.outputs.items()):
        parts = PurePosixPath(value).parts if os.path.isabs(value) else ()
        inside = [i for i in range(len(parts) - 1) if parts[i : i + 2] == (run.run_id, "outputs")]
        if not run.run_id or not inside or ".." in parts or len(parts) <= inside[-1] + 2:
            return f"output {key!r} ({value}) is not in the run's own output folder"
    return ""


class LocalProvider:
    """Runs on this machine. Every run outlives the trainops process that started it."""

    name = "local"
    adoption_grace = 0.0  # submit is synchronous: an intent without a run dir is lost at once
    start_grace = 15.0  # a claimed run with no supervisor after this long was lost mid-submit
    cancel_grace = 5.0  # SIGTERM, then SIGKILL the process group after this long

    def __init__(
        self,
        repo_root: Path,
        runs_dir: str = ".trainops/runs",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.repo_root = Path(repo_root).resolve()
        self.runs_dir = self.repo_root / runs_dir
        self._clock = clock

    # ---- Provider protocol ------------------------------------------------------------------

    def check(self, job: Job, lock: Any) -> list[Problem]:
        """Offline and cheap: the workdir exists, and a command given as a path names a file.
        A bare command name is not looked up: the machine that applies may differ from this one."""
        spec = job.spec
        if not isinstance(spec, LocalSpec):
            return []
        problems: list[Problem] = []
        cwd = self._cwd(job, spec)
        if not cwd.is_dir():
            problems.append(
                job.doc.problem(
                    ("spec", "workdir"),
                    f"workdir {self._display(cwd)} does not exist",
                    "workdir is relative to the repository root; by default the manifest's folder",
                )
            )
        elif "/" in spec.command[0] and not (cwd / spec.command[0]).exists():
            problems.append(
                job.doc.problem(
                    ("spec", "command", 0),
                    f"command {spec.command[0]!r} does not exist",
                    f"a command with a '/' is relative to the workdir ({self._display(cwd)})",
                )
            )
        return [replace(p, job=job.name) for p in problems]

    def submit(self, submission: Submission) -> RunRef:
        """Start one run. Idempotent: when the run of this (job, revision, attempt) was already
        claimed, by this process or any other, return it and start nothing."""
        job = submission.job
        spec = job.spec
        if not isinstance(spec, LocalSpec):
            raise ProviderError(f"job {job.name!r} is not a local job (provider: {spec.provider})")
        try:
            input_text = json.dumps(dict(submission.input), sort_keys=True, indent=2)
        except (TypeError, ValueError) as exc:
            raise ProviderError(f"job {job.name!r}: input is not JSON: {exc}") from exc
        run_id = run_id_for(job.name, submission.revision, submission.attempt)
        run_dir = self.runs_dir / run_id
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        if run_dir.exists():
            return self._ref(run_id, run_dir)

        created_at = self._clock()
        cwd = self._cwd(job, spec)
        argv = [
            sys.executable if spec.command[0] in _PYTHONS else spec.command[0],
            *spec.command[1:],
        ]
        staging = Path(tempfile.mkdtemp(prefix=f".claim-{run_id}-", dir=self.runs_dir))
        (staging / sv.INPUT).write_text(input_text + "\n", encoding="utf-8")
        sv.write_json(
            staging / sv.META,
            {
                "run_id": run_id,
                "job": job.name,
                "revision": submission.revision,
                "attempt": submission.attempt,
                "input_hash": submission.input_hash,
                "snapshot_path": submission.snapshot_path,
                "command": list(spec.command),
                "argv": argv,
                "workdir": self._display(cwd),
                "cwd": str(cwd),
                "created_at": created_at,
                "claimer": {"pid": os.getpid(), "ident": identity(os.getpid())},
                # Credential variables the supervisor masks in what it records (DESIGN §13).
                "scrub_env": sorted(scrub.watched()),
            },
        )
        (staging / sv.OUTPUTS).mkdir()
        try:
            staging.rename(run_dir)  # the claim: atomic, and never half-written
        except OSError:  # claimed by a racing submit a moment ago
            shutil.rmtree(staging, ignore_errors=True)
            return self._ref(run_id, run_dir)
        self._launch(run_dir)
        return RunRef(run_id, created_at)

    def observe(self, run_ids: Collection[str]) -> dict[str, Observation]:
        """Read each asked run's status.json. A run whose supervisor is gone without a final
        status is recorded, once and for good, as Failed: VANISHED. Unknown ids are absent."""
        found: dict[str, Observation] = {}
        for run_id in run_ids:
            run_dir = self._run_dir(run_id)
            if run_dir is not None:
                found[run_id] = self._observe(run_id, run_dir)
        return found

    def cancel(self, run_id: str) -> None:
        """Stop a run: record `canceled`, then SIGTERM its process group and SIGKILL what is left
        after `cancel_grace`. Idempotent: a run already terminal, or unknown, returns silently."""
        run_dir = self._run_dir(run_id)
        if run_dir is None:
            return
        with sv.status_lock(run_dir):
            status = sv.read_status(run_dir) or {}
            if status.get("status") in sv.TERMINAL:
                return
            now = self._clock()
            sv.write_status(
                run_dir,
                {
                    **status,
                    "status": "canceled",
                    "completed_at": now,
                    "error": "canceled",
                    "retryable": False,
                },
            )
        # Before the supervisor ran, nothing was started; after, it sees `canceled` and keeps it.
        self._terminate(status, grace=self.cancel_grace)

    def logs(self, run_id: str, tail: int = 50) -> str:
        """The last `tail` lines of the command's output (stdout and stderr); empty when none."""
        run_dir = self._run_dir(run_id)
        if run_dir is None or tail <= 0:
            return ""
        try:
            with open(run_dir / sv.LOG, "rb") as f:
                end = f.seek(0, os.SEEK_END)
                pos, data = end, b""
                while pos > 0 and data.count(b"\n") <= tail:
                    step = min(65536, pos)
                    pos -= step
                    f.seek(pos)
                    data = f.read(step) + data
        except OSError:
            return ""
        lines = data.decode("utf-8", "replace").splitlines()
        return "\n".join(lines[-tail:])

    def find(self, intent: Intent) -> RunRef | None:
        """Adoption (DESIGN §8): the run id is a function of the intent, so the run exists exactly
        when its directory does. It is bound even if its input differs: it is the claim."""
        run_id = run_id_for(intent.job, intent.revision, intent.attempt)
        run_dir = self._run_dir(run_id)
        if run_dir is None or self._close_if_never_started(run_dir):
            return None
        return self._ref(run_id, run_dir)

    def output_dir(self, run_id: str) -> Path | None:
        """`OutputFolder`: `<runs_dir>/<run-id>/outputs`, where the command's outputs land."""
        if not _RUN_ID.match(run_id) or ".." in run_id:
            return None
        return self.runs_dir / run_id / sv.OUTPUTS

    # ---- internals --------------------------------------------------------------------------

    def _run_dir(self, run_id: str) -> Path | None:
        if not _RUN_ID.match(run_id) or ".." in run_id:
            return None
        run_dir = self.runs_dir / run_id
        return run_dir if run_dir.is_dir() else None

    def _cwd(self, job: Job, spec: LocalSpec) -> Path:
        if spec.workdir is not None:
            return (self.repo_root / spec.workdir).resolve()
        return (self.repo_root / job.file).parent.resolve()

    def _display(self, path: Path) -> str:
        try:
            return path.relative_to(self.repo_root).as_posix() or "."
        except ValueError:
            return str(path)

    def _close_if_never_started(self, run_dir: Path) -> bool:
        """True when the run was claimed but its submitter died before starting it (no status,
        claimer gone): it is closed as failed, so no late start can ever train it."""
        with sv.status_lock(run_dir):
            if sv.read_status(run_dir) is not None:
                return False
            meta = sv.read_json(run_dir / sv.META) or {}
            claimer = meta.get("claimer")
            if isinstance(claimer, dict) and isinstance(claimer.get("pid"), int):
                if is_alive(claimer["pid"], str(claimer.get("ident") or "")):
                    return False  # still submitting: it will start it
            elif meta and time.time() - run_dir.stat().st_mtime < self.start_grace:
                return False  # a claim without a claimer (older trainops): give it time
            now = self._clock()
            sv.write_status(
                run_dir,
                {
                    "status": "failed",
                    "error": NEVER_STARTED,
                    "retryable": True,
                    "completed_at": now,
                },
            )
        return True

    def _ref(self, run_id: str, run_dir: Path) -> RunRef:
        # A racing submit may have claimed the run a moment ago and not written meta.json yet:
        # wait for it briefly, so every caller gets the same RunRef.
        deadline = time.monotonic() + 2.0
        while True:
            meta = sv.read_json(run_dir / sv.META)
            if meta is not None and isinstance(meta.get("created_at"), int | float):
                return RunRef(run_id, float(meta["created_at"]))
            if time.monotonic() >= deadline:
                return RunRef(run_id, run_dir.stat().st_mtime)  # its submitter died
            time.sleep(0.02)

    def _launch(self, run_dir: Path) -> None:
        """Start the supervisor. Its launcher forks it off and exits once the supervisor is
        recorded as pending, so the wait is short and no child of ours is left behind."""
        with open(run_dir / sv.LOG, "ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-P", "-c", _BOOT, str(_PACKAGE_ROOT), str(run_dir)],
                cwd=run_dir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                close_fds=True,
                start_new_session=True,
            )
        try:
            code = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait()
        if code != 0:
            # Nothing was recorded as pending, so no supervisor may start now: fail the run.
            with sv.status_lock(run_dir):
                if sv.read_status(run_dir) is None:
                    now = self._clock()
                    sv.write_status(
                        run_dir,
                        {
                            "status": "failed",
                            "completed_at": now,
                            "retryable": True,
                            "error": f"the local supervisor did not start (exit code {code}); "
                            f"see {self._display(run_dir / sv.LOG)}",
                        },
                    )

    def _observe(self, run_id: str, run_dir: Path) -> Observation:
        status = sv.read_status(run_dir)
        if self._lost(run_dir, status):
            status = self._declare_lost(run_dir)
        if status is None:
            return Observation(run_id, Health.PENDING)
        health = _HEALTH.get(str(status.get("status")), Health.FAILED)
        started = _number(status.get("started_at"))
        completed = _number(status.get("completed_at"))
        if started is None:
            billed = None
        elif health.terminal:
            billed = max(0.0, (completed or started) - started)
        else:
            billed = max(0.0, self._clock() - started)
        error = str(status.get("error") or "") if health is not Health.SUCCEEDED else ""
        return Observation(
            run_id,
            health,
            started_at=started,
            completed_at=completed,
            billed_seconds=billed,
            outputs=_outputs(run_dir / sv.OUTPUTS),
            error=error,
            retryable=bool(status.get("retryable", True)),
        )

    def _lost(self, run_dir: Path, status: dict[str, Any] | None) -> bool:
        if status is None:
            meta = sv.read_json(run_dir / sv.META)
            if meta is not None and isinstance(meta.get("created_at"), int | float):
                age = self._clock() - float(meta["created_at"])
            else:
                age = time.time() - run_dir.stat().st_mtime
            return age > self.start_grace
        if status.get("status") in sv.TERMINAL:
            return False
        pid, ident = status.get("supervisor_pid"), str(status.get("supervisor_start") or "")
        return not (isinstance(pid, int) and is_alive(pid, ident))

    def _declare_lost(self, run_dir: Path) -> dict[str, Any] | None:
        """Record VANISHED, under the lock and only if still true, then kill what remains of the
        command: a run reported Failed must not go on training unrecorded next to its retry."""
        with sv.status_lock(run_dir):
            status = sv.read_status(run_dir)
            if not self._lost(run_dir, status):
                return status
            status = {**(status or {}), "status": "failed", "error": VANISHED, "retryable": True}
            status.setdefault("completed_at", self._clock())
            sv.write_status(run_dir, status)
        self._terminate(status, grace=0.0)
        return status

    def _terminate(self, status: dict[str, Any], grace: float) -> None:
        pgid = status.get("pgid")
        if not isinstance(pgid, int) or pgid <= 1:
            return
        since = str(status.get("supervisor_start") or "")
        if not sv.group_alive(pgid, since):
            return
        if grace > 0:
            _signal_group(pgid, signal.SIGTERM)
            if _wait_gone(pgid, since, grace):
                return
        _signal_group(pgid, signal.SIGKILL)
        _wait_gone(pgid, since, 1.0)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _wait_gone(pgid: int, since: str, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while sv.group_alive(pgid, since):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _outputs(out_dir: Path) -> dict[str, str]:
    """DESIGN §2: every file under outputs/, keyed by its name without extension. On a clash the
    shallowest file wins, then the first by path; hidden files (temporaries) are skipped."""
    try:
        files = [
            p
            for p in out_dir.rglob("*")
            if p.is_file()
            and not any(part.startswith(".") for part in p.relative_to(out_dir).parts)
        ]
    except OSError:
        return {}
    found: dict[str, str] = {}
    for path in sorted(files, key=lambda p: (len(p.relative_to(out_dir).parts), p.as_posix())):
        found.setdefault(path.stem, str(path))
    return found
