"""The Hugging Face Jobs provider (DESIGN §10): jobs through the official `huggingface_hub` client.

The Jobs API has no idempotency key, so every job carries labels naming its job, revision,
attempt and intent; adoption (§8) lists jobs by those labels, server-side. A create that got 429
is retried (the service said no); one whose answer was lost (5xx, dropped connection) raises
`OutcomeUnknown` and is adopted later. `observe` lists the active jobs of the namespace (paged by
the `Link` header), then the finished ones, newest first, only as far back as the asked jobs that
left the active stages reach, and inspects one by one only what neither list told.
Endpoint `HF_ENDPOINT` and token `HF_TOKEN` come from the environment, the namespace from
`trainops.yaml`.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import re
import time
from collections.abc import Callable, Collection, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from trainops.errors import Problem, ProviderError
from trainops.manifest import HF_DEFAULT_TIMEOUT, HuggingFaceSpec
from trainops.providers._errors import TokenScrubbedErrors
from trainops.providers.base import (
    Health,
    Intent,
    Observation,
    RunRef,
    Submission,
    marks_mismatch,
)
from trainops.repoid import scope
from trainops.retry import Budget, Policy, hint

if TYPE_CHECKING:
    from trainops.manifest import HuggingFaceConfig, Job

DEFAULT_ENDPOINT = "https://huggingface.co"
ENDPOINT_ENV, TOKEN_ENV = "HF_ENDPOINT", "HF_TOKEN"  # the official client's own variables
ACTIVE_STAGES = ("SCHEDULING", "RUNNING")
FINISHED_STAGES = ("COMPLETED", "ERROR", "CANCELED", "DELETED")
# Jobs a list page holds, for judging how many pages a walk may cost (the emulator's, and the
# Hub's usual page; the client hides page boundaries). Only the cost estimate uses it: another
# real size changes how soon a walk gives up for single inspects, never what observe answers.
LIST_PAGE = 100
LABEL = "trainops"  # every job trainops starts carries trainops=1
_HEALTH = {
    "SCHEDULING": Health.PENDING,
    "RUNNING": Health.RUNNING,
    "COMPLETED": Health.SUCCEEDED,
    "ERROR": Health.FAILED,
    "CANCELED": Health.CANCELED,
    "DELETED": Health.CANCELED,
}
_JOB_ID = re.compile(r"[0-9a-f]{24}")


class SubmissionRejected(ProviderError):
    """The service refused the job for a reason a resubmission cannot fix (400, 403, 422)."""

    retryable = False


def endpoint(environ: Mapping[str, str]) -> str:
    """Where the token goes: `HF_ENDPOINT` (as the official client reads it), else the Hub."""
    return (environ.get(ENDPOINT_ENV) or DEFAULT_ENDPOINT).rstrip("/")


def intent_id(job: str, revision: str, attempt: int, input_hash: str) -> str:
    """The label that names one intent: what the reconciler decided to submit."""
    text = f"{job}\0{revision}\0{attempt}\0{input_hash}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# `trainops.repoid.scope` of the repository that submitted it: hex digits, a value any label
# rule accepts (the service's rules for label values are not documented).
REPOSITORY_LABEL = "trainops-repository"


def labels_of(
    job: str, revision: str, attempt: int, input_hash: str, repository: str = ""
) -> dict[str, str]:
    """The labels a job carries: its ownership marks (DESIGN §9). Adoption filters by all but
    the repository (a job started before trainops labelled it must still be found)."""
    labels = {
        LABEL: "1",
        "trainops-job": job,
        "trainops-revision": revision,
        "trainops-attempt": str(attempt),
        "trainops-intent": intent_id(job, revision, attempt, input_hash),
    }
    if repository:
        labels[REPOSITORY_LABEL] = scope(repository)
    return labels


def not_owned(labels: Mapping[str, Any], intent: Intent, *, adopting: bool = False) -> str:
    """Why a job carrying `labels` is not `intent`'s run ("" when it is): every trainops label
    must say this job, revision, attempt and intent, and the repository label this
    repository. A job with no repository label was started by a trainops that did not write
    it yet: its other labels must match (a job of another repository that old cannot be told
    apart, and is as much this job's as its state file says). Not when `adopting`: a run found
    for an intent of this trainops was submitted with the repository label, and a job without
    one is anyone's in the namespace who copied the other labels (they are visible to all)."""
    want = labels_of(intent.job, intent.revision, intent.attempt, intent.input_hash)
    if not intent.input_hash:
        want.pop("trainops-intent")  # a record without one (never written by apply)
    if not any(k.startswith("trainops") for k in labels):
        return "it carries no trainops labels (someone else's job)"
    mismatch = marks_mismatch(want, labels, "label")
    if mismatch:
        return mismatch
    theirs = labels.get(REPOSITORY_LABEL)
    ours = scope(intent.repository)
    if theirs is None and adopting and intent.repository:
        return f"it has no {REPOSITORY_LABEL} label (an intent of this trainops always sets it)"
    if theirs is not None and theirs != ours:
        return (
            f"it was started for another repository ({REPOSITORY_LABEL}={str(theirs)[:40]!r}; "
            f"{intent.repository!r} is {ours!r})"
        )
    return ""


class HuggingFaceProvider(TokenScrubbedErrors):
    """Jobs on Hugging Face. The token is read from `HF_TOKEN` on first use and never appears in
    an error message."""

    adoption_hint = (
        "the next apply looks for the job by its labels (adoption) instead of submitting again"
    )

    name = "huggingface"
    # No documented bound on how soon a created job shows in the (label-filtered) list: a job
    # whose create answer was lost may still surface later. DESIGN §8's 10 minutes covers the
    # emulator's simulated list lag and leaves the service minutes of margin; a shorter grace
    # risks a second job for one attempt, a longer one only delays a resubmission.
    adoption_grace = 600.0

    def __init__(
        self,
        *,
        namespace: str | None = None,
        environ: Mapping[str, str] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        max_attempts: int = 6,
        max_backoff: float = 8.0,
        budget: Budget | None = None,
        clock_skew: float = 60.0,
        list_page: int = LIST_PAGE,
        default_timeout: int = HF_DEFAULT_TIMEOUT,
    ) -> None:
        self._environ = os.environ if environ is None else environ
        self.endpoint = endpoint(self._environ)
        self.namespace = namespace
        self._sleep = sleep
        self._rng = rng or random.Random()
        self.max_attempts = max_attempts
        self.max_backoff = max_backoff
        # The one retry layer (trainops.retry), honouring the Hub's `RateLimit: ...;t=N` and
        # `Retry-After`; waits are charged to the pass's budget.
        self.retry = Policy(
            budget=budget or Budget(sleep=sleep),
            max_attempts=max_attempts,
            base=0.5,
            cap=max_backoff,
            rng=self._rng,
        )
        self.clock_skew = clock_skew
        self.list_page = list_page
        self.default_timeout = default_timeout
        self._api: Any = None
        self._token = ""
        self.calls = 0  # HTTP requests made through the client (benchmarks)

    @classmethod
    def from_config(cls, config: HuggingFaceConfig, **kw: Any) -> HuggingFaceProvider:
        kw.setdefault("default_timeout", config.default_timeout)
        return cls(namespace=config.namespace, **kw)

    # ---- Provider protocol ------------------------------------------------------------------

    def unavailable(self) -> str:
        if not self._environ.get(TOKEN_ENV):
            return f"{TOKEN_ENV} is not set"
        if not self.namespace:
            return "providers.huggingface.namespace is not set in trainops.yaml"
        return ""

    def check(self, job: Job, lock: Any) -> list[Problem]:
        """Nothing of its own: the flavor (HF_FLAVORS) needs no disk, so `validate/jobs.py` checks
        it for every source, a commit's manifests too (this check runs on the working tree only)."""
        return []

    def submit(self, submission: Submission) -> RunRef:
        spec = submission.job.spec
        if not isinstance(spec, HuggingFaceSpec):
            raise ProviderError(f"job {submission.job.name!r} is not a Hugging Face job")
        api, namespace = self._client(), self._namespace()
        job, rev, attempt = submission.job.name, submission.revision, submission.attempt
        environment = {
            "TRAINOPS_JOB": job,
            "TRAINOPS_REVISION": rev,
            "TRAINOPS_ATTEMPT": str(attempt),
            "TRAINOPS_INPUT": json.dumps(dict(submission.input), sort_keys=True),
        }
        if spec.output_repo:
            environment["TRAINOPS_OUTPUT_REPO"] = spec.output_repo
        # spec.env values travel as secrets: the service keeps them out of the job's JSON.
        secrets = {n: self._environ[n] for n in spec.env if n in self._environ}
        what = f"creating the HF job of {job} (attempt {attempt})"
        for n in range(1, self.max_attempts + 1):
            try:
                self.calls += 1
                info = api.run_job(
                    image=spec.image,
                    command=list(spec.command),
                    env=environment,
                    secrets=secrets or None,
                    flavor=spec.hardware or "cpu-basic",
                    # Always a timeout: sent none, the service stops the job at 30 minutes.
                    timeout=job_timeout(spec, self.default_timeout),
                    labels=labels_of(
                        job, rev, attempt, submission.input_hash, submission.repository
                    ),
                    namespace=namespace,
                )
            except Exception as exc:
                status = _status(exc)
                if status == 429 and self._pause(n, exc):
                    continue
                if status == 429:
                    raise self._error(f"{what}: still rate limited after {n} attempts") from None
                if status in (400, 403, 404, 422):
                    raise SubmissionRejected(
                        self._redact(f"{what}: {status} {_detail(exc)}")
                    ) from None
                if status in (401,):
                    raise self._error(f"{what}: 401 the token was refused") from None
                if _never_sent(exc) and self._pause(n, exc):
                    continue  # nothing reached the service: trying again cannot make two jobs
                raise self._unknown(what, f"{status or type(exc).__name__}") from None
            if not _is_job_id(getattr(info, "id", None)):
                raise self._unknown(what, "the answer has no valid job id")
            created = info.created_at.timestamp() if info.created_at else time.time()
            return RunRef(str(info.id), created)
        raise self._error(f"{what}: gave up")  # pragma: no cover

    def observe(self, run_ids: Collection[str]) -> dict[str, Observation]:
        """One label-filtered list of the active stages (ceil(A / page) calls), then, when two or
        more asked jobs left them, the finished jobs newest first until those are all seen (the
        list's answer is what an inspect would say), and an inspect for any asked job neither
        list showed. A pass costs ceil(N / page) + 2 when the finished are among the newest.

        `run_ids` may map each id to when its job was created (unix seconds; the reconciler
        passes its records'): the walk then stops once it is past the oldest of them, and it
        never reads more pages than the inspects it saves."""
        wanted = {r for r in run_ids if _is_job_id(r)}
        found: dict[str, Observation] = {}
        if not wanted:
            return found
        for item in self._list({LABEL: "1"}, ACTIVE_STAGES):
            if item["id"] in wanted:
                found[item["id"]] = self._observation(item)
        missing = wanted - found.keys()
        if len(missing) > 1:  # one inspect answers for one job: a page must answer for more
            since = _created_times(run_ids, missing)
            for item in self._finished(missing, since):
                found[item["id"]] = self._observation(item)
        for run_id in sorted(wanted - found.keys()):
            one = self._get(run_id)
            if one is not None:
                found[run_id] = self._observation(one)
        return found

    def cancel(self, run_id: str) -> None:
        """Idempotent: a finished job is left as it is; an unknown one is ignored."""
        if not _is_job_id(run_id):
            return
        api, ns = self._client(), self._namespace()
        self._retrying("cancel job", lambda: api.cancel_job(job_id=run_id, namespace=ns))

    def logs(self, run_id: str, tail: int = 50) -> str:
        if not _is_job_id(run_id) or tail <= 0:
            return ""
        api, ns = self._client(), self._namespace()

        def fetch() -> list[str]:
            return list(api.fetch_job_logs(job_id=run_id, namespace=ns, tail=tail))

        lines = self._retrying("fetch job logs", fetch) or []
        return "\n".join(str(line).rstrip("\n") for line in lines[-tail:])

    def owns(self, intent: Intent, seen: Observation) -> str:
        """`Owned`: the job's labels, as observe read them, are this record's marks."""
        labels = seen.marks.get("labels")
        return not_owned(labels if isinstance(labels, Mapping) else {}, intent)

    def find(self, intent: Intent) -> RunRef | None:
        """Adoption: the job carrying this intent's labels (and this repository's, or none:
        `not_owned`), created at or after the intent (allowing `clock_skew`), not already bound
        to another run. The earliest wins."""
        labels = labels_of(intent.job, intent.revision, intent.attempt, intent.input_hash)
        picks: list[tuple[float, str]] = []
        for item in self._list(labels, None):
            created = item["created"]
            if created is None or item["id"] in intent.taken:
                continue
            if not_owned(item["labels"], intent, adopting=True):
                continue  # a server that ignored the filter, or another repository's job
            if created >= intent.created_at - self.clock_skew:
                picks.append((created, item["id"]))
        if not picks:
            return None
        created, run_id = min(picks)
        return RunRef(run_id, created)

    # ---- reads ------------------------------------------------------------------------------

    def _list(
        self, labels: Mapping[str, str], stages: Collection[str] | None
    ) -> list[dict[str, Any]]:
        """Every job matching, filtered server-side and paged by the client through `Link`."""
        api, ns = self._client(), self._namespace()

        def walk() -> list[dict[str, Any]]:
            return [
                _plain(info)
                for info in api.list_jobs(
                    labels=dict(labels), status=list(stages) if stages else None, namespace=ns
                )
            ]

        items = self._retrying("list jobs", walk, client_retries=True) or []
        return [i for i in items if _is_job_id(i.get("id"))]

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
                item = _plain(info)
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
            if _status(exc) in (401, 403):
                raise self._error(
                    f"Hugging Face: list jobs: {_status(exc)} {_detail(exc)}"
                ) from None
        return [i for i in seen if _is_job_id(i.get("id"))]

    def _get(self, run_id: str) -> dict[str, Any] | None:
        api, ns = self._client(), self._namespace()
        info = self._retrying(
            "inspect job", lambda: api.inspect_job(job_id=run_id, namespace=ns), missing_ok=True
        )
        if info is None or getattr(info, "id", None) != run_id:
            return None
        return _plain(info)

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
            marks={"labels": dict(item["labels"])},
        )

    def _repo_revision(self, repo: str) -> str:
        api = self._client()
        info = self._retrying("read the output repo", lambda: api.model_info(repo), missing_ok=True)
        sha = getattr(info, "sha", None)
        return sha if isinstance(sha, str) and re.fullmatch(r"[0-9a-f]{40}", sha) else ""

    # ---- HTTP -------------------------------------------------------------------------------

    def _client(self) -> Any:
        if self._api is not None:
            return self._api
        token = self._environ.get(TOKEN_ENV, "")
        if not token:
            raise ProviderError(
                f"no Hugging Face token: {TOKEN_ENV} is not set",
                f"export {TOKEN_ENV}=<token with the jobs permission>",
            )
        from huggingface_hub import HfApi

        self._token = token
        self._api = HfApi(endpoint=self.endpoint, token=token)
        return self._api

    def _namespace(self) -> str:
        if not self.namespace:
            # Without it the client asks the module-level whoami(), which ignores our endpoint.
            raise ProviderError(
                "providers.huggingface.namespace is not set",
                "set providers: {huggingface: {namespace: <user or org>}} in trainops.yaml",
            )
        return self.namespace

    def _retrying(
        self,
        what: str,
        call: Callable[[], Any],
        missing_ok: bool = True,
        client_retries: bool = False,
    ) -> Any:
        """An idempotent request, retried on 429, 5xx and transport errors by `trainops.retry`
        (the service's wait, else backoff). A 404 (`JobNotFoundError`, a missing repo) answers
        None. With `client_retries` (`list_jobs`: the client's `paginate` goes through its own
        `http_backoff`, which honours `RateLimit` and `Retry-After`) trainops adds no second
        loop: one layer retries."""
        for n in range(1, self.max_attempts + 1):
            try:
                self.calls += 1
                return call()
            except Exception as exc:
                status = _status(exc)
                if status == 404 and missing_ok:
                    return None
                if status is not None and status != 429 and status < 500:
                    raise self._error(f"Hugging Face: {what}: {status} {_detail(exc)}") from None
                if client_retries or not self._pause(n, exc):
                    raise self._error(
                        f"Hugging Face: {what}: {status or type(exc).__name__} after {n} attempts",
                        "the service may be degraded; run again later",
                    ) from None
        return None  # pragma: no cover

    def _pause(self, attempt: int, exc: Exception) -> bool:
        """Wait what the Hub said (`Retry-After`, `RateLimit: "api";r=0;t=N`), else back off;
        False when the attempts or the pass's wait budget are spent."""
        response = getattr(exc, "response", None)
        headers = getattr(response, "headers", None)
        return self.retry.pause(attempt, hint(headers) if headers is not None else None)


def job_timeout(spec: HuggingFaceSpec, default: int) -> int:
    """The seconds a job may run on the service: its `budget.max_duration`, else `default`."""
    return spec.budget.max_duration or default


def check_run(job: str, run: Any) -> str:
    """Why a recorded run cannot be an HF job of `job` (empty when it can)."""
    if run.run_id and not _is_job_id(run.run_id):
        return f"run id {run.run_id!r} is not a Hugging Face job id"
    for key, value in sorted(run.outputs.items()):
        if "://" in value or value.startswith("/"):
            return f"output {key!r} ({value}) is not a Hub revision"
    return ""


def _created_times(run_ids: Collection[str], ids: Collection[str]) -> dict[str, float]:
    """When each of `ids` was created, where `run_ids` is a mapping that says (finite numbers)."""
    if not isinstance(run_ids, Mapping):
        return {}
    times = {}
    for run_id in ids:
        value = run_ids.get(run_id)
        if isinstance(value, int | float) and math.isfinite(value):
            times[run_id] = float(value)
    return times


def _plain(info: Any) -> dict[str, Any]:
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


def _is_job_id(value: Any) -> bool:
    return isinstance(value, str) and _JOB_ID.fullmatch(value) is not None


def _status(exc: Exception) -> int | None:
    response = getattr(exc, "response", None)
    code = getattr(response, "status_code", None)
    return code if isinstance(code, int) else None


def _detail(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    try:
        text = str(response.headers.get("X-Error-Message") or "") if response is not None else ""
    except Exception:
        text = ""
    return text[:200]


def _never_sent(exc: Exception) -> bool:
    """A connection that was never made: the request cannot have reached the service."""
    names = {type(e).__name__ for e in _chain(exc)}
    return bool(names & {"ConnectError", "ConnectTimeout", "PoolTimeout"})


def _chain(exc: BaseException | None) -> list[BaseException]:
    out: list[BaseException] = []
    while exc is not None and len(out) < 10:
        out.append(exc)
        exc = exc.__cause__ or exc.__context__
    return out
