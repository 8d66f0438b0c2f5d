"""The Replicate provider (DESIGN §10): trainings through the official `replicate` client.

A create is never retried blindly: only a 429 (the service said no) is retried, after the wait
it names (`trainops.retry`: `ratelimit-reset`, the body's `~30s`, Retry-After); a create whose
outcome is unknown (timeout after sending, dropped connection, 5xx) raises `OutcomeUnknown` and
the run is adopted later through `find` (§8). trainops's loop is the only retry layer: the
client's RetryTransport is set to one try. Reads walk the
newest-first trainings list, so observing 1,000 runs costs about 10 calls, and parse raw JSON
because the client's `Training` model rejects the API's `aborted` status. A token bucket keeps
calls under Replicate's limits (3000 a minute, 600 for creates).
"""

from __future__ import annotations

import hashlib
import math
import os
import random
import re
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from trainops.errors import Problem, ProviderError
from trainops.lockfile import Lock, check_input
from trainops.manifest import ReplicateSpec, canonical_json
from trainops.providers._errors import TokenScrubbedErrors
from trainops.providers._replicate_files import ReplicateFiles
from trainops.providers.base import Health, Intent, Observation, RunRef, Submission
from trainops.retry import Budget, Policy, hint

if TYPE_CHECKING:
    import httpx

    from trainops.manifest import Job, ReplicateConfig

DEFAULT_BASE_URL = "https://api.replicate.com"
BASE_URL_ENV = "REPLICATE_BASE_URL"  # the official client's own variable (replicate/client.py)
DEFAULT_HARDWARE = "gpu-l40s"  # for a destination model created on first submit
LIMITS = {"create": 600, "default": 3000}  # requests a minute (Replicate's published limits)
PAGE_SIZE = 100

_HEALTH = {
    "starting": Health.PENDING,
    "processing": Health.RUNNING,
    "succeeded": Health.SUCCEEDED,
    "failed": Health.FAILED,
    "canceled": Health.CANCELED,
    "aborted": Health.FAILED,  # terminated before it started: a resubmission may well work
}
_TRAINING_ID = re.compile(r"[A-Za-z0-9_-]+")
_TIMESTAMP = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:?\d\d)?$")


class SubmissionRejected(ProviderError):
    """Replicate refused the training for a reason a resubmission of the same job cannot fix
    (input rejected by the trainer's schema, trainer version gone)."""

    retryable = False


class _NotFound(Exception):
    pass


# ---- pacing ---------------------------------------------------------------------------------


@dataclass
class _Bucket:
    rate: float  # tokens a second
    capacity: float
    tokens: float
    at: float | None = None


class Pacer:
    """Token buckets that keep calls under per-minute limits: in any 60 seconds a bucket grants
    at most `burst + share` of its limit (99% by default), and sustains `share` (94%)."""

    def __init__(
        self,
        limits: Mapping[str, int] = LIMITS,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        share: float = 0.94,
        burst: float = 0.05,
    ) -> None:
        self._clock, self._sleep = clock, sleep
        self._buckets = {
            name: _Bucket(limit * share / 60.0, max(1.0, limit * burst), max(1.0, limit * burst))
            for name, limit in limits.items()
        }

    def acquire(self, bucket: str) -> None:
        """Take one token, sleeping until there is one."""
        b = self._buckets[bucket]
        while True:
            now = self._clock()
            if b.at is not None:
                b.tokens = min(b.capacity, b.tokens + (now - b.at) * b.rate)
            b.at = now
            if b.tokens >= 1.0 - 1e-9:
                b.tokens -= 1.0
                return
            self._sleep((1.0 - b.tokens) / b.rate)

    def drain(self, bucket: str) -> None:
        """The service said slow down: start the bucket empty."""
        self._buckets[bucket].tokens = 0.0


# ---- the provider ---------------------------------------------------------------------------


def webhook_params(environ: Mapping[str, str]) -> dict[str, Any]:
    """With `TRAINOPS_PUBLIC_URL` set (a `trainops serve` reachable there), a training asks
    Replicate to POST its start and completion to the controller's webhook (DESIGN §17)."""
    public = environ.get("TRAINOPS_PUBLIC_URL", "").strip().rstrip("/")
    if not public.startswith(("http://", "https://")):  # `serve` refuses any other value
        return {}
    return {
        "webhook": f"{public}/webhooks/replicate",
        "webhook_events_filter": ["start", "completed"],
    }


def endpoint(environ: Mapping[str, str]) -> str:
    """Where the token goes: the environment's `REPLICATE_BASE_URL` (as the official client reads
    it), else Replicate itself. Never a file: a pull request could name its own host (§13)."""
    return (environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL).rstrip("/")


class ReplicateProvider(TokenScrubbedErrors, ReplicateFiles):
    """Trainings on Replicate. The token is read from the environment variable `token_env` on
    first use and never appears in an error message."""

    adoption_hint = (
        "the next apply looks for the training it may have created (adoption) instead of "
        "submitting again"
    )

    name = "replicate"
    adoption_grace = 600.0  # DESIGN §8: an intent with no visible run is lost after 10 minutes

    def __init__(
        self,
        *,
        token_env: str = "REPLICATE_API_TOKEN",
        environ: Mapping[str, str] | None = None,
        lock: Lock | None = None,
        default_hardware: str = DEFAULT_HARDWARE,
        timeout: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        pacer: Pacer | None = None,
        rng: random.Random | None = None,
        max_attempts: int = 5,
        max_backoff: float = 30.0,
        budget: Budget | None = None,
        clock_skew: float = 60.0,
        observe_extra_pages: int = 2,
        find_max_pages: int = 50,
    ) -> None:
        self._environ = os.environ if environ is None else environ
        self.base_url = endpoint(self._environ)
        self.token_env = token_env
        self.lock = lock
        self.default_hardware = default_hardware
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.max_backoff = max_backoff
        self.clock_skew = clock_skew  # how far Replicate's clock may trail ours (adoption)
        self.observe_extra_pages = observe_extra_pages
        self.find_max_pages = find_max_pages
        self.pacer = pacer or Pacer(clock=clock, sleep=sleep)
        self._sleep = sleep
        self._rng = rng or random.Random()
        # The one retry layer (trainops.retry): the client's own RetryTransport is switched off.
        self.retry = Policy(
            budget=budget or Budget(sleep=sleep),
            max_attempts=max_attempts,
            base=1.0,
            cap=max_backoff,
            rng=self._rng,
            wall=wall,
        )
        self._client_obj: Any = None
        self._transport: httpx.HTTPTransport | None = None
        self._token = ""
        self._retry_after: float | None = None
        self._destinations: set[str] = set()
        self._versions: dict[str, str] = {}
        self.wall = wall
        self._staged: dict[str, str] = {}

    @classmethod
    def from_config(cls, config: ReplicateConfig, **kw: Any) -> ReplicateProvider:
        return cls(token_env=config.token_env, **kw)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
        self._client_obj = self._transport = None

    def __enter__(self) -> ReplicateProvider:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- Provider protocol ------------------------------------------------------------------

    def unavailable(self) -> str:
        """Availability: without its token no call can be made (a fork's pull request, a
        newcomer's machine), so a plan shows the job Blocked rather than "to submit"."""
        return "" if self._environ.get(self.token_env) else f"{self.token_env} is not set"

    def check(self, job: Job, lock: Any) -> list[Problem]:
        """Offline: the job's input against the TrainingInput schema its lock entry pins."""
        spec = job.spec
        if not isinstance(spec, ReplicateSpec):
            return []
        lock = lock if isinstance(lock, Lock) else self.lock
        entry = lock.entry(spec.trainer) if lock is not None else None
        if entry is None:
            if ":" in spec.trainer:
                return []  # pinned in the manifest; its inputs are checked by the service
            problem = job.doc.problem(
                ("spec", "trainer"),
                f"trainer {spec.trainer} has no version and trainops.lock does not pin it",
                "run `trainops lock` and commit trainops.lock, or write owner/name:version",
            )
            return [replace(problem, job=job.name)]
        model = spec.trainer.partition(":")[0]
        return check_input(
            spec.input,
            entry.schema,
            job.doc.locate,
            job.file,
            job=job.name,
            trainer=model,
            data=tuple(spec.data),
        )

    def submit(self, submission: Submission) -> RunRef:
        """Create the destination model when missing (private), then exactly one training."""
        spec = submission.job.spec
        if not isinstance(spec, ReplicateSpec):
            raise ProviderError(f"job {submission.job.name!r} is not a Replicate job")
        model, version = self._trainer_version(spec.trainer)
        self._ensure_destination(spec.destination, spec.hardware or self.default_hardware)
        run_id, created = self._create(model, version, submission, spec.destination)
        return RunRef(run_id, _timestamp(created) or time.time())

    def observe(self, run_ids: Collection[str]) -> dict[str, Observation]:
        """Walk the newest-first list while the pages still reach back to the asked runs more
        cheaply than a GET each, then fetch only the rest one by one.

        `run_ids` may be a mapping of run id -> when it was created (unix seconds; the
        reconciler passes its records'): the choice is then made per page from how much time
        the pages seen so far spanned, so a shared account whose list is full of other people's
        trainings is still paged through when that is cheaper, and a run older than the pages
        reached is fetched singly, never missed. Without times, as many pages are read as
        the asked runs would fill, and `observe_extra_pages` more."""
        wanted = set(run_ids)
        since: dict[str, float] = {}
        if isinstance(run_ids, Mapping):
            since = {
                k: float(v)
                for k, v in run_ids.items()
                if isinstance(v, int | float) and math.isfinite(v)
            }
        found: dict[str, Observation] = {}
        walk = _Walk()
        url: str | None = "/v1/trainings"
        # Never more pages than GETs would have cost, whatever the pages say.
        cap = len(wanted) + self.observe_extra_pages
        while url and walk.pages < cap:
            missing = wanted - found.keys()
            if not missing or (walk.pages and not self._page_on(missing, since, walk, found)):
                break
            page = self._call("GET", url, "list trainings")
            items = _results(page, "list trainings")
            walk.read(items)
            for item in items:
                if item.get("id") in wanted:
                    found[item["id"]] = _observation(item)
            url = _next(page)
        for run_id in sorted(wanted - found.keys()):
            try:
                item = self._call("GET", _training(run_id), "get training")
            except _NotFound:
                continue
            found[run_id] = _observation(item, run_id)
        return found

    def _page_on(
        self,
        missing: set[str],
        since: Mapping[str, float],
        walk: _Walk,
        found: Mapping[str, Observation],
    ) -> bool:
        """Whether reading more pages is expected to cost fewer calls than a GET for each run
        still missing. One page costs what one GET does."""
        if len(missing) < 2:
            return False
        timed = sorted((since[r] for r in missing if r in since), reverse=True)
        per_page = walk.seconds_per_page()
        if timed and per_page is not None:
            # Plan: page back far enough to reach the k newest missing runs, GET the others.
            untimed = len(missing) - len(timed)
            best = len(missing)  # stop now: a GET each
            for k, created in enumerate(timed, start=1):
                behind = walk.oldest - created + self.clock_skew  # type: ignore[operator]
                pages = max(1, math.ceil(behind / per_page)) if behind > 0 else 1
                best = min(best, pages + (len(timed) - k) + untimed)
            return best < len(missing)
        # No times to judge by: the pages the asked runs would fill, and a few more.
        asked = len(found) + len(missing)
        return walk.pages < math.ceil(asked / PAGE_SIZE) + self.observe_extra_pages

    def cancel(self, run_id: str) -> None:
        """Idempotent: a training already terminal is answered as it is; an unknown one is
        ignored."""
        try:
            self._call("POST", f"{_training(run_id)}/cancel", "cancel training")
        except _NotFound:
            return

    def logs(self, run_id: str, tail: int = 50) -> str:
        try:
            data = self._call("GET", _training(run_id), "get training")
        except _NotFound:
            return ""
        lines = str(data.get("logs") or "").splitlines()
        return "\n".join(lines[-tail:]) if tail > 0 else ""

    def deploy(self, deployment: str, version: str) -> str:
        """`Deploys`: read the deployment's current release; update it (the official client's
        `deployments.update`) only when it serves another version. An update is safe to repeat,
        so it is retried on 429, 5xx and transport errors like a read."""
        import httpx
        from replicate.exceptions import ReplicateError

        owner, _, name = deployment.partition("/")
        model, _, version_id = version.partition(":")
        if not version_id:
            raise self._error(f"no model version to deploy to {deployment} (got {version!r})")
        try:
            current = self._call("GET", f"/v1/deployments/{owner}/{name}", "get deployment")
        except _NotFound:
            raise self._error(
                f"Replicate deployment {deployment} does not exist",
                "create it on replicate.com (or with the API) first; trainops moves its "
                "release, it does not create deployments",
            ) from None
        release = current.get("current_release")
        if isinstance(release, dict) and release.get("version") == version_id:
            return f"deployment {deployment} already serves {version}"
        client = self._client()
        for attempt in range(1, self.max_attempts + 1):
            self.pacer.acquire("default")
            try:
                client.deployments.update(owner, name, version=version_id)
                return f"deployment {deployment} now serves {version}"
            except ReplicateError as exc:
                if exc.status != 429 and (exc.status or 0) < 500:
                    raise self._error(
                        f"cannot update deployment {deployment} to {model}:{version_id}: "
                        f"{_reason(exc)}",
                        "the token's account must own the deployment, and the version must "
                        "be of the deployment's model",
                    ) from None
                failure = _reason(exc)
            except (httpx.HTTPError, ValueError) as exc:
                failure = type(exc).__name__
            if not self._pause(attempt):
                raise self._error(
                    f"cannot update deployment {deployment}: {failure} after {attempt} attempts"
                )
        raise self._error(f"cannot update deployment {deployment}")  # pragma: no cover

    def owns(self, intent: Intent, seen: Observation) -> str:
        """`Owned`: Replicate keeps no labels, so a training is this record's when it was made
        with the recorded trainer (model, and version when known), through the API (not the
        website), no earlier than the intent (allowing `clock_skew`), towards the recorded
        destination when its output names one, and with the recorded input hash while its
        input is still kept (the API removes a training's input after a while: then the
        other marks decide)."""
        item = seen.marks
        model, _, version = intent.trainer.partition(":")
        if not model:
            return "its record names no trainer to compare the training with"
        if item.get("model") != model:
            return f"it was made with {str(item.get('model'))[:80]!r}, not {model!r}"
        if version and len(version) < 64:
            version = self._known_version(intent.trainer) or version
        if version and not str(item.get("version", "")).startswith(version):
            return f"it was made with another version of {model}"
        if item.get("source") == "web":
            return "it was started on the website, not by trainops"
        created = _timestamp(item.get("created_at"))
        if created is None or created < intent.created_at - self.clock_skew:
            return "it was created before this job's intent"
        output = item.get("output")
        produced = output.get("version") if isinstance(output, Mapping) else None
        went = produced.partition(":")[0] if isinstance(produced, str) else ""
        if went and intent.destination and went != intent.destination:
            return f"its output goes to {went[:80]!r}"
        given = item.get("input")
        if isinstance(given, Mapping) and given and intent.input_hash:
            probe = Intent(
                intent.job, intent.revision, intent.attempt, intent.input_hash, 0.0, self.name
            )
            if not _matches({"input": given}, "", "", probe, self.file_digests):
                return "its input is not the one this job's record says it was given"
        return ""

    def find(self, intent: Intent) -> RunRef | None:
        """Adoption: the training this intent created — same trainer (and version when known),
        same input hash, destination not contradicted, created at or after the intent (allowing
        `clock_skew`), not `intent.taken`. Prefers the earliest created after the intent."""
        model, _, version = intent.trainer.partition(":")
        if version and len(version) < 64:
            version = self._known_version(intent.trainer) or version
        cutoff = intent.created_at - self.clock_skew
        seen: list[dict[str, str]] = []

        def files() -> Mapping[str, str]:
            # A training's input holds its data's file URL where the intent recorded the
            # package digest (DESIGN §18): the account's files map one to the other.
            if not seen:
                seen.append(self.file_digests())
            return seen[0]

        after: list[tuple[float, str]] = []
        before: list[tuple[float, str]] = []
        url: str | None = "/v1/trainings"
        for _ in range(self.find_max_pages):
            if not url:
                break
            page = self._call("GET", url, "list trainings")
            reached = False
            for item in _results(page, "list trainings"):
                created = _timestamp(item.get("created_at"))
                if created is None or not _is_training_id(item.get("id")):
                    continue  # never adopt what cannot be named
                if created < cutoff:
                    reached = True
                    continue
                if item.get("id") not in intent.taken and _matches(
                    item, model, version, intent, files
                ):
                    (after if created >= intent.created_at else before).append(
                        (created, item["id"])
                    )
            if reached:
                break
            url = _next(page)
        else:
            if url:
                raise ProviderError(
                    f"searched {self.find_max_pages} pages of trainings without reaching the "
                    f"time of {intent.job}'s submission; not adopting blindly",
                    "run apply again later, or cancel stray trainings on replicate.com",
                )
        pick = min(after) if after else (max(before) if before else None)
        return RunRef(pick[1], pick[0]) if pick else None

    # ---- submit ------------------------------------------------------------------------------

    def _trainer_version(self, trainer: str) -> tuple[str, str]:
        model, _, version = trainer.partition(":")
        if len(version) == 64:
            return model, version
        known = self._known_version(trainer)
        if known:
            return model, known
        if not version:
            raise ProviderError(
                f"trainer {trainer} has no version and trainops.lock does not pin it",
                "run `trainops lock` and commit trainops.lock, or write owner/name:version",
            )
        owner, _, name = model.partition("/")
        url: str | None = f"/v1/models/{owner}/{name}/versions"
        matches: list[str] = []
        try:
            while url:
                page = self._call("GET", url, "list versions")
                matches += [
                    v["id"]
                    for v in _results(page, "list versions")
                    if isinstance(v.get("id"), str) and v["id"].startswith(version)
                ]
                url = _next(page)
        except _NotFound:
            raise SubmissionRejected(f"trainer {model} does not exist on Replicate") from None
        if len(matches) != 1:
            raise SubmissionRejected(
                f"trainer {trainer}: {len(matches) or 'no'} versions of {model} start with "
                f"{version}",
                "write the full version id",
            )
        self._versions[trainer] = matches[0]
        return model, matches[0]

    def _known_version(self, trainer: str) -> str | None:
        if trainer in self._versions:
            return self._versions[trainer]
        entry = self.lock.entry(trainer) if self.lock is not None else None
        return entry.version if entry is not None else None

    def _ensure_destination(self, destination: str, hardware: str) -> None:
        if destination in self._destinations:
            return
        owner, _, name = destination.partition("/")
        try:
            self._call("GET", f"/v1/models/{owner}/{name}", "get destination model")
        except _NotFound:
            self._create_model(owner, name, hardware)
        self._destinations.add(destination)

    def _create_model(self, owner: str, name: str, hardware: str) -> None:
        import httpx
        from replicate.exceptions import ReplicateError

        client = self._client()
        for attempt in range(1, self.max_attempts + 1):
            self.pacer.acquire("default")
            try:
                client.models.create(
                    owner=owner, name=name, visibility="private", hardware=hardware
                )
                return
            except ReplicateError as exc:
                if exc.status == 409:
                    return  # created meanwhile (by us, before a lost answer, or by a racer)
                if exc.status != 429 and (exc.status or 0) < 500:
                    raise self._error(
                        f"cannot create destination model {owner}/{name}: {_reason(exc)}",
                        f"the token's account must be {owner} or a member "
                        f"of it; or create the model on replicate.com",
                    ) from None
                failure = _reason(exc)
            except httpx.HTTPError as exc:
                failure = type(exc).__name__
            if not self._pause(attempt):
                raise self._error(
                    f"cannot create destination model {owner}/{name}: {failure} "
                    f"after {attempt} attempts"
                )

    def _create(
        self, model: str, version: str, submission: Submission, destination: str
    ) -> tuple[str, str | None]:
        import httpx
        from replicate.exceptions import ReplicateError

        client = self._client()
        what = f"creating the training of {submission.job.name} (attempt {submission.attempt})"
        for attempt in range(1, self.max_attempts + 1):
            self.pacer.acquire("create")
            self._retry_after = None
            try:
                training = client.trainings.create(
                    model=model,
                    version=version,
                    input=dict(submission.input),
                    destination=destination,
                    **webhook_params(self._environ),
                )
            except ReplicateError as exc:
                if exc.status == 429:
                    self.pacer.drain("create")
                    if not self._pause(attempt):
                        raise self._error(
                            f"{what}: still rate limited after {attempt} attempts",
                            "run apply again later",
                        ) from None
                    continue
                if (exc.status or 0) >= 500:
                    raise self._unknown(what, f"Replicate answered {exc.status}") from None
                if exc.status == 404 and "destination" in (exc.detail or ""):
                    self._destinations.discard(destination)
                    raise self._error(f"{what}: {_reason(exc)}") from None
                cls = SubmissionRejected if exc.status in (400, 404, 422) else ProviderError
                raise cls(self._redact(f"{what}: {_reason(exc)}")) from None
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
                # Nothing was sent: trying again cannot make a second training.
                if not self._pause(attempt):
                    raise self._error(
                        f"{what}: cannot reach Replicate at {self.base_url} ({type(exc).__name__})"
                    ) from None
            except httpx.HTTPError as exc:
                raise self._unknown(what, type(exc).__name__) from None
            except Exception as exc:  # an answer the client could not read: it was created
                raise self._unknown(what, f"unreadable answer ({type(exc).__name__})") from None
            else:
                if not _is_training_id(training.id):
                    # Accepted, but named no run we could ever observe: adoption finds it.
                    raise self._unknown(what, "the answer has no valid training id")
                return str(training.id), training.created_at
        raise self._error(f"{what}: gave up")  # pragma: no cover - the loop always returns

    # ---- HTTP --------------------------------------------------------------------------------

    def _client(self) -> Any:
        if self._client_obj is not None:
            return self._client_obj
        import httpx
        from replicate.client import Client

        token = self._environ.get(self.token_env, "")
        if not token:
            raise ProviderError(
                f"no Replicate API token: the environment variable {self.token_env} is not set",
                f"export {self.token_env}=<token> (replicate.com/account/api-tokens); the "
                "variable's name is `providers.replicate.token_env` in trainops.yaml",
            )
        self._token = token
        self._transport = httpx.HTTPTransport()
        self._client_obj = Client(
            api_token=token,
            base_url=self.base_url,
            timeout=httpx.Timeout(self.timeout, connect=min(self.timeout, 10.0)),
            transport=self._transport,
            event_hooks={"response": [self._remember]},
        )
        # One retry layer only: the client wraps every transport in its RetryTransport (10 tries
        # of GET/PUT/DELETE on 429/503/504, numeric Retry-After uncapped, real sleeps; replicate
        # 1.0.7 client.py). trainops's loop is the layer, so the client's makes one try.
        from replicate.client import RetryTransport

        outer = getattr(self._client_obj._client, "_transport", None)
        if isinstance(outer, RetryTransport):
            outer.max_attempts = 1
        return self._client_obj

    def _remember(self, response: httpx.Response) -> None:
        if response.status_code == 429:
            response.read()
            self._retry_after = hint(response.headers, response.text, wall=self.wall)

    def _call(self, method: str, url: str, what: str) -> Any:
        """An idempotent request (GETs, cancel) as raw JSON, with capped exponential backoff and
        jitter on 5xx, 429 and transport errors. `_NotFound` on 404."""
        import httpx
        from replicate.exceptions import ReplicateError

        client = self._client()
        url = self._same_origin(url)
        for attempt in range(1, self.max_attempts + 1):
            self.pacer.acquire("default")
            self._retry_after = None
            try:
                answer = client._request(method, url).json()
            except ReplicateError as exc:
                if exc.status == 404:
                    raise _NotFound(url) from None
                if exc.status != 429 and (exc.status or 0) < 500:
                    raise self._error(f"Replicate: {what}: {_reason(exc)}") from None
                failure = _reason(exc)
            except (httpx.HTTPError, ValueError) as exc:
                failure = type(exc).__name__
            else:
                if not isinstance(answer, dict):
                    raise self._error(
                        f"Replicate: {what}: the answer is {type(answer).__name__}, not a JSON "
                        "object"
                    )
                return answer
            if not self._pause(attempt):
                raise self._error(
                    f"Replicate: {what}: {failure} after {attempt} attempts",
                    "the service may be degraded; run again later",
                )
        raise self._error(f"Replicate: {what}: gave up")  # pragma: no cover

    def _pause(self, attempt: int) -> bool:
        """Wait before another try: what the last 429 said (Retry-After, `ratelimit-reset`, the
        body's `~30s`), else backoff; False when the attempts or the pass's budget are spent."""
        return self.retry.pause(attempt, self._retry_after)

    def _same_origin(self, url: str) -> str:
        """Follow absolute `next` links only to the configured host: the client would send the
        token to any host a link names."""
        parts = urlsplit(url)
        base = urlsplit(self.base_url)
        if not parts.scheme or (parts.scheme, parts.netloc) == (base.scheme, base.netloc):
            return url
        return parts.path + (f"?{parts.query}" if parts.query else "")


# ---- JSON -> values ---------------------------------------------------------------------------


def check_run(job: str, run: Any) -> str:
    """Why a recorded run cannot be a Replicate training (empty when it can): an id Replicate
    could have issued, and outputs that are URLs or references, never a local file."""
    if run.run_id and not _TRAINING_ID.fullmatch(run.run_id):
        return f"run id {run.run_id!r} is not a Replicate training id"
    for key, value in sorted(run.outputs.items()):
        url = "://" in value
        if value.startswith("/") or (url and not value.startswith(("https://", "http://"))):
            return f"output {key!r} ({value}) is not a Replicate output"
    return ""


class _Walk:
    """What the list pages read so far showed: how many, and the span of creation times."""

    __slots__ = ("items", "newest", "oldest", "pages")

    def __init__(self) -> None:
        self.pages = 0
        self.items = 0
        self.newest: float | None = None
        self.oldest: float | None = None

    def read(self, items: list[Mapping[str, Any]]) -> None:
        self.pages += 1
        self.items += len(items)
        for item in items:
            created = _timestamp(item.get("created_at"))
            if created is None:
                continue
            self.newest = created if self.newest is None else max(self.newest, created)
            self.oldest = created if self.oldest is None else min(self.oldest, created)

    def seconds_per_page(self) -> float | None:
        """Creation time one page of the list spans, judged from the pages read; None when they
        show no span to judge by (a page of ties tells nothing of how far back the next goes)."""
        if self.newest is None or self.oldest is None or self.items < 2:
            return None
        span = self.newest - self.oldest
        if span <= 0:
            return None
        return span / (self.items - 1) * PAGE_SIZE


# What `owns` reads of a training (the API returns no destination field: see the ref notes).
_MARKS = ("model", "version", "input", "created_at", "source", "output")


def _training(run_id: str) -> str:
    if not _TRAINING_ID.fullmatch(run_id):
        raise _NotFound(run_id)  # not an id Replicate could have issued
    return f"/v1/trainings/{run_id}"


def _results(page: Mapping[str, Any], what: str) -> list[Mapping[str, Any]]:
    """The items of a list page, each an object (a provider's answer is input too)."""
    results = page.get("results") or []
    if not isinstance(results, list) or not all(isinstance(i, dict) for i in results):
        raise ProviderError(f"Replicate: {what}: 'results' is not a list of objects")
    return results


def _next(page: Mapping[str, Any]) -> str | None:
    link = page.get("next")
    return link if isinstance(link, str) and link else None


def _is_training_id(value: Any) -> bool:
    return isinstance(value, str) and _TRAINING_ID.fullmatch(value) is not None


def _observation(item: Mapping[str, Any], asked: str | None = None) -> Observation:
    """A training's JSON as an `Observation`; `ProviderError` when it has no valid id (or not
    the id asked for): nothing is recorded or acted on for an answer that names no run."""
    if not _is_training_id(item.get("id")) or (asked is not None and item["id"] != asked):
        got = item.get("id")
        raise ProviderError(
            f"Replicate answered a training without a valid id (asked for {asked or 'a list'}, "
            f"got id {got!r:.80})",
            "the service answered out of shape; run again later",
        )
    status = str(item.get("status", ""))
    # An unknown status is taken as not finished: never resubmit on a word we do not know.
    health = _HEALTH.get(status, Health.PENDING)
    output = item.get("output")
    outputs = {}
    if isinstance(output, Mapping):
        outputs = {k: output[k] for k in ("weights", "version") if isinstance(output.get(k), str)}
    metrics = item.get("metrics") if isinstance(item.get("metrics"), Mapping) else {}
    billed = metrics.get("predict_time") if metrics else None
    error = str(item.get("error") or "").strip().splitlines()
    message = error[-1] if error else ""
    if status == "aborted" and not message:
        message = "aborted by Replicate before it started"
    return Observation(
        run_id=str(item["id"]),
        health=health,
        started_at=_timestamp(item.get("started_at")),
        completed_at=_timestamp(item.get("completed_at")),
        billed_seconds=float(billed) if isinstance(billed, int | float) else None,
        outputs=outputs,
        metrics=_metrics(metrics or {}, output) if health is Health.SUCCEEDED else {},
        error=message[:500],
        retryable=True,
        marks={k: item.get(k) for k in _MARKS},
    )


# Replicate's own timing of a training, not what the training measured: `predict_time` (what it
# bills) and `total_time` (queue included). The API's docs: "a `metrics` object with a
# `predict_time` property ... will also include a `total_time` property" (shared/ref/README.md).
_TIMING = frozenset({"predict_time", "total_time"})


def _metrics(training: Mapping[str, Any], output: Any) -> dict[str, float]:
    """DESIGN §19: the training's metrics beyond Replicate's own timing (`_TIMING`), then any
    under `metrics` in its output; numbers only, bounded (`trainops.metrics`)."""
    from trainops import metrics

    found = {k: v for k, v in training.items() if k not in _TIMING}
    if isinstance(output, Mapping) and isinstance(output.get("metrics"), Mapping):
        found.update(output["metrics"])
    return metrics.clean(found)


def _matches(
    item: Mapping[str, Any],
    model: str,
    version: str,
    intent: Intent,
    files: Callable[[], Mapping[str, str]] | None = None,
) -> bool:
    if model and item.get("model") != model:
        return False
    if version and not str(item.get("version", "")).startswith(version):
        return False
    if not intent.input_hash or not isinstance(item.get("input"), Mapping):
        return False
    given = item["input"]
    if not _same_input(given, intent.input_hash):
        from trainops.data import placeholder_of

        uploaded = files() if files and any(_is_url(v) for v in given.values()) else {}
        staged = {
            k: placeholder_of(uploaded[v]) if isinstance(v, str) and v in uploaded else v
            for k, v in given.items()
        }
        if staged == given or not _same_input(staged, intent.input_hash):
            return False
    output = item.get("output")
    produced = output.get("version") if isinstance(output, Mapping) else None
    # The API's trainings carry no `destination` field (shared/ref/README.md): where a training
    # went is known from the version its output names, once it has one.
    destination = str(produced).partition(":")[0] if isinstance(produced, str) else None
    return not (intent.destination and destination and destination != intent.destination)


def _same_input(given: Mapping[str, Any], input_hash: str) -> bool:
    return hashlib.sha256(canonical_json(given).encode()).hexdigest().startswith(input_hash)


def _is_url(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(("https://", "http://"))


def _timestamp(value: Any) -> float | None:
    """Replicate's ISO 8601 times (nanoseconds allowed) -> unix seconds."""
    if not isinstance(value, str):
        return None
    m = _TIMESTAMP.match(value.strip())
    if m is None:
        return None
    fraction = (m.group(2) or "")[:7]
    zone = m.group(3) or "Z"
    zone = "+00:00" if zone == "Z" else zone
    try:
        return datetime.fromisoformat(m.group(1) + fraction + zone).timestamp()
    except ValueError:
        return None

    try:
        return min(max(float(value.strip()), 0.0), 300.0)
    except ValueError:
        return None


def _reason(exc: Any) -> str:
    """`422 - input.steps: Must be ...; - input.x: ...` from a problem+json error."""
    lines = [line.strip() for line in str(exc.detail or exc.title or "").splitlines()]
    return f"{exc.status} {'; '.join(line for line in lines if line)}".strip()
