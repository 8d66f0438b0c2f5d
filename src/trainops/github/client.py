"""A small GitHub REST client: the few operations trainops reports with (DESIGN §11).

It retries what GitHub asks to be retried (secondary limits via `retry-after`, primary limits via
`x-ratelimit-reset`, 5xx with capped exponential backoff and jitter) and gives up with a
`GitHubError` (exit 3). Time is injected (`sleep`, `clock`) so tests never wait. Every request
body goes through `trainops.scrub` before it is sent, and every message this module produces too.
"""

from __future__ import annotations

import math
import os
import random
import re
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from trainops import __version__
from trainops.errors import ProviderError, UsageError
from trainops.retry import hint
from trainops.scrub import scrub_json, scrubber

__all__ = [
    "COMMENT_MAX_CHARS",
    "DEFAULT_API_URL",
    "STATUS_DESCRIPTION_MAX_CHARS",
    "STATUS_STATES",
    "GitHubClient",
    "GitHubError",
    "truncate_description",
]

DEFAULT_API_URL = "https://api.github.com"
API_VERSION = "2022-11-28"
COMMENT_MAX_CHARS = 65_536
STATUS_DESCRIPTION_MAX_CHARS = 140
STATUS_STATES = ("error", "failure", "pending", "success")
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


class GitHubClient:
    """GitHub REST v3 over httpx. Repositories are named `owner/name` (as in GITHUB_REPOSITORY).

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
        self._login: str | None = None  # "": an installation token, identity not known yet
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

    # -- lifecycle ----------------------------------------------------------------------------

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> GitHubClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- who posts ----------------------------------------------------------------------------

    def login(self) -> str:
        """The login this client posts as: the token's user (GET /user), or "" for an
        installation token (the Actions GITHUB_TOKEN or a GitHub App's token: GET /user answers
        403, "Resource not accessible by integration", shared/ref/README.md) until this client
        has written a comment, whose answer names it (`<app-slug>[bot]`)."""
        if self._login is None:
            try:
                user = _object(self.request("GET", "user"))
            except GitHubError as exc:
                if exc.status != 403:
                    raise
                self._login = ""
                return ""
            login = user.get("login")
            if not isinstance(login, str) or not login:
                raise GitHubError("GET /user: the answer has no login")
            self._login = login
        return self._login

    def wrote(self, comment: Any) -> bool:
        """Whether `comment` (an issue or commit comment as GitHub answers it) was written with
        this client's identity. A user token: its login. An installation token: a comment by
        an App's bot (type Bot, `<slug>[bot]`: `github-actions[bot]` for the Actions token),
        through that App when GitHub names one (`performed_via_github_app`, which GitHub sets
        and no one can write), and once this client has posted, that login only. A pull request's
        author is a User: a marker they wrote is never taken for trainops's (docs/github.md)."""
        if not isinstance(comment, dict) or not isinstance(comment.get("user"), dict):
            return False
        user = comment["user"]
        login = self.login()
        if login:
            return user.get("login") == login
        name = user.get("login")
        if user.get("type") != "Bot" or not isinstance(name, str) or not name.endswith("[bot]"):
            return False
        # Issue comments name the App (GitHub's issue-comment schema); commit comments do not.
        app = comment.get("performed_via_github_app")
        return app is None or (isinstance(app, dict) and name == f"{app.get('slug')}[bot]")

    def _learn(self, comment: dict[str, Any]) -> dict[str, Any]:
        """An installation token's identity, from the answer to its own write."""
        user = comment.get("user")
        if self._login == "" and isinstance(user, dict) and self.wrote(comment):
            self._login = str(user["login"])
        return comment

    # -- issue (pull request) comments --------------------------------------------------------

    def list_issue_comments(self, repo: str, number: int) -> list[dict[str, Any]]:
        """Every comment of an issue or pull request, oldest first, across all pages."""
        return list(self.paginate(f"{_repo_path(repo)}/issues/{int(number)}/comments"))

    def create_issue_comment(self, repo: str, number: int, body: str) -> dict[str, Any]:
        _check_body(body)
        return self._create_comment(f"{_repo_path(repo)}/issues/{int(number)}/comments", body)

    def update_issue_comment(self, repo: str, comment_id: int, body: str) -> dict[str, Any]:
        _check_body(body)
        path = f"{_repo_path(repo)}/issues/comments/{int(comment_id)}"
        return _object(self.request("PATCH", path, json={"body": body}))

    # -- commit comments ----------------------------------------------------------------------

    def list_commit_comments(self, repo: str, sha: str) -> list[dict[str, Any]]:
        return list(self.paginate(f"{_repo_path(repo)}/commits/{_ref(sha)}/comments"))

    def create_commit_comment(self, repo: str, sha: str, body: str) -> dict[str, Any]:
        _check_body(body)
        return self._create_comment(f"{_repo_path(repo)}/commits/{_ref(sha)}/comments", body)

    def _create_comment(self, path: str, body: str) -> dict[str, Any]:
        """POST a comment. A POST is never resent blindly: after one whose outcome is unknown
        (a 5xx, or a connection lost after sending) the comments are listed, and a comment of
        ours with this very body is the answer; only when there is none is it posted again."""
        sent = scrub_json({"body": body}, self._scrubber)["body"]
        for attempt in range(1, self.max_attempts + 1):
            try:
                return self._learn(_object(self.request("POST", path, json={"body": body})))
            except GitHubError as exc:
                if not exc.unknown or attempt == self.max_attempts:
                    raise
                self._sleep(self._backoff(attempt))
            found = [c for c in self.paginate(path) if c.get("body") == sent and self.wrote(c)]
            if found:
                return self._learn(max(found, key=lambda c: int(c.get("id") or 0)))
        raise AssertionError("unreachable")

    # -- commit statuses ----------------------------------------------------------------------

    def create_commit_status(
        self,
        repo: str,
        sha: str,
        state: str,
        *,
        context: str,
        description: str | None = None,
        target_url: str | None = None,
    ) -> dict[str, Any]:
        """Set the status `context` on `sha`; a later status of the same context supersedes it.

        A description over 140 characters is shortened with an ellipsis (GitHub refuses it).
        """
        if state not in STATUS_STATES:
            raise ValueError(f"commit status state must be one of {STATUS_STATES}, not {state!r}")
        payload: dict[str, Any] = {"state": state, "context": context}
        if description is not None:
            payload["description"] = truncate_description(description)
        if target_url is not None:
            payload["target_url"] = target_url
        path = f"{_repo_path(repo)}/statuses/{_ref(sha)}"
        # The latest status per context wins, so repeating a create is harmless.
        return _object(self.request("POST", path, json=payload, idempotent=True))

    def list_commit_statuses(self, repo: str, ref: str) -> list[dict[str, Any]]:
        """Every status of `ref`, newest first."""
        return list(self.paginate(f"{_repo_path(repo)}/commits/{_ref(ref)}/statuses"))

    def get_combined_status(self, repo: str, ref: str) -> dict[str, Any]:
        path = f"{_repo_path(repo)}/commits/{_ref(ref)}/status"
        return _object(self.request("GET", path, params={"per_page": PER_PAGE}))

    # -- pull requests ------------------------------------------------------------------------

    def list_pulls_for_commit(self, repo: str, sha: str) -> list[dict[str, Any]]:
        """Open pull requests containing `sha`, or the merged one that brought it to the default
        branch."""
        return list(self.paginate(f"{_repo_path(repo)}/commits/{_ref(sha)}/pulls"))

    # -- generic ------------------------------------------------------------------------------

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

    # -- private ------------------------------------------------------------------------------

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


def truncate_description(text: str) -> str:
    """Shorten a commit status description to GitHub's 140 characters, ending in an ellipsis."""
    if len(text) <= STATUS_DESCRIPTION_MAX_CHARS:
        return text
    return text[: STATUS_DESCRIPTION_MAX_CHARS - 1] + "…"


def _check_body(body: str) -> None:
    if len(body) > COMMENT_MAX_CHARS:
        raise GitHubError(
            f"comment body has {len(body):,} characters; GitHub accepts at most "
            f"{COMMENT_MAX_CHARS:,}",
            hint="the report renderer must summarize and truncate long comments",
        )


def _repo_path(repo: str) -> str:
    owner, sep, name = repo.partition("/")
    if not (sep and owner and name) or "/" in name:
        raise UsageError(f"GitHub repository must be 'owner/name', not {repo!r}")
    return f"repos/{owner}/{name}"


def _ref(ref: str) -> str:
    if not ref.strip():
        raise UsageError("a commit SHA or ref is required")
    return quote(ref, safe="")


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()


def _next_link(link_header: str) -> str | None:
    match = _LINK_NEXT.search(link_header)
    return match.group(1) if match else None


def _object(response: httpx.Response) -> dict[str, Any]:
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
