"""Plan binding on merge, where the workflow runs (DESIGN §20): `GitHubReviews` reads the reviewed
plans of the commit being applied (`reviewed.reviewed_plans`, once per commit and process) and
tells what no reviewed plan showed: one commit comment on that commit per distinct list (its
marker holds a digest of the list, and only trainops's own comments count, `comments.by_us`), and
the same lines in the job summary.

Without a GitHub context or a token there is no reviewed plan to find: `plans` says why, so
`block` holds every submission rather than letting one through unchecked.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Mapping, Sequence

from trainops import escape
from trainops.errors import UsageError
from trainops.github.client import COMMENT_MAX_CHARS, GitHubClient
from trainops.github.comments import by_us, fit, one_line
from trainops.github.context import SHA, ActionsContext, client_from_env
from trainops.github.reviewed import ReviewedPlan, reviewed_plans
from trainops.github.summary import append_summary
from trainops.github.transport import GitHubError
from trainops.scrub import scrubber

__all__ = ["UNREVIEWED_MARKER", "GitHubReviews", "github_reviews", "unreviewed_comment"]

UNREVIEWED_MARKER = "<!-- trainops:unreviewed:"


class GitHubReviews:
    """`reconcile.context.Reviews` over GitHub. `client` None: no GitHub to ask, `why` says
    why not (every commit then has no reviewed plan)."""

    def __init__(
        self,
        client: GitHubClient | None,
        repository: str,
        *,
        context: str = "trainops",
        ancestor: Callable[[str, str], bool] | None = None,
        step_summary: str = "",
        why: str = "",
        scrub: Callable[[str], str] = str,
        on_note: Callable[[str], None] = lambda _n: None,
    ) -> None:
        self.client, self.repository, self.context = client, repository, context
        self.ancestor, self.step_summary, self.why = ancestor, step_summary, why
        self.scrub, self.on_note = scrub, on_note
        self._plans: dict[str, tuple[list[ReviewedPlan], str]] = {}
        self._told: set[str] = set()  # the markers of the lists this process told

    def close(self) -> None:
        if self.client is not None:
            self.client.close()

    def plans(self, commit: str) -> tuple[Sequence[ReviewedPlan], str]:
        if self.client is None:
            return [], self.why
        if not SHA.match(commit):
            return [], "the applied commit is not a commit sha (a working tree?)"
        if commit not in self._plans:
            self._plans[commit] = reviewed_plans(
                self.client, self.repository, commit, context=self.context, ancestor=self.ancestor
            )
        return self._plans[commit]

    def report(self, commit: str, unreviewed: Mapping[str, str], held: bool) -> None:
        body = self.scrub(unreviewed_comment(unreviewed, held))
        marker = body.split("\n", 1)[0]
        if marker in self._told:
            return
        self._told.add(marker)
        for note in append_summary(self.step_summary, body.split("\n", 1)[1]):
            self.on_note(note)
        if self.client is None or not SHA.match(commit):
            return
        try:
            comments = self.client.list_commit_comments(self.repository, commit)
            if not by_us(self.client, comments, marker):
                self.client.create_commit_comment(self.repository, commit, body)
        except GitHubError as exc:
            self.on_note(f"GitHub: unreviewed submissions not reported ({exc.message})")


def unreviewed_comment(unreviewed: Mapping[str, str], held: bool) -> str:
    """The commit comment: its marker (a digest of what it says), then one line per job."""
    lines = [f"{job}: {why}" for job, why in sorted(unreviewed.items())]
    digest = hashlib.sha256("\n".join([str(held), *lines]).encode()).hexdigest()[:16]
    if held:
        head = (
            "Held under `policy.require_reviewed_plan: block`: no reviewed plan of this commit "
            "showed these submissions. They stay Blocked until a plan of this commit is "
            "reviewed: run the plan workflow on it (`workflow_dispatch`), or open a pull request."
        )
    else:
        head = (
            "Started although no reviewed plan of this commit showed them "
            "(`policy.require_reviewed_plan: warn`; `block` holds them instead)."
        )
    body = [
        f"{UNREVIEWED_MARKER}{digest} -->",
        "### trainops: submissions no reviewed plan showed",
        "",
        head,
        "",
        *(
            f"- {escape.md_code(job)}: {escape.md_text(one_line(why))}"
            for job, why in sorted(unreviewed.items())
        ),
    ]
    return fit("\n".join(body) + "\n", COMMENT_MAX_CHARS)


def github_reviews(
    status_context: str,
    token_env: str,
    *,
    ancestor: Callable[[str, str], bool] | None = None,
    on_note: Callable[[str], None] = lambda _n: None,
    env: Mapping[str, str] | None = None,
    client: GitHubClient | None = None,
) -> GitHubReviews:
    """The reviews of `apply --github` / `serve --github`: the repository and job summary from
    the Actions context, a client from `env` unless given; without a context or a token, one
    that finds no reviewed plan and says why."""
    env = os.environ if env is None else env
    ctx = ActionsContext.from_env(env)
    if ctx is None:
        why = "no GitHub context (GITHUB_REPOSITORY is not set)"
        return GitHubReviews(None, "", why=why, on_note=on_note)
    scrub = scrubber(env, [env.get(token_env, "")])
    try:
        gh = client or client_from_env(env)
    except UsageError as exc:
        return GitHubReviews(None, ctx.repository, why=exc.message, on_note=on_note)
    return GitHubReviews(
        gh,
        ctx.repository,
        context=status_context,
        ancestor=ancestor,
        step_summary=ctx.step_summary,
        scrub=scrub,
        on_note=on_note,
    )
