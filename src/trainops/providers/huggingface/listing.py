"""Listing on Hugging Face Jobs (DESIGN §20, `status --all`): every job of the namespace, newest
first, as `huggingface_hub`'s `list_jobs` reads them (`GET /api/jobs/{namespace}`, no filter,
pages followed through the `Link` header by `utils._pagination.paginate`; hf_api.py 2.4), at
most `max_calls` pages. A job is ours when its labels are a job's marks of §9 (job, revision,
the intent of its attempt and input, this repository's label: `labels.not_owned` as adoption
judges them), and foreign when, without them, its environment's `TRAINOPS_OUTPUT_REPO` names
one of our output repos: a job that pushes there by other means cannot be told, and the
listing says so.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from trainops.providers import marks
from trainops.providers.base import Intent, Listed, Listing, Observation
from trainops.providers.huggingface.http import is_job_id
from trainops.providers.huggingface.labels import not_owned
from trainops.providers.huggingface.observe import Observer, plain

CANNOT_TELL = (
    "foreign jobs are told by TRAINOPS_OUTPUT_REPO naming one of our output repos: "
    "a job that pushes there by other means cannot be told"
)


def attempt_in(labels: Mapping[str, Any]) -> int | None:
    """The attempt a job's `trainops-attempt` label names (None: none, or not a number)."""
    return marks.attempt_named(labels)


def not_probes(probe: Intent, labels: Mapping[str, Any]) -> str:
    """Why a job with `labels` is not a run of `probe`'s job, revision and input by this
    repository, at the attempt its labels name (empty when it is)."""
    attempt = attempt_in(labels)
    if attempt is None:
        return "it carries no trainops-attempt label"
    return not_owned(labels, replace(probe, attempt=attempt), adopting=True)


class Lister(Observer):
    """`Listable` and `Attempted` on the provider (`HuggingFaceProvider`)."""

    def list_runs(self, probes: Sequence[Intent], max_calls: int) -> Listing:
        """`Listable`: the namespace's jobs, `list_page` a page (the client hides pages, so
        the walk stops after `max_calls * list_page` jobs), judged against `probes`."""
        api, ns = self._client(), self._namespace()
        page = max(1, self.list_page)
        most = max(0, max_calls) * page

        def walk() -> list[dict[str, Any]]:
            return [plain(i) for i in itertools.islice(api.list_jobs(namespace=ns), most)]

        items = self._retrying("list jobs", walk, client_retries=True) or []
        complete = len(items) < most
        to = {p.destination: p.job for p in probes if p.destination}
        found: list[Listed] = []
        for item in items:
            listed = self._judge(item, probes, to)
            if listed is not None:
                found.append(listed)
        calls = max(1, -(-len(items) // page)) if complete else max_calls
        return Listing(found, calls, complete=complete, notes=(CANNOT_TELL,))

    def _judge(
        self, item: Mapping[str, Any], probes: Sequence[Intent], to: Mapping[str, str]
    ) -> Listed | None:
        created = item.get("created")
        if not is_job_id(item.get("id")) or created is None:
            return None  # what cannot be named or dated is never listed, nor adopted
        labels = item["labels"]
        for probe in probes:
            if labels.get(marks.JOB) == probe.job and not not_probes(probe, labels):
                return Listed(probe.job, self._seen(item), created)
        went = item["environment"].get("TRAINOPS_OUTPUT_REPO")
        if isinstance(went, str) and went in to:
            return Listed(to[went], self._seen(item), created, foreign=True)
        return None

    def _seen(self, item: Mapping[str, Any]) -> Observation:
        """The job as `observe` says it, without reading its output repo (`status --all` shows
        health, age and cost; adopt observes the job again)."""
        return self._observation({**item, "environment": {}})

    def claims(self, probe: Intent, seen: Observation) -> str:
        """Why the observed job is not `probe`'s (empty when it is), for `adopt` (DESIGN §20):
        its labels name this job, revision and input at its attempt, and this repository."""
        labels = seen.marks.get("labels")
        return not_probes(probe, labels if isinstance(labels, Mapping) else {})

    def attempt_of(self, seen: Observation) -> int | None:
        """`Attempted`: the attempt its `trainops-attempt` label names."""
        labels = seen.marks.get("labels")
        return attempt_in(labels) if isinstance(labels, Mapping) else None
