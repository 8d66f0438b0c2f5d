"""Listing on Ray (DESIGN §20, `status --all`): every job the cluster keeps, as the official
client's `list_jobs` reads them (`GET /api/jobs/`). Ray's job list is not paged (ray 2.60
`dashboard/modules/job/sdk.py`, `list_jobs`: one request, every job that ever ran), so a
listing is one request whatever its budget, always complete, and its note says so.

A job is **ours** when its submission id is this repository's id of an attempt of a probe's
job and revision, and its metadata are that attempt's marks with this repository (`ids.not_owned`;
an unscoped id, of a trainops that did not scope them yet, is anyone's who copied the metadata).
Without this repository's marks of any revision, it is **foreign** when its metadata name this
repository and one of our jobs, or when its runtime env's `TRAINOPS_OUTPUT_URI` is the run folder
of one of our jobs under `providers.ray.output_uri` (a run id of this repository: where that run's
outputs are read from; other repositories' runs write beside ours, under their own ids); a job
that writes there by other means cannot be told, and the listing says so.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from trainops.providers import marks
from trainops.providers.base import Intent, Listed, Listing, Observation
from trainops.providers.ray.client import Cluster, seconds
from trainops.providers.ray.ids import RUN_ID, not_owned, submission_id
from trainops.providers.ray.observe import observation
from trainops.repoid import scope

NOT_PAGED = "Ray's job list is not paged: one list_jobs request reads every job the cluster keeps"
CANNOT_TELL = (
    "foreign jobs are told by metadata naming this repository, or TRAINOPS_OUTPUT_URI naming "
    "one of our jobs' run folders under providers.ray.output_uri: a job that writes there by "
    "other means cannot be told"
)
_FOLDER = re.compile(r"^trainops-(?P<job>.+)-[0-9a-f]{12}-[1-9][0-9]{0,3}(-r[0-9a-f]{10})?\Z")


def list_runs(
    cluster: Cluster, output_uri: str | None, probes: Sequence[Intent], max_calls: int
) -> Listing:
    """`Listable.list_runs`: one `list_jobs` (none when `max_calls` is below 1), every job
    judged against `probes`, newest first."""
    notes = (NOT_PAGED, CANNOT_TELL)
    if max_calls < 1:
        return Listing([], 0, complete=False, notes=notes)
    jobs = cluster.call("listing Ray jobs", lambda c: c.list_jobs()) or []
    found = [listed for info in jobs if (listed := judge(info, output_uri, probes)) is not None]
    found.sort(key=lambda listed: -listed.created_at)
    return Listing(found, 1, notes=notes)


def judge(info: Any, output_uri: str | None, probes: Sequence[Intent]) -> Listed | None:
    """One job of the list as ours, foreign or neither (None). A job that cannot be named
    (no trainops run id) or dated is never listed, nor adopted."""
    run_id = getattr(info, "submission_id", None)
    created = seconds(getattr(info, "start_time", None))
    if not isinstance(run_id, str) or created is None:
        return None
    meta = _metadata(info)
    by_job = {p.job: p for p in probes}
    probe = by_job.get(str(meta.get(marks.JOB)))
    if probe is not None and RUN_ID.match(run_id) and not claims(probe, run_id, meta):
        return Listed(probe.job, _seen(run_id, info), created)
    if not probes or _ours_of_any_revision(run_id, meta, probes[0].repository):
        return None  # this repository's run of another revision: no probe's, never foreign
    repository = probes[0].repository
    job = _named_job(meta, repository, by_job) or _folder_job(info, output_uri, repository, by_job)
    if job:
        return Listed(job, _seen(run_id, info), created, foreign=True)
    return None


def claims(probe: Intent, run_id: str, meta: Mapping[str, Any]) -> str:
    """Why the Ray job `run_id` with `meta` is not a run of `probe`'s job, revision and input
    by this repository, at the attempt its metadata names (empty when it is)."""
    attempt = marks.attempt_named(meta)
    if attempt is None:
        return f"its metadata names no {marks.ATTEMPT}"
    if run_id != submission_id(probe.job, probe.revision, attempt, probe.repository):
        return f"its id is not this repository's ({probe.repository!r}) id for the attempt"
    return not_owned(run_id, meta, replace(probe, attempt=attempt))


def _ours_of_any_revision(run_id: str, meta: Mapping[str, Any], repository: str) -> bool:
    """The job carries this repository's marks of some attempt of some job (its id is the one
    those marks make): a run of ours, whichever revision."""
    attempt = marks.attempt_named(meta)
    job, revision = meta.get(marks.JOB), meta.get(marks.REVISION)
    if attempt is None or not isinstance(job, str) or not isinstance(revision, str):
        return False
    return meta.get(marks.REPOSITORY) == repository and run_id == submission_id(
        job, revision, attempt, repository
    )


def _named_job(meta: Mapping[str, Any], repository: str, by_job: Mapping[str, Intent]) -> str:
    """The job of ours a job's metadata name along with this repository ("" when none)."""
    job = meta.get(marks.JOB)
    if meta.get(marks.REPOSITORY) == repository and isinstance(job, str) and job in by_job:
        return job
    return ""


def _folder_job(
    info: Any, output_uri: str | None, repository: str, by_job: Mapping[str, Intent]
) -> str:
    """The job of ours whose run folder under `output_uri` (named by a run id of this
    repository: another repository's runs write beside ours, never into them) the job's
    `TRAINOPS_OUTPUT_URI` names ("" when none)."""
    runtime_env = getattr(info, "runtime_env", None)
    env = runtime_env.get("env_vars") if isinstance(runtime_env, Mapping) else None
    went = env.get("TRAINOPS_OUTPUT_URI") if isinstance(env, Mapping) else None
    if not output_uri:  # no shared folder configured: nothing names one of ours
        return ""
    prefix = output_uri.rstrip("/") + "/"
    if not isinstance(went, str) or not went.startswith(prefix):
        return ""
    folder = went[len(prefix) :].split("/", 1)[0]
    ours = RUN_ID.match(folder) and folder.endswith(f"-r{scope(repository)}")
    named = _FOLDER.match(folder) if ours else None
    return named["job"] if named is not None and named["job"] in by_job else ""


def _metadata(info: Any) -> Mapping[str, Any]:
    meta = getattr(info, "metadata", None)
    return meta if isinstance(meta, Mapping) else {}


def _seen(run_id: str, info: Any) -> Observation:
    """The job as `observe` says it, without reading its outputs (no output URI: `status
    --all` shows health, age and cost; adopt observes the job again)."""
    return observation("", run_id, info)
