"""Listing on SageMaker (DESIGN §20, `status --all`): the training jobs of this repository, and
those writing under our output folder, through `Search` (Resource `TrainingJob`, pages of 100
following `NextToken`, newest first), at most `max_calls` pages.

`ListTrainingJobs` is the list `observe` walks, but its summaries carry neither tags nor billable
time: judging them would cost a `ListTags` and a `DescribeTrainingJob` per job. A `Search`
record is the whole `TrainingJob`, its `Tags` among its properties (botocore's service model,
`SearchRecord.TrainingJob`), so one filtered page of 100 judges 100 jobs: `Tags.trainops-
repository` equal to this repository's scope, or (`Or`) `OutputDataConfig.S3OutputPath`
containing `providers.sagemaker.output_uri` (the one `Contains` a search may hold). Search
reads an index the service updates a little after a change: a job created seconds ago may not
show yet (the census holds such young runs back anyway, by the adoption grace).

A job is **ours** when its tags name a probe's job and revision, an attempt, its input and this
repository, and its name is the one those marks make (`names.not_owned`). Without this
repository's marks of any revision it is **foreign** when its tags name this repository and
one of our jobs, or when it writes under our output folder without any trainops repository
tag (another repository's runs write beside ours, under their own names: never into them).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from trainops.providers import marks
from trainops.providers.base import Intent, Listed, Listing, Observation
from trainops.providers.sagemaker.api import Api, timestamp
from trainops.providers.sagemaker.names import NAME, not_owned, tags_name
from trainops.providers.sagemaker.observe import observation
from trainops.repoid import scope

CANNOT_TELL = (
    "foreign training jobs are told by tags naming this repository, or by output under "
    "providers.sagemaker.output_uri without a trainops repository tag: a job writing there "
    "by other means cannot be told; Search shows a job a little after it is created"
)


def list_runs(
    api: Api, output_uri: str | None, probes: Sequence[Intent], max_calls: int
) -> Listing:
    """`Listable.list_runs`: the search pages, each job judged against `probes`."""
    if not probes:
        return Listing([], 0, notes=(CANNOT_TELL,))
    filters = [{"Name": f"Tags.{marks.REPOSITORY}", "Operator": "Equals", "Value": _ours(probes)}]
    if output_uri:
        filters.append(
            {"Name": "OutputDataConfig.S3OutputPath", "Operator": "Contains", "Value": output_uri}
        )
    records, calls, complete = api.search({"Filters": filters, "Operator": "Or"}, max_calls)
    found = [
        listed
        for record in records
        if (listed := judge(record.get("TrainingJob") or {}, output_uri, probes)) is not None
    ]
    return Listing(found, calls, complete=complete, notes=(CANNOT_TELL,))


def judge(
    job: Mapping[str, Any], output_uri: str | None, probes: Sequence[Intent]
) -> Listed | None:
    """One searched training job as ours, foreign or neither (None). A job that cannot be
    named or dated is never listed, nor adopted."""
    name, created = job.get("TrainingJobName"), timestamp(job.get("CreationTime"))
    if not isinstance(name, str) or created is None:
        return None
    tags = tags_of(job)
    hardware = str((job.get("ResourceConfig") or {}).get("InstanceType") or "")
    by_job = {p.job: p for p in probes}
    probe = by_job.get(str(tags.get(marks.JOB)))
    if probe is not None and NAME.match(name) and not claims(probe, name, tags):
        return Listed(probe.job, observation(job, tags), created, hardware=hardware)
    ours = _ours(probes)
    if tags.get(marks.REPOSITORY) == ours and tags_name(tags) == name:
        return None  # this repository's run of another revision: no probe's, never foreign
    if tags.get(marks.REPOSITORY) == ours and probe is not None:
        return Listed(probe.job, observation(job, tags), created, foreign=True, hardware=hardware)
    went = str((job.get("OutputDataConfig") or {}).get("S3OutputPath") or "").rstrip("/")
    base = (output_uri or "").rstrip("/")
    if marks.REPOSITORY in tags or not base or not (went == base or went.startswith(base + "/")):
        return None
    named = [p.job for p in probes if name.startswith(f"{p.job}-") or name == p.job]
    job_of = max(named, key=len) if named else (probes[0].job if len(probes) == 1 else "")
    return Listed(job_of, observation(job, tags), created, foreign=True, hardware=hardware)


def claims(probe: Intent, name: str, tags: Mapping[str, Any]) -> str:
    """Why the training job `name` with `tags` is not a run of `probe`'s job, revision and
    input by this repository, at the attempt its tags name (empty when it is)."""
    attempt = marks.attempt_named(tags)
    if attempt is None:
        return f"its tags name no {marks.ATTEMPT}"
    return not_owned(
        name, {str(k): str(v) for k, v in tags.items()}, replace(probe, attempt=attempt)
    )


def tags_of(job: Mapping[str, Any]) -> dict[str, str]:
    """A searched job's `Tags` (a list of Key/Value) as a map; what is not a string pair is
    left out (the answer is input)."""
    tags = job.get("Tags")
    out: dict[str, str] = {}
    for tag in tags if isinstance(tags, list) else []:
        ok = isinstance(tag, Mapping) and isinstance(tag.get("Key"), str)
        if ok and isinstance(tag.get("Value"), str):
            out.setdefault(tag["Key"], tag["Value"])
    return out


def seen_tags(seen: Observation) -> Mapping[str, Any] | None:
    """The tags an observation carries (None: a list summary, read without them)."""
    tags = seen.marks.get("tags")
    return tags if isinstance(tags, Mapping) else None


def _ours(probes: Sequence[Intent]) -> str:
    return scope(probes[0].repository)
