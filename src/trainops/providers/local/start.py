"""Starting a local run (DESIGN §10, §13b): the claim, the work folder, the supervisor.

The record is claimed by renaming a fully prepared one into place (atomic), so a repeated or
racing submit of the same attempt finds the claim and starts nothing. The command runs in a
private checkout of the applied commit's tree (`_checkout.py`, in the git directory), never the
live working tree. The supervisor (`_supervisor.py`) runs detached from the very trainops that
is running now, and outlives it.
"""

from __future__ import annotations

import os
import posixpath
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from trainops import scrub
from trainops.errors import ProviderError
from trainops.jobenv import job_environment
from trainops.manifest import Job, LocalSpec
from trainops.processes import identity
from trainops.providers import _checkout, _claims
from trainops.providers import _supervisor as sv
from trainops.providers.base import RunRef, Submission, job_cwd
from trainops.providers.local.records import RunFolders, marker, read_ref

_PYTHONS = ("python", "python3")  # run with trainops' own interpreter, so venvs just work
# The supervisor runs from the very trainops that is running now, however it was installed.
_PACKAGE_ROOT = Path(__file__).resolve().parents[3]
_BOOT = (
    "import sys; sys.path.insert(0, sys.argv.pop(1)); "
    "from trainops.providers._supervisor import main; sys.exit(main(sys.argv))"
)


def workdir(job: Job, spec: LocalSpec) -> str:
    """The job's workdir, repository-relative: by default the manifest's folder."""
    return spec.workdir if spec.workdir is not None else posixpath.dirname(job.file) or "."


def claim_and_start(
    folders: RunFolders,
    run_id: str,
    records: Path,
    here: str,
    submission: Submission,
    spec: LocalSpec,
    input_text: str,
    clock: Callable[[], float],
) -> RunRef:
    """Claim `run_id` and start it, or return the run a claim already holds."""
    job = submission.job
    record = records / run_id
    work = folders.work_dir(run_id)
    if not folders.runs_dir.resolve().is_relative_to(folders.repo_root):
        # A committed symlink (`.trainops -> /elsewhere`) must not steer where runs write.
        raise ProviderError(
            f"the runs folder {folders.display(folders.runs_dir)} leads outside the repository",
            "remove the symlink on that path; runs live inside the repository",
        )
    if record.exists():
        return read_ref(run_id, record, here)

    created_at = clock()
    cwd, tree = run_cwd(folders, submission, spec)
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
            "repository": submission.repository,  # the ownership mark of DESIGN §9
            "snapshot_path": submission.snapshot_path,
            "command": list(spec.command),
            "argv": argv,
            "env": list(spec.env),  # names only: the values never touch the disk
            "workdir": folders.display(cwd) if not tree else workdir(job, spec),
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
        return read_ref(run_id, record, here)
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
        _claims.fail(record, clock(), f"could not set up {folders.display(work)}: {exc}")
        raise
    env = job_environment(spec.env, os.environ, marker(run_id, work))
    launch(folders, record, work, env, clock)
    return RunRef(run_id, created_at)


def run_cwd(folders: RunFolders, submission: Submission, spec: LocalSpec) -> tuple[Path, str]:
    """Where the run's command starts, and the tree id it executes: the workdir inside a
    private checkout of the applied commit (DESIGN §13b), never the live working tree.
    Without a commit (a caller outside apply) the working tree's workdir, tree ''."""
    job = submission.job
    if not submission.source_commit:
        return job_cwd(folders.repo_root, job, spec.workdir), ""
    state = folders.state_dir()
    if state is None:
        raise ProviderError(
            f"{folders.repo_root} is not in a git repository",
            "local runs execute a checkout of the applied commit: run trainops in a clone",
        )
    tree, root = _checkout.checkout(folders.repo_root, state, submission.source_commit)
    cwd = _checkout.workdir_in(root, workdir(job, spec))
    if cwd is None or not cwd.is_dir():
        refused = ProviderError(
            f"job {job.name!r}: workdir {workdir(job, spec)} is not a folder of "
            f"commit {submission.source_commit[:12]}",
            "workdir is relative to the repository root; commit it with the manifest",
        )
        refused.retryable = False  # type: ignore[attr-defined]
        raise refused
    return cwd, tree


def launch(
    folders: RunFolders,
    record: Path,
    work: Path,
    env: dict[str, str],
    clock: Callable[[], float],
) -> None:
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
            clock(),
            f"the local supervisor did not start (exit code {code}); "
            f"see {folders.display(work / sv.LOG)}",
        )
