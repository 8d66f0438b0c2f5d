"""The HTTP side of the GitHub client (DESIGN §11): one authenticated httpx session, the retry
policy and pagination. `GitHubClient` (github.client) adds the endpoints trainops reports with.

It retries what GitHub asks to be retried (secondary limits via `retry-after`, primary limits via
`x-ratelimit-reset`, 5xx with capped exponential backoff and jitter) and gives up with a
`GitHubError` (exit 3). A write whose outcome is unknown is never resent here (`unknown=True`):
the caller decides. Time is injected (`sleep`, `clock`) so tests never wait. Every request body
goes through `trainops.scrub` before it is sent, and every message this module produces too.
"""

from __future__ import annotations

import math
import os
import random
import re
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Self
from urllib.parse import urlsplit

import httpx

from trainops import __version__
from trainops.errors import ProviderError, UsageError
from trainops.retry import hint
from trainops.scrub import scrub_json, scrubber

__all__ = [
    "API_VERSION",
    "DEFAULT_API_URL",
    "PER_PAGE",
    "GitHubError",
    "GitHubTransport",
    "json_object",
]

DEFAULT_API_URL = "https://api.github.com"
API_VERSION = "2022-11-28"
PER_PAGE = 100

_RETRYABLE_STATUS = frozenset({500, 502, 503, 504})
_WRITE_METHODS = frozenset({"POST", "PATCH", "PUT", "DELETE"})
_LINK_NEXT = re.compile(r'<([^>]+)>\s*;\s*rel="?next"?')
# GitHub's advice without retry-after or x-ratelimit headers: wait at least a minute.
_SECONDARY_LIMIT_FALLBACK_S = 60.0


class GitHubError(ProviderError):
    """A GitHub API call failed for good. `status` is the HTTP status (None: no response)."""

    def __init__(
        self, message: str, *, status: int | None = None, hint: str = "", unknown: bool = False
    ) -> None:
        super().__init__(message, hint)
        self.status = status
        self.unknown = unknown  # a write that may or may not have been applied


class GitHubTransport:
    """GitHub REST v3 over httpx: `request` and `paginate` with the retry policy above.

    The token comes from `token` or the `GITHUB_TOKEN` environment variable, the API root from
    `api_url` or `GITHUB_API_URL`. Every call makes at most `max_attempts` requests; a rate-limit
    wait longer than `max_wait` seconds is not waited for but reported. Consecutive writes are
    spaced by `write_interval` seconds, as GitHub asks of integrations, to stay clear of the
    secondary limit on content creation.
    """

    def __init__(
        self,
        token: str | None = None,
        *,
        api_url: str | None = None,
        env: Mapping[str, str] | None = None,
        max_attempts: int = 5,
        backoff_base: float = 1.0,
        backoff_cap: float = 30.0,
        max_wait: float = 900.0,
        write_interval: float = 1.0,
        timeout: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        env = os.environ if env is None else env
        token = token if token is not None else env.get("GITHUB_TOKEN", "")
        if not token:
            raise UsageError(
                "no GitHub token: GITHUB_TOKEN is not set",
                hint="in GitHub Actions pass `GITHUB_TOKEN: ${{ github.token }}` to the step",
            )
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self._scrubber = scrubber(env, [token])
        self.api_url = (api_url or env.get("GITHUB_API_URL") or DEFAULT_API_URL).rstrip("/")
        self._origin = _origin(self.api_url)
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.max_wait = max_wait
        self.write_interval = write_interval
        self._sleep = sleep
        self._clock = clock
        self._rng = rng or random.Random()
        self._last_write: float | None = None
        self._http = httpx.Client(
            base_url=self.api_url + "/",
            headers={
                "Accept": "application/vnd.github+json",
                "Authorization": f"Bearer {token}",
                "X-GitHub-Api-Version": API_VERSION,
                "User-Agent": f"trainops/{__version__}",
            },
            timeout=timeout,
            transport=transport,
            follow_redirects=False,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def paginate(self, path: str, params: Mapping[str, str | int] | None = None) -> Iterator[Any]:
        """Yield the items of a list endpoint, following `Link: rel="next"` across pages."""
        query: dict[str, str | int] = {"per_page": PER_PAGE, **(params or {})}
        response = self.request("GET", path, params=query)
        while True:
            page = response.json()
            if not isinstance(page, list):
                raise GitHubError(f"GET {path}: expected a JSON list, got {type(page).__name__}")
            yield from page
            next_url = _next_link(response.headers.get("link", ""))
            if next_url is None:
                return
            if _origin(next_url) != self._origin:
                # Never send the token to a host the caller did not choose.
                raise GitHubError(f"GET {path}: refusing to follow a next page on another host")
            response = self.request("GET", next_url)

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, str | int] | None = None,
        idempotent: bool | None = None,
    ) -> httpx.Response:
        """Send one API call with the retry policy of this module; return the 2xx response.

        `path` is relative to the API root or an absolute URL on it. A request that may have
        reached GitHub before the connection broke is resent only when `idempotent` (default:
        every method but POST), so a comment is not posted twice.
        """
        method = method.upper()
        if idempotent is None:
            idempotent = method != "POST"
        url = path if "://" in path else path.lstrip("/")
        if json is not None:
            json = scrub_json(json, self._scrubber)  # every GitHub post: DESIGN §13
        what = f"{method} {urlsplit(path).path or path}"
        failure = ""
        for attempt in range(1, self.max_attempts + 1):
            if method in _WRITE_METHODS and attempt == 1:  # retries are paced by the backoff
                self._space_writes()
            try:
                response = self._http.request(method, url, json=json, params=params)
            except httpx.TransportError as exc:
                sent = not isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout)
                failure = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                if sent and not idempotent:
                    raise GitHubError(
                        self._scrub(
                            f"GitHub API {what}: {failure}; it may or may not have "
                            "been applied, so it is not resent"
                        ),
                        unknown=True,
                    ) from None
                delay = self._backoff(attempt)
            else:
                if response.is_success:
                    return response
                failure = _describe(response)
                if not idempotent and response.status_code in _RETRYABLE_STATUS:
                    # A 5xx may come after GitHub stored the write (a comment posted twice).
                    raise GitHubError(
                        self._scrub(
                            f"GitHub API {what} failed: {failure}; it may or may not have "
                            "been applied, so it is not resent"
                        ),
                        status=response.status_code,
                        unknown=True,
                    )
                wait = self._retry_delay(response, attempt)
                if wait is None:
                    raise GitHubError(
                        self._scrub(f"GitHub API {what} failed: {failure}"),
                        status=response.status_code,
                        hint=_hint(response.status_code),
                    )
                if wait > self.max_wait:
                    raise GitHubError(
                        self._scrub(
                            f"GitHub API {what} failed: {failure}; GitHub asks to wait "
                            f"{wait:.0f}s, more than the {self.max_wait:.0f}s allowed"
                        ),
                        status=response.status_code,
                    )
                delay = wait
            if attempt < self.max_attempts:
                self._sleep(delay)
        raise GitHubError(
            self._scrub(f"GitHub API {what} failed after {self.max_attempts} attempts: {failure}"),
        )

    def _retry_delay(self, response: httpx.Response, attempt: int) -> float | None:
        """Seconds to wait before retrying `response`, or None when retrying cannot help."""
        status = response.status_code
        headers = response.headers
        if status in (403, 429):
            # trainops.retry reads `retry-after` (seconds or a date), then `x-ratelimit-reset`
            # (epoch seconds, with `x-ratelimit-remaining: 0`): one parser for every service.
            said = hint(headers, wall=self._clock, cap=math.inf)
            if said is not None:
                # One second of slack on a reset: it is a whole second and clocks drift.
                return said if headers.get("retry-after") else said + 1.0
            if status == 429 or "rate limit" in _message(response).lower():
                return max(_SECONDARY_LIMIT_FALLBACK_S, self._backoff(attempt))
            return None  # a plain 403: permissions, not load
        if status in _RETRYABLE_STATUS:
            return self._backoff(attempt)
        return None

    def _backoff(self, attempt: int) -> float:
        ceiling = min(self.backoff_cap, self.backoff_base * 2.0 ** (attempt - 1))
        return ceiling / 2 + self._rng.uniform(0, ceiling / 2)

    def _space_writes(self) -> None:
        now = self._clock()
        if self._last_write is not None:
            wait = self._last_write + self.write_interval - now
            if wait > 0:
                self._sleep(wait)
                now += wait
        self._last_write = now

    def _scrub(self, text: str) -> str:
        return self._scrubber(text)


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()


def _next_link(link_header: str) -> str | None:
    match = _LINK_NEXT.search(link_header)
    return match.group(1) if match else None


def json_object(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    if not isinstance(body, dict):
        raise GitHubError(f"expected a JSON object from GitHub, got {type(body).__name__}")
    return body


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    if not isinstance(body, dict):
        return ""
    message = str(body.get("message", ""))
    details = [
        str(error.get("message") or error.get("code") or "")
        for error in body.get("errors") or []
        if isinstance(error, dict)
    ]
    details = [detail for detail in details if detail]
    return f"{message} ({'; '.join(details)})" if details else message


def _describe(response: httpx.Response) -> str:
    message = _message(response)
    text = f"{response.status_code} {response.reason_phrase}"
    return f"{text}: {message}" if message else text


def _hint(status: int) -> str:
    if status == 401:
        return "the GitHub token is missing, expired or invalid"
    if status in (403, 404):
        return (
            "check the workflow's `permissions:` (pull-requests/statuses/contents: write); "
            "pull requests from forks get a read-only token"
        )
    return ""
