"""The `local` provider (DESIGN §10): runs a job's `command` on this machine, detached.

A run belongs to the clone that started it (its location: `location.py`). What proves a run
alive — the claim, its status and lock, the supervisor's pid and start time — lives in the
clone's git directory (`<git-dir>/trainops/runs/<run-id>/`), where `git clean -xfd` and a pull
request never reach; what users look at — `input.json`, `log.txt`, `outputs/` — lives under
`<runs_dir>/<run-id>/` in the working tree. The command runs in a private checkout of the
applied commit's tree (`_checkout.py`, also in the git directory), never the live working tree
(DESIGN §13b). The run id is deterministic and the record is
claimed by renaming a fully prepared one into place (atomic), so a repeated or racing submit of
the same attempt finds the claim and starts nothing: one training per (job, revision, attempt).

`observe` only reads. Recording a vanished run as failed and stopping what is left of it is
`reap`, which only apply calls; and trainops signals only processes that carry the run's own
TRAINOPS_* variables (it set them), never a pid or group named by a file.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Collection
from dataclasses import replace
from pathlib import Path
from typing import Any

from trainops import metrics, scrub
from trainops.errors import Problem, ProviderError
from trainops.jobenv import job_environment
from trainops.manifest import Job, LocalSpec
from trainops.processes import identity, running_with, stop_marked
from trainops.providers import _checkout, _claims, _runlog
from trainops.providers import _location as loc
from trainops.providers import _supervisor as sv
from trainops.providers._claims import NEVER_STARTED, VANISHED
from trainops.providers.base import (
    Health,
    Intent,
    Observation,
    RunRef,
    Submission,
    check_own_run,
    display_path,
    job_cwd,
)

_HEALTH = {
    "pending": Health.PENDING,
    "running": Health.RUNNING,
    "succeeded": Health.SUCCEEDED,
    "failed": Health.FAILED,
    "canceled": Health.CANCELED,
}
_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*\Z")
_PYTHONS = ("python", "python3")  # run with trainops' own interpreter, so venvs just work
# The supervisor runs from the very trainops that is running now, however it was installed.
_PACKAGE_ROOT = Path(__file__).resolve().parents[2]
_BOOT = (
    "import sys; sys.path.insert(0, sys.argv.pop(1)); "
    "from trainops.providers._supervisor import main; sys.exit(main(sys.argv))"
)


__all__ = ["NEVER_STARTED", "VANISHED", "LocalProvider", "run_id_for"]


def run_id_for(job: str, revision: str, attempt: int) -> str:
    return f"{job}-{revision}-{attempt}"


def check_run(job: str, run: Any) -> str:
    """Why a recorded run cannot be `job`'s (empty when it can): a local run id is a function
    of (job, revision, attempt), and its outputs lie in its own `<run-id>/outputs/` folder."""
    return check_own_run(job, run, run_id_for(job, run.revision, run.attempt))


GITHUB_HOSTED = (
    "local runs need a persistent machine: this GitHub-hosted runner's disk vanishes after the job"
)


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
        self._git_dir: Path | bool | None = False  # False: not looked up yet

    @property
    def records_dir(self) -> Path | None:
        """Where this clone's run records live (inside its git directory), if it has one."""
        state = self._state_dir()
        return state / "runs" if state is not None else None

    # ---- DataInputs (DESIGN §18) ------------------------------------------------------------

    def stage(self, package: Any) -> str:
        """The package on this machine, once per digest: a folder unpacked (or a file copied)
        under `.trainops/data/<sha256>/`, renamed into place whole, so a crash leaves either
        nothing or all of it. Returns the absolute path the run's input holds."""
        import zipfile

        home = self.runs_dir.parent / "data"
        final = home / package.sha256
        where = final if package.folder else final / package.filename
        if final.is_dir():
            return str(where)
        home.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".staging-", dir=home))
        try:
            # Streamed from the package, built again from the applied commit: memory stays
            # bounded whatever the data's size.
            with package.open() as src:
                if package.folder:
                    with zipfile.ZipFile(src) as zf:
                        for name in package.files:  # our own archive: names checked when packed
                            out = tmp / name
                            out.parent.mkdir(parents=True, exist_ok=True)
                            with zf.open(name) as one, open(out, "wb") as dst:
                                shutil.copyfileobj(one, dst, 1 << 20)
                else:
                    with open(tmp / package.filename, "wb") as dst:
                        shutil.copyfileobj(src, dst, 1 << 20)
            try:
                os.rename(tmp, final)
            except OSError:
                if not final.is_dir():  # not a racing stager that won: a real failure
                    raise
        except OSError as exc:
            raise ProviderError(f"cannot stage {package.path} under {home}: {exc}") from exc
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        return str(where)

    # ---- Provider protocol ------------------------------------------------------------------

    def unavailable(self) -> str:
        """Availability (DESIGN §10): a GitHub-hosted runner's disk, and with it the run's
        folder and process, is gone when the workflow job ends; a self-hosted runner keeps it."""
        if os.environ.get("RUNNER_ENVIRONMENT") == "github-hosted":
            return GITHUB_HOSTED
        return ""

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

    def location(self, claim: bool = False) -> str:
        """Where runs submitted from here live (the `Located` capability): this clone on this
        machine. Read-only unless `claim` (apply, before it records an intent)."""
        return loc.location(self.repo_root, self._state_dir(), claim)

    def submit(self, submission: Submission) -> RunRef:
        """Start one run. Idempotent: when the run of this (job, revision, attempt) was already
        claimed in this clone, by this process or any other, return it and start nothing."""
        job = submission.job
        spec = job.spec
        if not isinstance(spec, LocalSpec):
            raise ProviderError(f"job {job.name!r} is not a local job (provider: {spec.provider})")
        try:
            input_text = json.dumps(dict(submission.input), sort_keys=True, indent=2)
        except (TypeError, ValueError) as exc:
            raise ProviderError(f"job {job.name!r}: input is not JSON: {exc}") from exc
        run_id = run_id_for(job.name, submission.revision, submission.attempt)
        records = self._records(create=True)
        here = self.location(claim=True)
        try:
            return self._claim_and_start(run_id, records, here, submission, spec, input_text)
        except OSError as exc:
            # A read-only or full disk, a runs folder that is a file: nothing was started.
            where = (
                self._display(Path(exc.filename)) if exc.filename else self._display(self.runs_dir)
            )
            raise ProviderError(
                f"cannot set up local run {run_id}: {where}: {exc.strerror or exc}",
                f"the runs folder ({self._display(self.runs_dir)}) must be writable "
                "by the user running trainops",
            ) from None

    def _claim_and_start(
        self,
        run_id: str,
        records: Path,
        here: str,
        submission: Submission,
        spec: LocalSpec,
        input_text: str,
    ) -> RunRef:
        job = submission.job
        record = records / run_id
        work = self._work_dir(run_id)
        if not self.runs_dir.resolve().is_relative_to(self.repo_root):
            # A committed symlink (`.trainops -> /elsewhere`) must not steer where runs write.
            raise ProviderError(
                f"the runs folder {self._display(self.runs_dir)} leads outside the repository",
                "remove the symlink on that path; runs live inside the repository",
            )
        if record.exists():
            return self._ref(run_id, record, here)

        created_at = self._clock()
        cwd, tree = self._run_cwd(submission, spec)
        argv = [
            sys.executable if spec.command[0] in _PYTHONS else spec.command[0],
            *spec.command[1:],
        ]
        staging = Path(tempfile.mkdtemp(prefix=f".claim-{run_id}-", dir=records))
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
                "env": list(spec.env),  # names only: the values never touch the disk
                "workdir": self._display(cwd) if not tree else self._workdir(job, spec),
                "cwd": str(cwd),
                # The commit and tree the run executes (a private checkout, DESIGN §13b).
                "source_commit": submission.source_commit,
                "tree": tree,
                "work_dir": str(work),
                "location": here,
                "created_at": created_at,
                "claimer": {"pid": os.getpid(), "ident": identity(os.getpid())},
                # Credential variables the supervisor masks in what it records (DESIGN §13).
                "scrub_env": sorted(scrub.watched()),
            },
        )
        try:
            staging.rename(record)  # the claim: atomic, and never half-written
        except OSError:  # claimed by a racing submit a moment ago
            shutil.rmtree(staging, ignore_errors=True)
            return self._ref(run_id, record, here)
        try:
            # The run id is ours now: whatever a copied clone or an older record left in its
            # folder is not this run's.
            if work.is_symlink() or (work.exists() and not work.is_dir()):
                work.unlink()
            shutil.rmtree(work / sv.OUTPUTS, ignore_errors=True)
            (work / sv.OUTPUTS).mkdir(parents=True)
            (work / sv.INPUT).write_text(input_text + "\n", encoding="utf-8")
        except OSError as exc:
            # Close the claim: nothing started, and nothing may start it late.
            _claims.fail(record, self._clock(), f"could not set up {self._display(work)}: {exc}")
            raise
        self._launch(record, work, self._job_env(run_id, work, spec))
        return RunRef(run_id, created_at)

    def _run_cwd(self, submission: Submission, spec: LocalSpec) -> tuple[Path, str]:
        """Where the run's command starts, and the tree id it executes: the workdir inside a
        private checkout of the applied commit (DESIGN §13b), never the live working tree.
        Without a commit (a caller outside apply) the working tree's workdir, tree ''."""
        job = submission.job
        if not submission.source_commit:
            return self._cwd(job, spec), ""
        state = self._state_dir()
        if state is None:
            raise ProviderError(
                f"{self.repo_root} is not in a git repository",
                "local runs execute a checkout of the applied commit: run trainops in a clone",
            )
        tree, root = _checkout.checkout(self.repo_root, state, submission.source_commit)
        cwd = _checkout.workdir_in(root, self._workdir(job, spec))
        if cwd is None or not cwd.is_dir():
            refused = ProviderError(
                f"job {job.name!r}: workdir {self._workdir(job, spec)} is not a folder of "
                f"commit {submission.source_commit[:12]}",
                "workdir is relative to the repository root; commit it with the manifest",
            )
            refused.retryable = False  # type: ignore[attr-defined]
            raise refused
        return cwd, tree

    @staticmethod
    def _workdir(job: Job, spec: LocalSpec) -> str:
        import posixpath

        return spec.workdir if spec.workdir is not None else posixpath.dirname(job.file) or "."

    def _job_env(self, run_id: str, work: Path, spec: LocalSpec) -> dict[str, str]:
        return job_environment(spec.env, os.environ, _marker(run_id, work))

    def observe(self, run_ids: Collection[str]) -> dict[str, Observation]:
        """Read each asked run's status. Read-only: a run whose supervisor is gone without a
        final status is reported Failed (VANISHED) but not recorded; `reap` records it. Ids this
        clone never claimed are absent, unless their supervisor still runs (found, not lost)."""
        found: dict[str, Observation] = {}
        for run_id in run_ids:
            record = self._record(run_id)
            if record is not None:
                found[run_id] = self._observe(run_id, record)
            elif _RUN_ID.match(run_id) and self._live_supervisor(run_id):
                found[run_id] = Observation(run_id, Health.RUNNING)
        return found

    def reap(self, run_ids: Collection[str]) -> None:
        """Apply only, before `observe`: record, once and for good, every asked run whose
        supervisor is gone without a final status as failed, and stop what is left of it, so a
        run reported Failed does not go on training unrecorded next to its retry."""
        for run_id in run_ids:
            record = self._record(run_id)
            if record is not None and _claims.lost(
                record, self._clock(), self.start_grace, sv.read_status(record)
            ):
                self._declare_lost(run_id, record)

    def cancel(self, run_id: str) -> None:
        """Stop a run: record `canceled`, then SIGTERM its processes and SIGKILL what is left
        after `cancel_grace`. Idempotent: a run already terminal, or unknown, returns silently."""
        record = self._record(run_id)
        if record is None:
            return
        with sv.status_lock(record):
            status = sv.read_status(record) or {}
            if status.get("status") in sv.TERMINAL:
                return
            now = self._clock()
            sv.write_status(
                record,
                {
                    **status,
                    "status": "canceled",
                    "completed_at": now,
                    "error": "canceled",
                    "retryable": False,
                },
            )
        # Before the supervisor ran, nothing was started; after, it sees `canceled` and keeps it.
        self._terminate(run_id, status, grace=self.cancel_grace)

    def logs(self, run_id: str, tail: int = 50) -> str:
        """The last `tail` lines of the command's output (stdout and stderr); empty when none.
        Read from the end, at most `TAIL_BYTES`: time and memory do not grow with the log."""
        return self.log_tail(run_id, tail)[0]

    def log_tail(self, run_id: str, tail: int) -> tuple[str, int]:
        """`logs()`, and the byte offset where it ends (to follow the log from there)."""
        record = self._record(run_id)
        if record is None:
            return "", 0
        _watch_run_env(record)
        return _runlog.tail(self._work_dir(run_id) / sv.LOG, tail)

    def log_after(self, run_id: str, offset: int, final: bool = False) -> tuple[str, int]:
        """What the log gained after byte `offset`: whole lines, at most `TAIL_BYTES` (a
        line longer than that comes in pieces; with `final`, an unterminated last line too),
        and the offset to ask from next."""
        record = self._record(run_id)
        if record is None:
            return "", offset
        _watch_run_env(record)
        return _runlog.after(self._work_dir(run_id) / sv.LOG, offset, final)

    def find(self, intent: Intent) -> RunRef | None:
        """Adoption (DESIGN §8): the run id is a function of the intent, so the run exists exactly
        when this clone's record of it does. It is bound even if its input differs: it is the
        claim."""
        run_id = run_id_for(intent.job, intent.revision, intent.attempt)
        record = self._record(run_id)
        if record is None or _claims.close_if_never_started(
            record, self._clock(), self.start_grace
        ):
            return None
        return self._ref(run_id, record, self.location())

    def output_dir(self, run_id: str) -> Path | None:
        """`OutputFolder`: `<runs_dir>/<run-id>/outputs`, where the command's outputs land."""
        if not _RUN_ID.match(run_id) or ".." in run_id:
            return None
        return self.runs_dir / run_id / sv.OUTPUTS

    # ---- internals --------------------------------------------------------------------------

    def _state_dir(self) -> Path | None:
        if self._git_dir is False:
            self._git_dir = loc.git_dir(self.repo_root)
        assert not isinstance(self._git_dir, bool)
        return self._git_dir / "trainops" if self._git_dir is not None else None

    def _records(self, create: bool) -> Path:
        records = self.records_dir
        if records is None:
            raise ProviderError(
                f"{self.repo_root} is not in a git repository",
                "local runs are recorded in the clone's git directory: run trainops in a clone",
            )
        if create:
            try:
                records.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise ProviderError(
                    f"cannot record local runs in {records}: {exc.strerror or exc}",
                    "the git directory must be writable by the user running trainops",
                ) from None
        return records

    def _record(self, run_id: str) -> Path | None:
        if not _RUN_ID.match(run_id) or ".." in run_id:
            return None
        records = self.records_dir
        if records is None:
            return None
        record = records / run_id
        return record if record.is_dir() else None

    def _work_dir(self, run_id: str) -> Path:
        return self.runs_dir / run_id

    def _cwd(self, job: Job, spec: LocalSpec) -> Path:
        return job_cwd(self.repo_root, job, spec.workdir)

    def _display(self, path: Path) -> str:
        return display_path(self.repo_root, path)

    def _ref(self, run_id: str, record: Path, here: str) -> RunRef:
        # A racing submit may have claimed the run a moment ago and not written meta.json yet:
        # wait for it briefly, so every caller gets the same RunRef.
        deadline = time.monotonic() + 2.0
        while True:
            meta = sv.read_json(record / sv.META)
            if meta is not None and isinstance(meta.get("created_at"), int | float):
                theirs = meta.get("location")
                if isinstance(theirs, str) and theirs != here:
                    raise ProviderError(
                        f"run {run_id} was claimed by another clone ({loc.where(theirs)}): "
                        "its git directory was copied here",
                        "leave that run to its own clone",
                    )
                return RunRef(run_id, float(meta["created_at"]))
            if time.monotonic() >= deadline:
                return RunRef(run_id, record.stat().st_mtime)  # its submitter died
            time.sleep(0.02)

    def _launch(self, record: Path, work: Path, env: dict[str, str]) -> None:
        """Start the supervisor with the job's environment. Its launcher forks it off and exits
        once the supervisor is recorded as pending, so the wait is short and no child of ours is
        left behind."""
        with open(work / sv.LOG, "ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-P", "-c", _BOOT, str(_PACKAGE_ROOT), str(record)],
                cwd=record,
                env=env,
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
            _claims.fail(
                record,
                self._clock(),
                f"the local supervisor did not start (exit code {code}); "
                f"see {self._display(work / sv.LOG)}",
            )

    def _observe(self, run_id: str, record: Path) -> Observation:
        status = sv.read_status(record)
        if self._lost(record, status):
            status = {**(status or {}), "status": "failed", "error": VANISHED, "retryable": True}
        if status is None:
            return Observation(run_id, Health.PENDING)
        health = _HEALTH.get(str(status.get("status")), Health.FAILED)
        started = _number(status.get("started_at"))
        completed = _number(status.get("completed_at"))
        if started is None:
            billed = None
        elif health.terminal:
            billed = max(0.0, (completed or self._clock()) - started)
        else:
            billed = max(0.0, self._clock() - started)
        error = str(status.get("error") or "") if health is not Health.SUCCEEDED else ""
        return Observation(
            run_id,
            health,
            started_at=started,
            completed_at=completed,
            billed_seconds=billed,
            outputs=_outputs(self._work_dir(run_id) / sv.OUTPUTS),
            metrics=metrics.read(self._work_dir(run_id) / sv.OUTPUTS / metrics.FILE)
            if health.terminal
            else {},
            error=error,
            retryable=bool(status.get("retryable", True)),
        )

    def _lost(self, record: Path, status: dict[str, Any] | None) -> bool:
        return _claims.lost(record, self._clock(), self.start_grace, status)

    def _never_started(self, record: Path) -> bool:
        return _claims.close_if_never_started(record, self._clock(), self.start_grace)

    def _declare_lost(self, run_id: str, record: Path) -> None:
        """Record VANISHED, under the lock and only if still true, then kill what remains of the
        command."""
        with sv.status_lock(record):
            status = sv.read_status(record)
            if not self._lost(record, status):
                return
            status = {**(status or {}), "status": "failed", "error": VANISHED, "retryable": True}
            status.setdefault("completed_at", self._clock())
            sv.write_status(record, status)
        self._terminate(run_id, status, grace=0.0)

    def _terminate(self, run_id: str, status: dict[str, Any], grace: float) -> None:
        """Signal the run's processes: those of its group that carry its TRAINOPS_* variables,
        which trainops set when it started them (a pgid written in a file names nothing by
        itself)."""
        pgid = status.get("pgid")
        if isinstance(pgid, int) and not isinstance(pgid, bool) and pgid > 1:
            stop_marked(pgid, _marker(run_id, self._work_dir(run_id)), grace)

    def _live_supervisor(self, run_id: str) -> bool:
        """A run whose record was deleted while its supervisor lives is found, not lost: a
        supervisor of this clone for this run id still runs (its command line names it)."""
        records = self.records_dir
        return records is not None and bool(
            running_with(str(records / run_id), "trainops.providers._supervisor")
        )


def _marker(run_id: str, work: Path) -> dict[str, str]:
    """The variables every process of a run carries (set by trainops for the run)."""
    return {
        "TRAINOPS_RUN_ID": run_id,
        "TRAINOPS_INPUT": str(work / sv.INPUT),
        "TRAINOPS_OUTPUT_DIR": str(work / sv.OUTPUTS),
    }


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


def _watch_run_env(record: Path) -> None:
    """Mask, wherever this run's log is printed or posted, the variables the run was given: the
    names its record keeps (its `spec.env` then, and what trainops masked then), not only the
    names today's manifests list, which may no longer name them (DESIGN §13)."""
    meta = sv.read_json(record / sv.META) or {}
    names = [*(meta.get("env") or ()), *(meta.get("scrub_env") or ())]
    scrub.watch(n for n in names if isinstance(n, str))
