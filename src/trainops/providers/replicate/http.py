"""Replicate's HTTP API as trainops calls it: one official client per provider, pacing under the
published limits, the one retry layer, and errors scrubbed of the token.

trainops's loop is the only retry layer: the client's RetryTransport is set to one try. A token
bucket keeps calls under Replicate's limits (3000 a minute, 600 for creates). Every part of the
provider (trainings, files, models, deployments) calls through one `Api`.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from trainops.errors import OutcomeUnknown, ProviderError
from trainops.providers._errors import TokenScrubbedErrors
from trainops.retry import Policy, hint

if TYPE_CHECKING:
    import httpx

DEFAULT_BASE_URL = "https://api.replicate.com"
BASE_URL_ENV = "REPLICATE_BASE_URL"  # the official client's own variable (replicate/client.py)
LIMITS = {"create": 600, "default": 3000}  # requests a minute (Replicate's published limits)
PAGE_SIZE = 100

_TIMESTAMP = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:?\d\d)?$")


class NotFound(Exception):
    """The service answered 404 (or the id is not one it could have issued)."""


def endpoint(environ: Mapping[str, str]) -> str:
    """Where the token goes: the environment's `REPLICATE_BASE_URL` (as the official client reads
    it), else Replicate itself. Never a file: a pull request could name its own host (§13)."""
    return (environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL).rstrip("/")


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


# ---- the API --------------------------------------------------------------------------------


class Api(TokenScrubbedErrors):
    """The official client, opened on first use with the token from `token_env`, which never
    appears in an error message (`error`, `unknown`, `redact`)."""

    adoption_hint = (
        "the next apply looks for the training it may have created (adoption) instead of "
        "submitting again"
    )

    def __init__(
        self,
        *,
        environ: Mapping[str, str],
        token_env: str,
        timeout: float,
        pacer: Pacer,
        retry: Policy,
        max_attempts: int,
        wall: Callable[[], float],
    ) -> None:
        self.environ = environ
        self.base_url = endpoint(environ)
        self.token_env = token_env
        self.timeout = timeout
        self.pacer = pacer
        self.retry = retry
        self.max_attempts = max_attempts
        self.wall = wall
        # What the last 429 said to wait (set by the response hook, reset before each try).
        self.retry_after: float | None = None
        self._client_obj: Any = None
        self._transport: httpx.HTTPTransport | None = None

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
        self._client_obj = self._transport = None

    # ---- errors ------------------------------------------------------------------------------

    def redact(self, text: str) -> str:
        return self._redact(text)

    def error(self, message: str, hint: str = "") -> ProviderError:
        return self._error(message, hint)

    def unknown(self, what: str, reason: str) -> OutcomeUnknown:
        return self._unknown(what, reason)

    # ---- calls -------------------------------------------------------------------------------

    def client(self) -> Any:
        if self._client_obj is not None:
            return self._client_obj
        import httpx
        from replicate.client import Client

        token = self.environ.get(self.token_env, "")
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
            self.retry_after = hint(response.headers, response.text, wall=self.wall)

    def call(self, method: str, url: str, what: str) -> Any:
        """An idempotent request (GETs, cancel) as raw JSON, with capped exponential backoff and
        jitter on 5xx, 429 and transport errors. `NotFound` on 404."""
        import httpx
        from replicate.exceptions import ReplicateError

        client = self.client()
        url = self.same_origin(url)
        for attempt in range(1, self.max_attempts + 1):
            self.pacer.acquire("default")
            self.retry_after = None
            try:
                answer = client._request(method, url).json()
            except ReplicateError as exc:
                if exc.status == 404:
                    raise NotFound(url) from None
                if exc.status != 429 and (exc.status or 0) < 500:
                    raise self.error(f"Replicate: {what}: {reason(exc)}") from None
                failure = reason(exc)
            except (httpx.HTTPError, ValueError) as exc:
                failure = type(exc).__name__
            else:
                if not isinstance(answer, dict):
                    raise self.error(
                        f"Replicate: {what}: the answer is {type(answer).__name__}, not a JSON "
                        "object"
                    )
                return answer
            if not self.pause(attempt):
                raise self.error(
                    f"Replicate: {what}: {failure} after {attempt} attempts",
                    "the service may be degraded; run again later",
                )
        raise self.error(f"Replicate: {what}: gave up")  # pragma: no cover

    def pages(self, url: str, what: str, max_pages: int) -> Any:
        """The pages of a list, newest first, at most `max_pages` (a generator of raw pages;
        the caller stops it when it has seen enough)."""
        link: str | None = url
        for _ in range(max_pages):
            if not link:
                return
            page = self.call("GET", link, what)
            yield page
            link = next_link(page)

    def pause(self, attempt: int) -> bool:
        """Wait before another try: what the last 429 said (Retry-After, `ratelimit-reset`, the
        body's `~30s`), else backoff; False when the attempts or the pass's budget are spent."""
        return self.retry.pause(attempt, self.retry_after)

    def same_origin(self, url: str) -> str:
        """Follow absolute `next` links only to the configured host: the client would send the
        token to any host a link names."""
        parts = urlsplit(url)
        base = urlsplit(self.base_url)
        if not parts.scheme or (parts.scheme, parts.netloc) == (base.scheme, base.netloc):
            return url
        return parts.path + (f"?{parts.query}" if parts.query else "")


# ---- answers --------------------------------------------------------------------------------


def results(page: Mapping[str, Any], what: str) -> list[Mapping[str, Any]]:
    """The items of a list page, each an object (a provider's answer is input too)."""
    found = page.get("results") or []
    if not isinstance(found, list) or not all(isinstance(i, dict) for i in found):
        raise ProviderError(f"Replicate: {what}: 'results' is not a list of objects")
    return found


def next_link(page: Mapping[str, Any]) -> str | None:
    link = page.get("next")
    return link if isinstance(link, str) and link else None


def timestamp(value: Any) -> float | None:
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


def reason(exc: Any) -> str:
    """`422 - input.steps: Must be ...; - input.x: ...` from a problem+json error."""
    lines = [line.strip() for line in str(exc.detail or exc.title or "").splitlines()]
    return f"{exc.status} {'; '.join(line for line in lines if line)}".strip()
