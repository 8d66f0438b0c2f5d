"""What the provider reads of jobs: `observe` lists the active jobs of the namespace (paged by the
`Link` header), then the finished ones, newest first, only as far back as the asked jobs that
left the active stages reach, and inspects one by one only what neither list told; a job's
answer as plain values and as an `Observation` (with its output repo's revision)."""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any

from trainops.providers.base import Observation
from trainops.providers.huggingface.http import HubCalls, detail_of, is_job_id, status_of
from trainops.providers.huggingface.labels import LABEL
from trainops.state.model import Health

ACTIVE_STAGES = ("SCHEDULING", "RUNNING")
FINISHED_STAGES = ("COMPLETED", "ERROR", "CANCELED", "DELETED")
# Jobs a list page holds, for judging how many pages a walk may cost (the emulator's, and the
# Hub's usual page; the client hides page boundaries). Only the cost estimate uses it: another
# real size changes how soon a walk gives up for single inspects, never what observe answers.
LIST_PAGE = 100
_HEALTH = {
    "SCHEDULING": Health.PENDING,
    "RUNNING": Health.RUNNING,
    "COMPLETED": Health.SUCCEEDED,
    "ERROR": Health.FAILED,
    "CANCELED": Health.CANCELED,
    "DELETED": Health.CANCELED,
}


class Observer(HubCalls):
    """`observe` and the reads under it (`find`'s list too)."""

    clock_skew: float
    list_page: int

    def observe(self, run_ids: Collection[str]) -> dict[str, Observation]:
        """One label-filtered list of the active stages (ceil(A / page) calls), then, when two or
        more asked jobs left them, the finished jobs newest first until those are all seen (the
        list's answer is what an inspect would say), and an inspect for any asked job neither
        list showed. A pass costs ceil(N / page) + 2 when the finished are among the newest.

        `run_ids` may map each id to when its job was created (unix seconds; the reconciler
        passes its records'): the walk then stops once it is past the oldest of them, and it
        never reads more pages than the inspects it saves."""
        wanted = {r for r in run_ids if is_job_id(r)}
        found: dict[str, Observation] = {}
        if not wanted:
            return found
        for item in self._list({LABEL: "1"}, ACTIVE_STAGES):
            if item["id"] in wanted:
                found[item["id"]] = self._observation(item)
        missing = wanted - found.keys()
        if len(missing) > 1:  # one inspect answers for one job: a page must answer for more
            since = created_times(run_ids, missing)
            for item in self._finished(missing, since):
                found[item["id"]] = self._observation(item)
        for run_id in sorted(wanted - found.keys()):
            one = self._get(run_id)
            if one is not None:
                found[run_id] = self._observation(one)
        return found

    def _list(
        self, labels: Mapping[str, str], stages: Collection[str] | None
    ) -> list[dict[str, Any]]:
        """Every job matching, filtered server-side and paged by the client through `Link`."""
        api, ns = self._client(), self._namespace()

        def walk() -> list[dict[str, Any]]:
            return [
                plain(info)
                for info in api.list_jobs(
                    labels=dict(labels), status=list(stages) if stages else None, namespace=ns
                )
            ]

        items = self._retrying("list jobs", walk, client_retries=True) or []
        return [i for i in items if is_job_id(i.get("id"))]

    def _finished(
        self, missing: Collection[str], since: Mapping[str, float]
    ) -> list[dict[str, Any]]:
        """The asked jobs among the finished ones, read newest first while that pays. It stops
        when all are seen; past the oldest asked job's creation (less `clock_skew`), while the
        list keeps newest-first order; after two pages in a row that held none of them (those
        left are further back than the jobs that just finished); and after `len(missing) - 1`
        pages (never more calls than an inspect each). A listing that fails leaves the rest to
        the inspects."""
        api, ns = self._client(), self._namespace()
        left = set(missing)
        budget = len(left) - 1
        oldest = min(since.values()) - self.clock_skew if len(since) == len(left) else None
        seen: list[dict[str, Any]] = []
        page = max(1, self.list_page)
        fruitless = hits = 0  # pages in a row without an asked job; asked jobs on this page
        try:
            self.calls += 1
            jobs = api.list_jobs(labels={LABEL: "1"}, status=list(FINISHED_STAGES), namespace=ns)
            previous: float | None = None
            for read, info in enumerate(jobs, start=1):
                item = plain(info)
                if item["id"] in left:
                    left.discard(item["id"])
                    seen.append(item)
                    hits += 1
                created = item["created"]
                if created is None or (previous is not None and created > previous):
                    oldest = None  # not newest first after all: the page counts bound the walk
                previous = created if created is not None else previous
                if not left or (oldest is not None and created is not None and created < oldest):
                    break
                if read % page == 0:  # a page ends here: is the next one worth a call?
                    fruitless, hits = (0 if hits else fruitless + 1), 0
                    if fruitless >= 2 or read // page >= budget:
                        break
        except Exception as exc:
            if status_of(exc) in (401, 403):
                raise self._error(
                    f"Hugging Face: list jobs: {status_of(exc)} {detail_of(exc)}"
                ) from None
        return [i for i in seen if is_job_id(i.get("id"))]

    def _get(self, run_id: str) -> dict[str, Any] | None:
        api, ns = self._client(), self._namespace()
        info = self._retrying(
            "inspect job", lambda: api.inspect_job(job_id=run_id, namespace=ns), missing_ok=True
        )
        if info is None or getattr(info, "id", None) != run_id:
            return None
        return plain(info)

    def _observation(self, item: Mapping[str, Any]) -> Observation:
        stage = str(getattr(item["stage"], "value", item["stage"]))
        health = _HEALTH.get(stage, Health.PENDING)  # a stage we do not know: not finished
        started, finished = item["started"], item["finished"]
        billed = finished - started if started is not None and finished is not None else None
        outputs: dict[str, str] = {}
        repo = item["environment"].get("TRAINOPS_OUTPUT_REPO")
        if health is Health.SUCCEEDED and isinstance(repo, str):
            sha = self._repo_revision(repo)
            if sha:
                outputs["weights"] = f"{repo}@{sha}"
        error = ""
        if health is Health.FAILED:
            lines = item["message"].strip().splitlines()
            error = (lines[-1] if lines else f"the job ended in {stage}")[:500]
        elif stage == "DELETED":  # someone deleted it on the Hub: canceled, never resubmitted
            error = "the job was deleted on Hugging Face"
        return Observation(
            run_id=str(item["id"]),
            health=health,
            started_at=started,
            completed_at=finished,
            billed_seconds=max(0.0, billed) if billed is not None else None,
            outputs=outputs,
            error=error,
            created_at=item["created"],
            marks={"labels": dict(item["labels"])},
        )

    def _repo_revision(self, repo: str) -> str:
        api = self._client()
        info = self._retrying("read the output repo", lambda: api.model_info(repo), missing_ok=True)
        sha = getattr(info, "sha", None)
        return sha if isinstance(sha, str) and re.fullmatch(r"[0-9a-f]{40}", sha) else ""


def created_times(run_ids: Collection[str], ids: Collection[str]) -> dict[str, float]:
    """When each of `ids` was created, where `run_ids` is a mapping that says (finite numbers)."""
    if not isinstance(run_ids, Mapping):
        return {}
    times = {}
    for run_id in ids:
        value = run_ids.get(run_id)
        if isinstance(value, int | float) and math.isfinite(value):
            times[run_id] = float(value)
    return times


def plain(info: Any) -> dict[str, Any]:
    """The fields of a `JobInfo` trainops reads, as plain values (the answer is input)."""

    def ts(value: Any) -> float | None:
        return value.timestamp() if isinstance(value, datetime) else None

    status = getattr(info, "status", None)
    env = getattr(info, "environment", None)
    labels = getattr(info, "labels", None)
    return {
        "id": getattr(info, "id", None),
        "created": ts(getattr(info, "created_at", None)),
        "started": ts(getattr(info, "started_at", None)),
        "finished": ts(getattr(info, "finished_at", None)),
        "stage": str(getattr(status, "stage", "") or ""),
        "message": str(getattr(status, "message", "") or ""),
        "environment": env if isinstance(env, dict) else {},
        "labels": labels if isinstance(labels, dict) else {},
    }
