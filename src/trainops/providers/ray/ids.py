"""Ray run ids and the ownership marks a job carries (DESIGN §8, §9), pure values.

A run's `submission_id` is a function of (job, revision, attempt) and the repository id (a
shared cluster serves many repositories, whose jobs may share a name); runs recorded with the id
trainops used before the repository was part of it (`trainops-<job>-<revision>-<attempt>`) are
still followed. The job's `metadata` names the job, revision, attempt, input hash and repository:
`not_owned` compares them with an intent.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from trainops.providers import marks as _marks
from trainops.providers.base import Intent, Submission, check_own_run
from trainops.repoid import scope

# The job part is a job name: a DNS label, or a sweep member's `<set>.<suffix>` (DESIGN §21),
# at most 63 characters with one '.', kept: Ray takes the id as given (ray 2.x
# dashboard/modules/job/job_manager.py `submit_job` only checks that it is new).
RUN_ID = re.compile(
    r"^trainops-[a-z0-9]([-a-z0-9.]{0,61}[a-z0-9])?-[0-9a-f]{12}-[1-9][0-9]{0,3}"
    r"(-r[0-9a-f]{10})?\Z"
)
META = _marks.RUN
REPOSITORY_META = _marks.REPOSITORY  # the full repository id (`trainops.repoid`)


def submission_id(job: str, revision: str, attempt: int, repository: str = "") -> str:
    """The run id of one attempt of one repository's job: the cluster refuses a second job
    with it (DESIGN §8). Without `repository`, the id trainops gave runs before it was scoped
    (still followed, never given to a new run)."""
    legacy = f"trainops-{job}-{revision}-{attempt}"
    return f"{legacy}-r{scope(repository)}" if repository else legacy


def check_run(job: str, run: Any) -> str:
    """Why a recorded run cannot be a Ray run of `job` (empty when it can): its id is a function
    of (job, revision, attempt), scoped to some repository (which one, only the cluster's record
    can tell: `owns`) or of the unscoped form, and its outputs lie in its own
    `<run-id>/outputs/` folder."""
    expected = submission_id(job, run.revision, run.attempt)
    rest = (run.run_id or "").removeprefix(expected)
    if rest != run.run_id and re.fullmatch(r"-r[0-9a-f]{10}", rest):
        expected = run.run_id
    return check_own_run(job, run, expected, s3=True)


def not_owned(run_id: str, metadata: Mapping[str, Any], intent: Intent) -> str:
    """Why the Ray job `run_id` with `metadata` is not `intent`'s run ("" when it is): its id
    must be this repository's id of that attempt (or the unscoped id, for a job submitted
    before ids were scoped, whose metadata then names no repository), and its metadata must
    say this job, revision, attempt, input hash and repository."""
    scoped = submission_id(intent.job, intent.revision, intent.attempt, intent.repository)
    legacy = submission_id(intent.job, intent.revision, intent.attempt)
    theirs = metadata.get(REPOSITORY_META)
    if run_id == legacy:
        if theirs:
            return "it names a repository but has the unscoped id trainops no longer gives"
    elif run_id != scoped:
        return f"its id is not this repository's ({intent.repository!r}) id for the attempt"
    elif theirs != intent.repository:
        return f"it was submitted for repository {str(theirs)[:120]!r}, not {intent.repository!r}"
    wanted = _marks.wanted(intent)
    return _marks.mismatch(wanted, metadata, "metadata", input_hash=intent.input_hash)


def metadata(submission: Submission) -> dict[str, str]:
    """The marks a submitted job carries (its `metadata`): `marks.of_submission`, the
    repository as its full id (metadata values have room for it)."""
    return _marks.of_submission(submission)


def is_ours(info: Any, wanted: Mapping[str, str]) -> bool:
    """Whether the cluster's job `info` carries the job, revision and attempt of `wanted`."""
    meta = getattr(info, "metadata", None) or {}
    return not _marks.mismatch({k: wanted[k] for k in META}, meta, "metadata")


def marks(info: Any) -> dict[str, Any]:
    """An observation's marks: the job's metadata, as `RayProvider.owns` reads them."""
    meta = getattr(info, "metadata", None)
    return {"metadata": dict(meta) if isinstance(meta, Mapping) else {}}
