"""Training job names and the ownership tags (DESIGN §9): the `TrainingJobName` is a function
of (repository id, job, revision, attempt), the tags carry the marks; `check_run` judges a
recorded run by them, `not_owned` a job the service shows."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any

from trainops.providers import marks
from trainops.providers.base import Intent, Submission
from trainops.repoid import scope

_ROOM = 35  # characters of the name the job's own name may take (63 less the rest)
NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,34}-[0-9a-f]{12}-[1-9][0-9]{0,3}-[0-9a-f]{10}\Z")
TAGS = marks.RUN


def training_job_name(job: str, revision: str, attempt: int, repository: str = "") -> str:
    """`<job>-<revision>-<attempt>-<repository scope>`, at most 63 of `[a-zA-Z0-9-]`. A job name
    of `_ROOM` characters or more is cut and followed by 8 hex of its sha256 (names shorter than
    `_ROOM` stay whole: the two forms never meet). So is a sweep member's (`<set>.<suffix>`,
    DESIGN §21: a '.' is no character of a training job name), its '.' written '-' in the cut
    part: always the hashed form, which no hand-written job's whole name can take."""
    return _name(job, revision, attempt, scope(repository))


def _name(job: str, revision: str, attempt: int | str, scoped: str) -> str:
    part = job
    if len(job) >= _ROOM or "." in job:
        cut = job[: _ROOM - 9].replace(".", "-")
        part = f"{cut}-{hashlib.sha256(job.encode()).hexdigest()[:8]}"
    return f"{part}-{revision}-{attempt}-{scoped}"


def tags_name(tags: Mapping[str, str]) -> str:
    """The training job name the ownership tags describe ("" when they are not trainops'):
    the name a job must have for its tags to be the marks of that name's run."""
    named = [tags.get(k) for k in (*TAGS, marks.REPOSITORY)]
    if not all(isinstance(m, str) and m for m in named):
        return ""
    job, revision, attempt, scoped = (str(m) for m in named)
    return _name(job, revision, attempt, scoped)


def check_run(job: str, run: Any) -> str:
    """Why a recorded run cannot be a SageMaker run of `job` ("" when it can): its name is the
    one of this job's (revision, attempt) for some repository (which one, only the tags tell),
    and its outputs lie under `<run-id>/output/`."""
    expected = training_job_name(job, run.revision, run.attempt)[:-10]
    if run.run_id and not (run.run_id.startswith(expected) and NAME.match(run.run_id)):
        return f"run id {run.run_id!r} is not a SageMaker job name of {job}"
    for key, value in sorted(run.outputs.items()):
        parts = value.removeprefix("s3://").split("/")
        if not value.startswith("s3://") or ".." in parts or f"/{run.run_id}/output/" not in value:
            return f"output {key!r} ({value}) is not in the run's own output folder"
    return ""


def not_owned(name: str, tags: Mapping[str, str] | None, intent: Intent) -> str:
    """Why the training job `name` with `tags` (None: not read) is not `intent`'s run."""
    ours = training_job_name(intent.job, intent.revision, intent.attempt, intent.repository)
    if name != ours:
        return f"its name is not this repository's ({intent.repository!r}) name for the attempt"
    if tags is None:
        # Seen in a list (no tags there): the name, a function of the repository, is all it
        # shows. Enough to follow a running job; every act on one reads its tags first
        # (`cancel`; adoption, `find`), and a finished job is always described (`owns`).
        return ""
    wanted = marks.wanted(intent, scoped=True, repository=True)
    return marks.mismatch(wanted, tags, "tag", input_hash=intent.input_hash)


def submission_tags(submission: Submission) -> dict[str, str]:
    """The tags a submitted job carries: the marks of its run (§9, `marks.of_submission`),
    the repository as its scope (the digest its name ends in)."""
    return marks.of_submission(submission, scoped=True)


def intent_of(submission: Submission) -> Intent:
    """The intent a submission is the act of (to judge a job already of its name)."""
    return Intent(
        submission.job.name,
        submission.revision,
        submission.attempt,
        submission.input_hash,
        0.0,
        "sagemaker",
        repository=submission.repository,
    )
