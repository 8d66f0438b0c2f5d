"""The plan on a pull request (DESIGN §11): one sticky plan comment, found again by its marker
and its author, the `<context>/plan` status on the head commit (the review gate), and the job
summary. Every text posted goes through `trainops.scrub`, and the comment is edited, not posted
again, so a plan repeated after a crash posts nothing twice.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from typing import Any

from trainops.errors import Problem, UsageError
from trainops.github.client import COMMENT_MAX_CHARS, GitHubClient, truncate_description
from trainops.github.comments import PLAN_MARKER, by_us, fit
from trainops.github.context import PULL_REQUEST_EVENTS, SHA, ActionsContext, client_from_env
from trainops.github.reviewed import ReviewedAction, embed, status_summary
from trainops.github.specdiff import diffs_markdown
from trainops.github.summary import append_summary
from trainops.github.transport import GitHubError
from trainops.scrub import scrubber

__all__ = ["DISPATCH_EVENT", "PLAN_MARKER", "plan_comment", "plan_description", "publish_plan"]

DISPATCH_EVENT = "workflow_dispatch"


def publish_plan(
    markdown: str,
    failed: bool,
    problems: list[Problem],
    *,
    status_context: str = "trainops",
    diffs: Mapping[str, Sequence[str]] | None = None,
    reviewed: Mapping[str, ReviewedAction] | None = None,
    env: Mapping[str, str] | None = None,
    client: GitHubClient | None = None,
) -> list[str]:
    """Post the plan where the workflow runs; return notes for stderr.

    On a pull request: the sticky comment and the `<status_context>/plan` status on the head
    commit (failure when `failed`: the review gate), and the job summary. On `workflow_dispatch`
    (a plan of the commit itself, to review after a merge that showed something else): a
    commit comment and the status on that commit. Elsewhere (push, schedule): the job summary
    only. A token that may not write (403: a fork's pull request) leaves the job summary and a
    note; any other GitHub failure raises `GitHubError` (exit 3), so the gate never passes
    silently.

    `reviewed`: the plan's Submit actions (`reviewed.reviewed_actions`); the comment carries
    their block and the status their digest, which `apply --github` binds a merge to (§20).
    """
    env = os.environ if env is None else env
    scrub = scrubber(env)
    markdown = scrub(markdown + diffs_markdown(diffs or {}))
    ctx = ActionsContext.from_env(env)
    if ctx is None:
        return ["no GitHub context (GITHUB_REPOSITORY is not set): the plan is printed, not posted"]
    notes = append_summary(ctx.step_summary, markdown)
    if ctx.event_name == DISPATCH_EVENT:
        if not SHA.match(ctx.sha):
            return [*notes, "not posting the plan: GITHUB_SHA is not a commit sha"]
        number, head = 0, ctx.sha
    elif ctx.event_name not in PULL_REQUEST_EVENTS:
        return notes
    elif (pull := ctx.pull_request) is None:
        why = ctx.event_error or "the event has no pull_request number and head sha"
        return [*notes, f"not posting the plan: {why}"]
    else:
        number, head = pull
    try:
        gh = client or client_from_env(env)
    except UsageError as exc:
        return [*notes, f"not posting the plan: {exc.message}; it is in the job summary"]
    block = "" if reviewed is None else embed(reviewed, head)
    if reviewed is not None and not block:
        notes.append(
            f"{len(reviewed)} submits are too many to record for plan binding: apply after the "
            "merge finds no reviewed plan of them (policy.require_reviewed_plan)"
        )
    summary = status_summary(reviewed, head) if block and reviewed is not None else ""
    description = plan_description(markdown, failed, problems, summary=summary)
    body = plan_comment(markdown, head, ctx.run_url, block=block)
    try:
        if number:
            comment = _upsert_plan_comment(gh, ctx.repository, number, body)
        else:
            comment = _commit_plan_comment(gh, ctx.repository, head, body)
        gh.create_commit_status(
            ctx.repository,
            head,
            "failure" if failed else "success",
            context=f"{status_context}/plan",
            description=scrub(description),
            target_url=str(comment.get("html_url") or "") or ctx.run_url or None,
        )
    except GitHubError as exc:
        if exc.status != 403:
            raise
        notes.append(
            "GitHub refused to write (403; a pull request from a fork gets a read-only "
            "token): the plan is in the job summary only"
        )
    finally:
        if client is None:
            gh.close()
    return notes


def plan_comment(markdown: str, head_sha: str, run_url: str = "", block: str = "") -> str:
    """The sticky comment: the marker first (how it is found again), the reviewed-plan block
    (`reviewed.embed`, a hidden line) when there is one, the plan, where it came from; never
    over GitHub's comment limit."""
    footer = f"\n<sub>Plan of {head_sha[:12]}"
    footer += f" · [workflow run]({run_url})</sub>\n" if run_url else "</sub>\n"
    head = f"{PLAN_MARKER}\n{block}\n" if block else f"{PLAN_MARKER}\n"
    room = COMMENT_MAX_CHARS - len(head) - len(footer)
    return f"{head}{fit(markdown, room)}{footer}"


def plan_description(
    markdown: str, failed: bool, problems: Sequence[Problem], summary: str = ""
) -> str:
    """One line of at most 140 characters: the plan's summary line (or `summary`: the digest
    of its reviewed actions, `reviewed.status_summary`), and why it fails."""
    match = re.search(r"^\*\*(.+?)\*\*\s*$", markdown, re.MULTILINE)
    parts = [summary or (match.group(1) if match else "Plan ready").rstrip(".")]
    if problems:
        files = len({p.file for p in problems})
        parts.append(f"{len(problems)} problem(s) in {files} file(s)")
    elif failed:
        parts.append("refused by policy or budget")
    return truncate_description("; ".join(parts))


def _upsert_plan_comment(gh: GitHubClient, repo: str, number: int, body: str) -> dict[str, Any]:
    """Edit the newest comment that trainops wrote (its own login, and starting with the marker;
    a reply quoting it starts with `>`), or create the first one. Anyone may write the marker:
    someone else's comment is never edited."""
    ours = by_us(gh, gh.list_issue_comments(repo, number), PLAN_MARKER)
    if not ours:
        return gh.create_issue_comment(repo, number, body)
    newest = max(ours, key=lambda c: int(c.get("id") or 0))
    if newest.get("body") == body:
        return newest
    return gh.update_issue_comment(repo, int(newest["id"]), body)


def _commit_plan_comment(gh: GitHubClient, repo: str, sha: str, body: str) -> dict[str, Any]:
    """The plan of a commit (`workflow_dispatch`), as a commit comment: the newest of ours is
    kept when it says the same (a repeated run posts nothing twice), else one more is posted
    (the newest counts)."""
    ours = by_us(gh, gh.list_commit_comments(repo, sha), PLAN_MARKER)
    if ours:
        newest = max(ours, key=lambda c: int(c.get("id") or 0))
        if newest.get("body") == body:
            return newest
    return gh.create_commit_comment(repo, sha, body)
