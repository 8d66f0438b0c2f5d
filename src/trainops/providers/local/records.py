"""Where a local run lives, and its id (DESIGN §10): the record that proves it alive (claim,
`meta.json`, status and lock, in the clone's git directory under `trainops/runs/<run-id>/`,
where `git clean -xfd` and a pull request never reach) and the work folder users look at
(`input.json`, `log.txt`, `outputs/`, under `<runs_dir>/<run-id>/` in the working tree).

The run id is a function of (job, revision, attempt): one training per attempt.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

from trainops.errors import ProviderError
from trainops.providers import _location as loc
from trainops.providers import _supervisor as sv
from trainops.providers.base import RunRef, check_own_run, display_path

RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*\Z")


def run_id_for(job: str, revision: str, attempt: int) -> str:
    return f"{job}-{revision}-{attempt}"


def check_run(job: str, run: Any) -> str:
    """Why a recorded run cannot be `job`'s (empty when it can): a local run id is a function
    of (job, revision, attempt), and its outputs lie in its own `<run-id>/outputs/` folder."""
    return check_own_run(job, run, run_id_for(job, run.revision, run.attempt))


def well_formed(run_id: str) -> bool:
    """Whether `run_id` can name a folder of ours (no path, no `..`)."""
    return bool(RUN_ID.match(run_id)) and ".." not in run_id


def marker(run_id: str, work: Path) -> dict[str, str]:
    """The variables every process of a run carries (set by trainops for the run)."""
    return {
        "TRAINOPS_RUN_ID": run_id,
        "TRAINOPS_INPUT": str(work / sv.INPUT),
        "TRAINOPS_OUTPUT_DIR": str(work / sv.OUTPUTS),
    }


class RunFolders:
    """One clone's local runs: their records (in its git directory) and work folders (under
    `runs_dir`). The git directory is looked up once, on first use."""

    def __init__(self, repo_root: Path, runs_dir: Path) -> None:
        self.repo_root = repo_root
        self.runs_dir = runs_dir
        self._git_dir: Path | bool | None = False  # False: not looked up yet

    def state_dir(self) -> Path | None:
        """`<git-dir>/trainops`, if the repository root is in a git repository."""
        if self._git_dir is False:
            self._git_dir = loc.git_dir(self.repo_root)
        assert not isinstance(self._git_dir, bool)
        return self._git_dir / "trainops" if self._git_dir is not None else None

    @property
    def records_dir(self) -> Path | None:
        state = self.state_dir()
        return state / "runs" if state is not None else None

    def records(self, create: bool) -> Path:
        """The records folder; a `ProviderError` outside a clone (or, with `create`, when it
        cannot be made)."""
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

    def record(self, run_id: str) -> Path | None:
        """The record of `run_id`, if this clone claimed it."""
        if not well_formed(run_id):
            return None
        records = self.records_dir
        if records is None:
            return None
        record = records / run_id
        return record if record.is_dir() else None

    def work_dir(self, run_id: str) -> Path:
        return self.runs_dir / run_id

    def display(self, path: Path) -> str:
        return display_path(self.repo_root, path)


def read_ref(run_id: str, record: Path, here: str) -> RunRef:
    """The run a claimed record names. A racing submit may have claimed the run a moment ago and
    not written meta.json yet: wait for it briefly, so every caller gets the same RunRef. A
    record claimed by another clone (its git directory copied here) is refused."""
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


def marks_of(run_id: str, record: Path) -> dict[str, Any] | None:
    """What a run's record (`meta.json`, written at its claim) says of whose run it is (DESIGN
    §9): its run id, job, revision, attempt, input hash, repository, location and creation
    time. None when the record is a symlink (never followed) or `meta.json` is missing or
    malformed: such a record proves nothing."""
    if record.is_symlink():
        return None
    try:
        meta = sv.read_json(record / sv.META)
    except (OSError, UnicodeError):
        return None
    if meta is None or meta.get("run_id") != run_id:
        return None
    attempt, created = meta.get("attempt"), meta.get("created_at")
    strings = ("job", "revision", "input_hash", "location")
    if (
        not all(isinstance(meta.get(key), str) and meta[key] for key in strings)
        or not isinstance(meta.get("repository", ""), str)
        or not isinstance(attempt, int)
        or isinstance(attempt, bool)
        or attempt < 1
        or not isinstance(created, int | float)
        or isinstance(created, bool)
    ):
        return None
    marks: dict[str, Any] = {key: meta[key] for key in strings}
    return {
        **marks,
        "run_id": run_id,
        "attempt": attempt,
        "repository": meta.get("repository", ""),
        "created_at": float(created),
    }
