"""A GitHub REST emulator: a real HTTP server on 127.0.0.1 for the operations trainops reports with.

It keeps issue comments, commit comments, commit statuses and pull requests in memory, answers with
the JSON shapes of `tests/fixtures/github-rest-subset.json`, enforces GitHub's documented limits,
paginates with absolute `Link` URLs pointing at itself, records every request and injects faults
on demand. Standalone: `python -m tests.emulators.github --port 8765 --token T`.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import http
import json
import random
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any, ClassVar
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

from tests.emulators._loopback import LoopbackEmulator

__all__ = ["Fault", "GitHubEmulator", "Recorded"]

COMMENT_MAX_CHARS = 65_536
STATUS_DESCRIPTION_MAX_CHARS = 140
STATUSES_PER_CONTEXT_MAX = 1000
STATUS_STATES = ("error", "failure", "pending", "success")
DOCS = "https://docs.github.com/rest"
HTML_ROOT = "https://github.com"
DEFAULT_BRANCH = "main"
_SHA = re.compile(r"^[0-9a-f]{40}$")
_REPO = r"/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)"

SECONDARY_LIMIT_MESSAGE = (
    "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."
)


@dataclass(frozen=True)
class Recorded:
    """One request the emulator received, and what it answered."""

    method: str
    path: str  # decoded, without the query string
    query: dict[str, str]
    json: Any  # the parsed request body (None when there was none)
    status: int  # 0 when the connection was dropped without an answer
    response: Any  # the JSON body sent back (None when there was none)
    headers: dict[str, str] = field(repr=False, default_factory=dict)  # request, lowercased


@dataclass
class Fault:
    """Answer matching requests with `status` (0: drop the connection) instead of serving them.

    `method` is a method or "*", `path` a regex searched in the request path, `times` how many
    matching requests to hit (None: all of them, until `clear_faults`). `after`: the request is
    served first (a comment is stored) and the fault answers instead of its reply, as a 5xx from
    GitHub's front end after the write reached storage would.
    """

    status: int
    method: str = "*"
    path: str = ""
    times: int | None = 1
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    hits: int = 0
    after: bool = False

    def matches(self, method: str, path: str, after: bool = False) -> bool:
        if self.after != after or (self.times is not None and self.hits >= self.times):
            return False
        return self.method in ("*", method) and re.search(self.path, path) is not None


class _Reply(Exception):
    """Raised by a route to answer with an error status."""

    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = headers or {}


_Answer = tuple[int, Any, dict[str, str]]  # status, JSON body, extra headers


@dataclass(frozen=True)
class _Call:
    """A routed request: the repository, the path's one variable, query and JSON body."""

    owner: str
    repo: str
    arg: str  # issue number, comment id, commit sha or ref
    query: dict[str, str]
    payload: Any
    path: str


class GitHubEmulator(LoopbackEmulator):
    """In-memory GitHub for one accepted token. Use as a context manager or `start()`/`stop()`."""

    thread_name = "github-emulator"
    # Every emulator made, so the credential grep (tests/support/credentials.py) can read what
    # each one received; that grep clears it before each test.
    instances: ClassVar[list[GitHubEmulator]] = []

    def __init__(
        self,
        token: str = "ghs_emulator_token",
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Callable[[], float] = time.time,
        # Whom the token posts as: a user token's login, or an installation token's bot,
        # `github-actions[bot]` for the Actions GITHUB_TOKEN, `<app-slug>[bot]` for an App's.
        login: str = "github-actions[bot]",
    ) -> None:
        GitHubEmulator.instances.append(self)
        self.token = token
        self.host = host
        self.port = port
        self.clock = clock
        bot = login.endswith("[bot]")
        self.user = _simple_user(login, 41898282 if bot else 1, "Bot" if bot else "User")
        # An issue comment made with an installation token names the App it was made through
        # (`performed_via_github_app`, GitHub's issue-comment schema; shared/ref/README.md
        # "Checked against the real clients"): the Actions token's is `github-actions`.
        self.app = _integration(login.removesuffix("[bot]")) if bot else None
        self.requests: list[Recorded] = []
        self.errors: list[str] = []  # exceptions raised inside the emulator (should stay empty)
        self._faults: list[Fault] = []
        # Seeded secondary-limit 429s at a rate: (rate, rng, retry-after seconds); see throttle.
        self._throttle: tuple[float, random.Random, int] | None = None
        self._lock = threading.RLock()
        self._next_id = 1
        self._issue_comments: dict[int, dict[str, Any]] = {}  # id -> comment (+ private keys)
        self._commit_comments: list[dict[str, Any]] = []
        self._statuses: list[dict[str, Any]] = []  # oldest first
        self._pulls: list[dict[str, Any]] = []
        self._pushed: dict[tuple[str, str], set[str]] = {}  # commits pushed to the default branch
        self._routes: list[tuple[str, re.Pattern[str], Callable[[_Call], _Answer]]] = [
            (method, re.compile(_REPO + pattern), route)
            for method, pattern, route in [
                ("GET", r"/issues/(?P<arg>\d+)/comments", self._list_issue_comments),
                ("POST", r"/issues/(?P<arg>\d+)/comments", self._create_issue_comment),
                ("GET", r"/issues/comments/(?P<arg>\d+)", self._get_issue_comment),
                ("PATCH", r"/issues/comments/(?P<arg>\d+)", self._update_issue_comment),
                ("GET", r"/commits/(?P<arg>[^/]+)/comments", self._list_commit_comments),
                ("POST", r"/commits/(?P<arg>[^/]+)/comments", self._create_commit_comment),
                ("POST", r"/statuses/(?P<arg>[^/]+)", self._create_status),
                ("GET", r"/statuses/(?P<arg>[^/]+)", self._list_statuses),  # legacy route
                ("GET", r"/commits/(?P<arg>[^/]+)/statuses", self._list_statuses),
                ("GET", r"/commits/(?P<arg>[^/]+)/status", self._combined_status),
                ("GET", r"/commits/(?P<arg>[^/]+)/pulls", self._list_pulls),
            ]
        ]

    # -- lifecycle ----------------------------------------------------------------------------

    def env(self) -> dict[str, str]:
        """The environment that points a trainops process at this emulator."""
        return {"GITHUB_API_URL": self.url, "GITHUB_TOKEN": self.token}

    # -- fault injection ----------------------------------------------------------------------

    def inject(
        self,
        status: int,
        *,
        method: str = "*",
        path: str = "",
        times: int | None = 1,
        headers: dict[str, str] | None = None,
        body: Any = None,
        after: bool = False,
    ) -> Fault:
        if body is None and status:
            body = {"message": http.HTTPStatus(status).phrase, "documentation_url": DOCS}
        fault = Fault(status, method.upper(), path, times, dict(headers or {}), body, after=after)
        with self._lock:
            self._faults.append(fault)
        return fault

    def throttle(self, rate: float, *, seed: int = 0, retry_after: int = 0) -> None:
        """Answer a seeded `rate` of requests with GitHub's secondary-limit 429: a `retry-after`
        header (docs.github.com/rest/using-the-rest-api/rate-limits-for-the-rest-api, "Exceeding
        the rate limit"; shared/ref/README.md). `rate` 0 turns it off."""
        self._throttle = (rate, random.Random(seed), retry_after) if rate else None

    def fail_next(
        self, n: int = 1, status: int = 503, *, method: str = "*", path: str = ""
    ) -> Fault:
        return self.inject(status, method=method, path=path, times=n)

    def fail_all(self, status: int = 503, *, method: str = "*", path: str = "") -> Fault:
        return self.inject(status, method=method, path=path, times=None)

    def fail_after_storing(
        self, status: int = 502, *, method: str = "POST", path: str = "", times: int = 1
    ) -> Fault:
        """Serve the next matching write, then answer `status` instead of its reply."""
        return self.inject(status, method=method, path=path, times=times, after=True)

    def drop_next(self, n: int = 1, *, method: str = "*", path: str = "") -> Fault:
        """Close the connection without answering (the request was read, maybe acted on)."""
        return self.inject(0, method=method, path=path, times=n)

    def secondary_rate_limit(
        self,
        retry_after: int | None = 60,
        *,
        status: int = 403,
        times: int | None = 1,
        method: str = "*",
        path: str = "",
    ) -> Fault:
        headers = {} if retry_after is None else {"retry-after": str(retry_after)}
        body = {
            "message": SECONDARY_LIMIT_MESSAGE,
            "documentation_url": "https://docs.github.com/rest/using-the-rest-api/rate-limits-for-the-rest-api#about-secondary-rate-limits",
        }
        return self.inject(
            status, method=method, path=path, times=times, headers=headers, body=body
        )

    def primary_rate_limit(
        self, reset_at: int, *, times: int | None = 1, method: str = "*", path: str = ""
    ) -> Fault:
        headers = {
            "x-ratelimit-limit": "5000",
            "x-ratelimit-remaining": "0",
            "x-ratelimit-used": "5000",
            "x-ratelimit-reset": str(int(reset_at)),
            "x-ratelimit-resource": "core",
        }
        body = {
            "message": "API rate limit exceeded for installation ID 1.",
            "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api",
        }
        return self.inject(403, method=method, path=path, times=times, headers=headers, body=body)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    # -- helpers for tests --------------------------------------------------------------------

    def requests_to(self, method: str | None = None, path: str = "") -> list[Recorded]:
        """Recorded requests with this method (any when None) whose path matches the regex."""
        with self._lock:
            return [
                r
                for r in self.requests
                if (method is None or r.method == method.upper()) and re.search(path, r.path)
            ]

    def issue_comments(self, owner: str, repo: str, number: int) -> list[dict[str, Any]]:
        with self._lock:
            return [
                _public(c)
                for c in self._issue_comments.values()
                if c["_repo"] == (owner, repo) and c["_issue"] == number
            ]

    def commit_comments(
        self, sha: str, owner: str | None = None, repo: str | None = None
    ) -> list[dict[str, Any]]:
        with self._lock:
            return [
                _public(c)
                for c in self._commit_comments
                if c["commit_id"] == sha and _in_repo(c, owner, repo)
            ]

    def statuses(
        self, sha: str, owner: str | None = None, repo: str | None = None
    ) -> list[dict[str, Any]]:
        """Every status of `sha`, newest first (as GitHub lists them)."""
        with self._lock:
            return [
                _public(s)
                for s in reversed(self._statuses)
                if s["_sha"] == sha and _in_repo(s, owner, repo)
            ]

    def add_issue_comment(
        self, owner: str, repo: str, number: int, body: str, *, login: str = "octocat"
    ) -> dict[str, Any]:
        """Seed a comment written by someone else (a human reviewer, by default; a `[bot]`
        login is an App's bot, through that App, as only an App can post as one)."""
        bot = login.endswith("[bot]")
        user = _simple_user(login, 41898282 if bot else 583231, "Bot" if bot else "User")
        app = _integration(login.removesuffix("[bot]")) if bot else None
        with self._lock:
            return _public(self._new_issue_comment(owner, repo, number, body, user, "MEMBER", app))

    def add_commit_comment(
        self, owner: str, repo: str, sha: str, body: str, *, login: str = "octocat"
    ) -> dict[str, Any]:
        """Seed a commit comment written by someone else."""
        call = _Call(owner, repo, sha, {}, {"body": body}, f"/repos/{owner}/{repo}")
        with self._lock:
            user, self.user = self.user, _simple_user(login, 583231, "User")
            try:
                return self._create_commit_comment(call)[1]
            finally:
                self.user = user

    def push(self, owner: str, repo: str, sha: str) -> None:
        """Seed a commit pushed straight to the default branch (no pull request holds it)."""
        with self._lock:
            self._pushed.setdefault((owner, repo), set()).add(sha)

    def edit_issue_comment(self, comment_id: int, body: str) -> dict[str, Any]:
        """Someone else (a maintainer) edits a comment: GitHub keeps `user`, the author, and its
        REST answer names no editor (the issue-comment schema has no such field; GraphQL's
        `editor` does), so an edited comment of trainops's still reads as trainops's."""
        with self._lock:
            comment = self._issue_comments[comment_id]
            comment["body"] = body
            comment["updated_at"] = self._now()
            return _public(comment)

    def add_pull(
        self,
        owner: str,
        repo: str,
        number: int,
        *,
        head_sha: str,
        head_ref: str = "feature",
        base_ref: str = "main",
        base_sha: str = "0" * 40,
        title: str = "Change training jobs",
        state: str = "open",
        merge_commit_sha: str | None = None,
        commits: tuple[str, ...] = (),
        fork: bool = False,
    ) -> dict[str, Any]:
        """Register a pull request; `/commits/{sha}/pulls` finds it by head sha, merge commit sha
        or any of `commits`."""
        now = self._now()
        api = f"{self.url}/repos/{owner}/{repo}"
        head_owner = "a-fork" if fork else owner
        pull = {
            "url": f"{api}/pulls/{number}",
            "id": 1_000_000 + number,
            "node_id": _node_id("PR", 1_000_000 + number),
            "html_url": f"{HTML_ROOT}/{owner}/{repo}/pull/{number}",
            "diff_url": f"{HTML_ROOT}/{owner}/{repo}/pull/{number}.diff",
            "patch_url": f"{HTML_ROOT}/{owner}/{repo}/pull/{number}.patch",
            "issue_url": f"{api}/issues/{number}",
            "comments_url": f"{api}/issues/{number}/comments",
            "statuses_url": f"{api}/statuses/{head_sha}",
            "number": number,
            "state": state,
            "locked": False,
            "title": title,
            "user": _simple_user("octocat", 583231, "User"),
            "body": None,
            "labels": [],
            "milestone": None,
            "active_lock_reason": None,
            "created_at": now,
            "updated_at": now,
            "closed_at": now if state == "closed" else None,
            "merged_at": now if merge_commit_sha and state == "closed" else None,
            "merge_commit_sha": merge_commit_sha,
            "assignee": None,
            "assignees": [],
            "requested_reviewers": [],
            "requested_teams": [],
            "head": _branch(head_owner, repo, head_ref, head_sha, fork=fork),
            "base": _branch(owner, repo, base_ref, base_sha, fork=False),
            "author_association": "MEMBER",
            "auto_merge": None,
            "draft": False,
            "_repo": (owner, repo),
            "_shas": {head_sha, *commits} | ({merge_commit_sha} if merge_commit_sha else set()),
        }
        with self._lock:
            self._pulls.append(pull)
        return _public(pull)

    # -- request handling (called from server threads) ----------------------------------------

    def _handle(
        self, method: str, raw_path: str, headers: dict[str, str], raw_body: bytes
    ) -> tuple[int, Any, dict[str, str]]:
        split = urlsplit(raw_path)
        path = unquote(split.path)
        query = dict(parse_qsl(split.query))
        payload: Any = None
        status, body, extra = 500, None, {}
        try:
            if raw_body:
                try:
                    payload = json.loads(raw_body)
                except ValueError:
                    raise _error(400, "Problems parsing JSON") from None
            with self._lock:
                fault = next((f for f in self._faults if f.matches(method, path)), None)
                if fault is not None:
                    fault.hits += 1
                    raise _Reply(fault.status, fault.body, fault.headers)
                if self._throttle and self._throttle[1].random() < self._throttle[0]:
                    body = {"message": SECONDARY_LIMIT_MESSAGE, "documentation_url": DOCS}
                    raise _Reply(429, body, {"retry-after": str(self._throttle[2])})
            self._authenticate(headers)
            if (method, path) == ("GET", "/user"):
                raise self._authenticated_user()
            for route_method, pattern, route in self._routes:
                match = pattern.fullmatch(path)
                if match and route_method == method:
                    with self._lock:
                        status, body, extra = route(
                            _Call(**match.groupdict(), query=query, payload=payload, path=path)
                        )
                        late = next(
                            (f for f in self._faults if f.matches(method, path, after=True)), None
                        )
                        if late is not None:
                            late.hits += 1
                            raise _Reply(late.status, late.body, late.headers)
                    break
            else:
                raise _not_found()
        except _Reply as reply:
            status, body, extra = reply.status, reply.body, reply.headers
        except Exception as exc:  # an emulator bug: answer 500 and keep it for the test to see
            self.errors.append(f"{method} {path}: {type(exc).__name__}: {exc}")
            status, body, extra = 500, {"message": "emulator error"}, {}
        with self._lock:
            self.requests.append(Recorded(method, path, query, payload, status, body, headers))
        return status, body, extra

    def _authenticate(self, headers: dict[str, str]) -> None:
        scheme, _, credential = headers.get("authorization", "").partition(" ")
        if not credential:
            raise _error(401, "Requires authentication")
        if scheme.lower() not in ("bearer", "token") or credential.strip() != self.token:
            raise _error(401, "Bad credentials")

    # -- routes (called with the lock held) ---------------------------------------------------

    def _authenticated_user(self) -> _Reply:
        """GET /user: the token's user; an installation token (the Actions GITHUB_TOKEN or a
        GitHub App's, a `[bot]` login) is refused with 403 "Resource not accessible by
        integration", as GitHub does (shared/ref/README.md "Checked against the real clients";
        actions/create-github-app-token#258)."""
        if self.user["login"].endswith("[bot]"):
            return _error(403, "Resource not accessible by integration")
        return _Reply(200, self.user)

    def _list_issue_comments(self, call: _Call) -> _Answer:
        return self._page(call, self.issue_comments(call.owner, call.repo, int(call.arg)))

    def _create_issue_comment(self, call: _Call) -> _Answer:
        body = _comment_body(call.payload, "IssueComment")
        comment = self._new_issue_comment(
            call.owner, call.repo, int(call.arg), body, self.user, "NONE", self.app
        )
        return 201, _public(comment), {"location": comment["url"]}

    def _get_issue_comment(self, call: _Call) -> _Answer:
        return 200, _public(self._find_issue_comment(call)), {}

    def _update_issue_comment(self, call: _Call) -> _Answer:
        comment = self._find_issue_comment(call)
        comment["body"] = _comment_body(call.payload, "IssueComment")
        comment["updated_at"] = self._now()
        return 200, _public(comment), {}

    def _list_commit_comments(self, call: _Call) -> _Answer:
        return self._page(call, self.commit_comments(call.arg, call.owner, call.repo))

    def _create_commit_comment(self, call: _Call) -> _Answer:
        body = _comment_body(call.payload, "CommitComment")
        sha = _require_sha(call.arg)
        cid, now = self._take_id(), self._now()
        comment = {
            "id": cid,
            "node_id": _node_id("CC", cid),
            "url": f"{self._api(call)}/comments/{cid}",
            "html_url": f"{HTML_ROOT}/{call.owner}/{call.repo}/commit/{sha}#commitcomment-{cid}",
            "body": body,
            "path": call.payload.get("path"),
            "position": call.payload.get("position"),
            "line": call.payload.get("line"),
            "commit_id": sha,
            "user": self.user,
            "created_at": now,
            "updated_at": now,
            "author_association": "NONE",
            "_repo": (call.owner, call.repo),
        }
        self._commit_comments.append(comment)
        return 201, _public(comment), {"location": comment["url"]}

    def _create_status(self, call: _Call) -> _Answer:
        payload = call.payload if isinstance(call.payload, dict) else {}
        if "state" not in payload:
            raise _invalid_request('Invalid request.\n\n"state" wasn\'t supplied.')
        if payload["state"] not in STATUS_STATES:
            allowed = ", ".join(f'"{s}"' for s in STATUS_STATES)
            raise _invalid_request(
                f"Invalid request.\n\nFor 'properties/state', {json.dumps(payload['state'])} is "
                f"not one of [{allowed}]."
            )
        for key in ("description", "target_url", "context"):
            if payload.get(key) is not None and not isinstance(payload[key], str):
                raise _invalid_request(
                    f"Invalid request.\n\nFor 'properties/{key}', {json.dumps(payload[key])} is "
                    "not a string or null."
                )
        description = payload.get("description")
        if description is not None and len(description) > STATUS_DESCRIPTION_MAX_CHARS:
            raise _validation_failed(
                "Status", "description", "description is too long (maximum is 140 characters)"
            )
        sha = _require_sha(call.arg)
        context = payload.get("context") or "default"
        same = [
            s
            for s in self.statuses(sha, call.owner, call.repo)
            if s["context"].lower() == context.lower()
        ]
        if len(same) >= STATUSES_PER_CONTEXT_MAX:
            raise _validation_failed(
                "Status",
                "context",
                "This SHA and context has reached the maximum number of statuses.",
            )
        sid, now = self._take_id(), self._now()
        status = {
            "url": f"{self._api(call)}/statuses/{sha}",
            "avatar_url": "https://avatars.githubusercontent.com/in/15368?v=4",
            "id": sid,
            "node_id": _node_id("SC", sid),
            "state": payload["state"],
            "description": description,
            "target_url": payload.get("target_url"),
            "context": context,
            "created_at": now,
            "updated_at": now,
            "creator": self.user,
            "_repo": (call.owner, call.repo),
            "_sha": sha,
        }
        self._statuses.append(status)
        return 201, _public(status), {"location": status["url"]}

    def _list_statuses(self, call: _Call) -> _Answer:
        return self._page(call, self.statuses(call.arg, call.owner, call.repo))

    def _combined_status(self, call: _Call) -> _Answer:
        latest: dict[str, dict[str, Any]] = {}
        for status in self.statuses(call.arg, call.owner, call.repo):  # newest first
            latest.setdefault(status["context"].lower(), status)
        statuses = sorted(latest.values(), key=lambda s: s["id"])
        states = {s["state"] for s in statuses}
        if states & {"error", "failure"}:
            combined = "failure"
        elif not statuses or "pending" in states:
            combined = "pending"
        else:
            combined = "success"
        simple = [{k: v for k, v in s.items() if k != "creator"} for s in statuses]
        per_page, page = _page_args(call.query)
        body = {
            "state": combined,
            "statuses": simple[(page - 1) * per_page : page * per_page],
            "sha": call.arg,
            "total_count": len(simple),
            "repository": _minimal_repository(self.url, call.owner, call.repo),
            "commit_url": f"{self._api(call)}/commits/{call.arg}",
            "url": f"{self._api(call)}/commits/{call.arg}/status",
        }
        return 200, body, {}

    def _list_pulls(self, call: _Call) -> _Answer:
        """GET /commits/{sha}/pulls: "Lists the merged pull request that introduced the commit
        to the repository. If the commit is not present in the default branch, will only return
        open pull requests associated with the commit" (docs.github.com/rest/commits/commits
        #list-pull-requests-associated-with-a-commit; shared/ref/github-rest-subset.json
        repos/list-pull-requests-associated-with-commit). A commit is on the default branch when
        a pull request merged into it holds it or it was pushed there (`push`)."""
        sha = _require_sha(call.arg)
        repo = (call.owner, call.repo)
        mine = [p for p in self._pulls if p["_repo"] == repo and sha in p["_shas"]]
        merged = [p for p in mine if p["merged_at"] and p["base"]["ref"] == DEFAULT_BRANCH]
        if merged:
            items = [_public(merged[0])]  # the one that introduced it: merged first
        elif sha in self._pushed.get(repo, set()):
            items = []  # pushed to the default branch without a pull request
        else:
            items = [_public(p) for p in mine if p["state"] == "open"]
        return self._page(call, items)

    # -- state helpers (called with the lock held) --------------------------------------------

    def _take_id(self) -> int:
        with self._lock:
            value = self._next_id
            self._next_id += 1
            return value

    def _now(self) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.clock()))

    def _new_issue_comment(
        self,
        owner: str,
        repo: str,
        number: int,
        body: str,
        user: dict[str, Any],
        association: str,
        app: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        cid = self._take_id()
        now = self._now()
        comment = {
            "id": cid,
            "node_id": _node_id("IC", cid),
            "url": f"{self.url}/repos/{owner}/{repo}/issues/comments/{cid}",
            "html_url": f"{HTML_ROOT}/{owner}/{repo}/pull/{number}#issuecomment-{cid}",
            "issue_url": f"{self.url}/repos/{owner}/{repo}/issues/{number}",
            "body": body,
            "user": user,
            "created_at": now,
            "updated_at": now,
            "author_association": association,
            "performed_via_github_app": app,
            "_repo": (owner, repo),
            "_issue": number,
        }
        self._issue_comments[cid] = comment
        return comment

    def _find_issue_comment(self, call: _Call) -> dict[str, Any]:
        comment = self._issue_comments.get(int(call.arg))
        if comment is None or comment["_repo"] != (call.owner, call.repo):
            raise _not_found()
        return comment

    def _api(self, call: _Call) -> str:
        return f"{self.url}/repos/{call.owner}/{call.repo}"

    def _page(self, call: _Call, items: list[Any]) -> _Answer:
        """One page of `items` with GitHub's Link header (absolute URLs pointing here)."""
        per_page, page = _page_args(call.query)
        last = max(1, -(-len(items) // per_page))
        base = f"{self.url}{call.path}"

        def link(number: int, rel: str) -> str:
            query = urlencode({**call.query, "per_page": per_page, "page": number})
            return f'<{base}?{query}>; rel="{rel}"'

        rels = [(page - 1, "prev")] if page > 1 else []
        rels += [(page + 1, "next"), (last, "last")] if page < last else []
        rels += [(1, "first")] if page > 1 else []
        headers = {"link": ", ".join(link(n, rel) for n, rel in rels)} if rels else {}
        return 200, items[(page - 1) * per_page : page * per_page], headers


class _Handler(BaseHTTPRequestHandler):
    emu: GitHubEmulator
    protocol_version = "HTTP/1.1"
    timeout = 10  # idle keep-alive connections end on their own
    disable_nagle_algorithm = True
    wbufsize = -1  # headers and body leave in one write (flushed after each request)
    server_version = "GitHub.com"
    sys_version = ""

    def _serve(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        status, body, extra = self.emu._handle(self.command, self.path, headers, raw)
        if status == 0:  # injected drop: no answer at all
            self.close_connection = True
            return
        data = b"" if body is None else json.dumps(body).encode()
        with contextlib.suppress(OSError):
            self.send_response(status)
            self.send_header("content-type", "application/json; charset=utf-8")
            self.send_header("content-length", str(len(data)))
            self.send_header("x-github-api-version-selected", "2022-11-28")
            self.send_header("x-github-media-type", "github.v3; format=json")
            if not any(k.startswith("x-ratelimit-") for k in extra):
                self.send_header("x-ratelimit-limit", "5000")
                self.send_header("x-ratelimit-remaining", "4999")
                self.send_header("x-ratelimit-reset", str(int(self.emu.clock()) + 3600))
                self.send_header("x-ratelimit-resource", "core")
            for key, value in extra.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve

    def log_message(self, format: str, *args: Any) -> None:
        pass


# -- shapes -----------------------------------------------------------------------------------


def _public(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if not k.startswith("_")}


def _in_repo(record: dict[str, Any], owner: str | None, repo: str | None) -> bool:
    return owner in (None, record["_repo"][0]) and repo in (None, record["_repo"][1])


def _node_id(prefix: str, number: int) -> str:
    return f"{prefix}_kwDO" + base64.b64encode(number.to_bytes(8, "big")).decode().rstrip("=")


def _integration(slug: str) -> dict[str, Any]:
    """A GitHub App as comments name it (`performed_via_github_app`, trimmed)."""
    uid = 15368 if slug == "github-actions" else 900001
    return {
        "id": uid,
        "slug": slug,
        "node_id": _node_id("A", uid),
        "name": "GitHub Actions" if slug == "github-actions" else slug,
        "html_url": f"{HTML_ROOT}/apps/{slug}",
    }


def _simple_user(login: str, uid: int, kind: str) -> dict[str, Any]:
    api = f"https://api.github.com/users/{login}"
    links = {
        f"{name}_url": f"{api}/{name}{suffix}"
        for name, suffix in [
            ("followers", ""),
            ("following", "{/other_user}"),
            ("gists", "{/gist_id}"),
            ("starred", "{/owner}{/repo}"),
            ("subscriptions", ""),
            ("organizations", ""),
            ("repos", ""),
            ("events", "{/privacy}"),
            ("received_events", ""),
        ]
    }
    links["organizations_url"] = f"{api}/orgs"
    return {
        "login": login,
        "id": uid,
        "node_id": _node_id("U", uid),
        "avatar_url": f"https://avatars.githubusercontent.com/u/{uid}?v=4",
        "gravatar_id": "",
        "url": api,
        "html_url": f"{HTML_ROOT}/apps/{login.removesuffix('[bot]')}"
        if kind == "Bot"
        else f"{HTML_ROOT}/{login}",
        **links,
        "type": kind,
        "site_admin": False,
    }


def _minimal_repository(api_root: str, owner: str, repo: str) -> dict[str, Any]:
    api = f"{api_root}/repos/{owner}/{repo}"
    return {
        "id": 1296269,
        "node_id": "MDEwOlJlcG9zaXRvcnkxMjk2MjY5",
        "name": repo,
        "full_name": f"{owner}/{repo}",
        "owner": _simple_user(owner, 1, "Organization"),
        "private": False,
        "html_url": f"{HTML_ROOT}/{owner}/{repo}",
        "description": None,
        "fork": False,
        "url": api,
        "statuses_url": f"{api}/statuses/{{sha}}",
        "commits_url": f"{api}/commits{{/sha}}",
        "pulls_url": f"{api}/pulls{{/number}}",
        "issues_url": f"{api}/issues{{/number}}",
    }


def _branch(owner: str, repo: str, ref: str, sha: str, *, fork: bool) -> dict[str, Any]:
    return {
        "label": f"{owner}:{ref}",
        "ref": ref,
        "sha": sha,
        "user": _simple_user(owner, 1, "User"),
        "repo": {"full_name": f"{owner}/{repo}", "name": repo, "fork": fork, "private": False},
    }


# -- request checks ---------------------------------------------------------------------------


def _error(status: int, message: str, **extra: Any) -> _Reply:
    return _Reply(
        status, {"message": message, **extra, "documentation_url": DOCS, "status": str(status)}
    )


def _validation_failed(
    resource: str, field_name: str, message: str, code: str = "custom"
) -> _Reply:
    error = {"resource": resource, "code": code, "field": field_name, "message": message}
    return _error(422, "Validation Failed", errors=[error])


def _invalid_request(message: str) -> _Reply:
    return _error(422, message)


def _not_found() -> _Reply:
    return _error(404, "Not Found")


def _page_args(query: dict[str, str]) -> tuple[int, int]:
    try:
        per_page = min(100, max(1, int(query.get("per_page", "30"))))  # GitHub caps, not refuses
        page = max(1, int(query.get("page", "1")))
    except ValueError:
        raise _error(400, "Invalid pagination parameters") from None
    return per_page, page


def _comment_body(payload: Any, resource: str) -> str:
    if not isinstance(payload, dict) or "body" not in payload:
        raise _invalid_request('Invalid request.\n\n"body" wasn\'t supplied.')
    body = payload["body"]
    if not isinstance(body, str):
        raise _invalid_request(
            f"Invalid request.\n\nFor 'properties/body', {json.dumps(body)} is not a string."
        )
    if len(body) > COMMENT_MAX_CHARS:
        message = f"Body is too long (maximum is {COMMENT_MAX_CHARS} characters)"
        raise _validation_failed(resource, "data", message, "unprocessable")
    return body


def _require_sha(sha: str) -> str:
    if not _SHA.match(sha):
        raise _error(422, f"No commit found for SHA: {sha}")
    return sha


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--token", default="ghs_emulator_token")
    args = parser.parse_args(argv)
    with GitHubEmulator(args.token, host=args.host, port=args.port) as emu:
        print(f"GitHub emulator at {emu.url} (token accepted: {args.token!r}); Ctrl-C to stop")
        print(f"  export GITHUB_API_URL={emu.url} GITHUB_TOKEN={args.token}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


GitHubEmulator.handler = _Handler


if __name__ == "__main__":
    main()
