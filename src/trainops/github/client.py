"""The GitHub endpoints trainops reports with (DESIGN §11): who posts (`login`, `wrote`: the
sticky-comment author check), issue and commit comments (a POST never resent blindly), commit
statuses, the pull requests of a commit. HTTP, retries and pagination are `github.transport`.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from trainops.errors import UsageError
from trainops.github.transport import PER_PAGE, GitHubError, GitHubTransport, json_object
from trainops.scrub import scrub_json

__all__ = [
    "COMMENT_MAX_CHARS",
    "STATUS_DESCRIPTION_MAX_CHARS",
    "STATUS_STATES",
    "GitHubClient",
    "truncate_description",
]

COMMENT_MAX_CHARS = 65_536
STATUS_DESCRIPTION_MAX_CHARS = 140
STATUS_STATES = ("error", "failure", "pending", "success")


class GitHubClient(GitHubTransport):
    """The endpoints, over `GitHubTransport` (same arguments). Repositories are named
    `owner/name` (as in GITHUB_REPOSITORY)."""

    _login: str | None = None  # "": an installation token, identity not known yet

    # -- who posts ----------------------------------------------------------------------------

    def login(self) -> str:
        """The login this client posts as: the token's user (GET /user), or "" for an
        installation token (the Actions GITHUB_TOKEN or a GitHub App's token: GET /user answers
        403, "Resource not accessible by integration", shared/ref/README.md) until this client
        has written a comment, whose answer names it (`<app-slug>[bot]`)."""
        if self._login is None:
            try:
                user = json_object(self.request("GET", "user"))
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
        name = user.get("login")
        if login:
            return isinstance(name, str) and name == login
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
        return json_object(self.request("PATCH", path, json={"body": body}))

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
                return self._learn(json_object(self.request("POST", path, json={"body": body})))
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
        return json_object(self.request("POST", path, json=payload, idempotent=True))

    def list_commit_statuses(self, repo: str, ref: str) -> list[dict[str, Any]]:
        """Every status of `ref`, newest first."""
        return list(self.paginate(f"{_repo_path(repo)}/commits/{_ref(ref)}/statuses"))

    def get_combined_status(self, repo: str, ref: str) -> dict[str, Any]:
        path = f"{_repo_path(repo)}/commits/{_ref(ref)}/status"
        return json_object(self.request("GET", path, params={"per_page": PER_PAGE}))

    # -- pull requests ------------------------------------------------------------------------

    def list_pulls_for_commit(self, repo: str, sha: str) -> list[dict[str, Any]]:
        """Open pull requests containing `sha`, or the merged one that brought it to the default
        branch."""
        return list(self.paginate(f"{_repo_path(repo)}/commits/{_ref(sha)}/pulls"))


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
