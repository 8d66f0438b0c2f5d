"""`LocalProvider`, the face of the local provider (DESIGN §10): the `Provider` protocol and its
capabilities, each a few lines over the package's modules — `records` (where a run lives, its
id), `start` (claim and launch), `observe`, `stop` (cancel, reap), `logs`, `stage`
(`spec.data`). A run belongs to the clone that started it (its location: `_location.py`).

`observe` only reads. Recording a vanished run as failed and stopping what is left of it is
`reap`, which only apply calls.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from trainops.errors import Problem, ProviderError
from trainops.manifest import Job, LocalSpec
from trainops.providers import _claims
from trainops.providers import _location as loc
from trainops.providers import _supervisor as sv
from trainops.providers.base import (
    Intent,
    Listing,
    Observation,
    RunRef,
    Submission,
    job_cwd,
)
from trainops.providers.local import logs, stop
from trainops.providers.local.listing import list_records, not_claimed
from trainops.providers.local.observe import live_supervisor, observation
from trainops.providers.local.records import (
    RUN_ID,
    RunFolders,
    marks_of,
    read_ref,
    run_id_for,
    well_formed,
)
from trainops.providers.local.stage import stage
from trainops.providers.local.start import claim_and_start
from trainops.state.model import Health

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
        self._folders = RunFolders(self.repo_root, self.runs_dir)
        # what check() found on disk, by workdir and by command path (see _workdir)
        self._checked_dirs: dict[tuple[str | None, str], tuple[Path, str, bool]] = {}
        self._checked_commands: dict[tuple[Path, str], bool] = {}

    @property
    def records_dir(self) -> Path | None:
        """Where this clone's run records live (inside its git directory), if it has one."""
        return self._folders.records_dir

    # ---- DataInputs (DESIGN §18) ------------------------------------------------------------

    def stage(self, package: Any) -> str:
        """The package on this machine, once per digest, under `.trainops/data/<sha256>/`
        (`stage.py`). Returns the absolute path the run's input holds."""
        return stage(self.runs_dir.parent / "data", package)

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
        cwd, shown, is_dir = self._workdir(job, spec.workdir)
        if not is_dir:
            problems.append(
                job.doc.problem(
                    ("spec", "workdir"),
                    f"workdir {shown} does not exist",
                    "workdir is relative to the repository root; by default the manifest's folder",
                )
            )
        elif "/" in spec.command[0] and not self._exists(cwd, spec.command[0]):
            problems.append(
                job.doc.problem(
                    ("spec", "command", 0),
                    f"command {spec.command[0]!r} does not exist",
                    f"a command with a '/' is relative to the workdir ({shown})",
                )
            )
        return [replace(p, job=job.name) for p in problems]

    def _workdir(self, job: Job, workdir: str | None) -> tuple[Path, str, bool]:
        """The job's workdir resolved, as a message shows it, and whether it is a folder: once
        per distinct workdir (or manifest folder) for this instance. `check` is called on an
        instance made for one validation (workspace._validate), where thousands of jobs often
        share one workdir: resolving each again (a stat per path component) was most of it."""
        key = (workdir, job.file.rpartition("/")[0] if workdir is None else "")
        found = self._checked_dirs.get(key)
        if found is None:
            cwd = job_cwd(self.repo_root, job, workdir)
            found = self._checked_dirs[key] = (cwd, self._folders.display(cwd), cwd.is_dir())
        return found

    def _exists(self, cwd: Path, command: str) -> bool:
        key = (cwd, command)
        found = self._checked_commands.get(key)
        if found is None:
            found = self._checked_commands[key] = (cwd / command).exists()
        return found

    def location(self, claim: bool = False) -> str:
        """Where runs submitted from here live (the `Located` capability): this clone on this
        machine. Read-only unless `claim` (apply, before it records an intent)."""
        return loc.location(self.repo_root, self._folders.state_dir(), claim)

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
        records = self._folders.records(create=True)
        here = self.location(claim=True)
        try:
            return claim_and_start(
                self._folders, run_id, records, here, submission, spec, input_text, self._clock
            )
        except OSError as exc:
            # A read-only or full disk, a runs folder that is a file: nothing was started.
            shown = self._folders.display
            where = shown(Path(exc.filename)) if exc.filename else shown(self.runs_dir)
            raise ProviderError(
                f"cannot set up local run {run_id}: {where}: {exc.strerror or exc}",
                f"the runs folder ({shown(self.runs_dir)}) must be writable "
                "by the user running trainops",
            ) from None

    def observe(self, run_ids: Collection[str]) -> dict[str, Observation]:
        """Read each asked run's status. Read-only: a run whose supervisor is gone without a
        final status is reported Failed (VANISHED) but not recorded; `reap` records it. Ids this
        clone never claimed are absent, unless their supervisor still runs (found, not lost)."""
        found: dict[str, Observation] = {}
        for run_id in run_ids:
            record = self._folders.record(run_id)
            if record is not None:
                found[run_id] = self._seen(run_id, record, marks_of(run_id, record) or {})
            elif RUN_ID.match(run_id) and live_supervisor(self.records_dir, run_id):
                found[run_id] = Observation(run_id, Health.RUNNING)
        return found

    def _seen(self, run_id: str, record: Path, marks: Mapping[str, Any]) -> Observation:
        """The run as its record says, with the marks its `meta.json` holds (`Listable`)."""
        status = sv.read_status(record)
        lost = _claims.lost(record, self._clock(), self.start_grace, status)
        work = self._folders.work_dir(run_id)
        seen = observation(run_id, work, status, lost, self._clock)
        return replace(seen, marks=dict(marks), created_at=marks.get("created_at"))

    # ---- Listable (DESIGN §20) ----------------------------------------------------------------

    def list_runs(self, probes: Sequence[Intent], max_calls: int) -> Listing:
        """`Listable`: the runs this clone claimed that carry a probe's marks (`listing.py`):
        one read of the records folder. There are no foreign local runs; the listing says so."""
        return list_records(self._folders, probes, self.location(), self._seen)

    def claims(self, probe: Intent, seen: Observation) -> str:
        """Why the observed run is not `probe`'s by its record in this clone (empty when it
        is), for `adopt` (DESIGN §20): claimed here, its own attempt's id, this job, revision,
        input and repository."""
        return not_claimed(probe, seen.run_id, seen.marks, self.location())

    def attempt_of(self, seen: Observation) -> int | None:
        """`Attempted`: the run id is a function of the attempt its record names."""
        attempt = seen.marks.get("attempt")
        return attempt if isinstance(attempt, int) else None

    def reap(self, run_ids: Collection[str]) -> None:
        """Apply only, before `observe`: record, once and for good, every asked run whose
        supervisor is gone without a final status as failed, and stop what is left of it, so a
        run reported Failed does not go on training unrecorded next to its retry."""
        for run_id in run_ids:
            record = self._folders.record(run_id)
            if record is not None and _claims.lost(
                record, self._clock(), self.start_grace, sv.read_status(record)
            ):
                work = self._folders.work_dir(run_id)
                stop.declare_lost(run_id, record, work, self._clock, self.start_grace)

    def cancel(self, run_id: str) -> None:
        """Stop a run: record `canceled`, then SIGTERM its processes and SIGKILL what is left
        after `cancel_grace`. Idempotent: a run already terminal, or unknown, returns silently."""
        record = self._folders.record(run_id)
        if record is None:
            return
        work = self._folders.work_dir(run_id)
        stop.cancel(run_id, record, work, self._clock, self.cancel_grace)

    def logs(self, run_id: str, tail: int = 50) -> str:
        """The last `tail` lines of the command's output (stdout and stderr); empty when none.
        Read from the end, at most `TAIL_BYTES`: time and memory do not grow with the log."""
        return self.log_tail(run_id, tail)[0]

    def log_tail(self, run_id: str, tail: int) -> tuple[str, int]:
        """`logs()`, and the byte offset where it ends (to follow the log from there)."""
        record = self._folders.record(run_id)
        if record is None:
            return "", 0
        return logs.tail(record, self._folders.work_dir(run_id), tail)

    def log_after(self, run_id: str, offset: int, final: bool = False) -> tuple[str, int]:
        """What the log gained after byte `offset`: whole lines, at most `TAIL_BYTES` (a
        line longer than that comes in pieces; with `final`, an unterminated last line too),
        and the offset to ask from next."""
        record = self._folders.record(run_id)
        if record is None:
            return "", offset
        return logs.after(record, self._folders.work_dir(run_id), offset, final)

    def find(self, intent: Intent) -> RunRef | None:
        """Adoption (DESIGN §8): the run id is a function of the intent, so the run exists exactly
        when this clone's record of it does. It is bound even if its input differs: it is the
        claim."""
        run_id = run_id_for(intent.job, intent.revision, intent.attempt)
        record = self._folders.record(run_id)
        if record is None or _claims.close_if_never_started(
            record, self._clock(), self.start_grace
        ):
            return None
        return read_ref(run_id, record, self.location())

    def output_dir(self, run_id: str) -> Path | None:
        """`OutputFolder`: `<runs_dir>/<run-id>/outputs`, where the command's outputs land."""
        if not well_formed(run_id):
            return None
        return self.runs_dir / run_id / sv.OUTPUTS
