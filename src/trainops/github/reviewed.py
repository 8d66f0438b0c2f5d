"""What a reviewer saw (DESIGN §20, plan binding on merge): the Submit actions of a pull
request's plan (`reviewed_actions`), the machine-readable block `plan --github` puts into its
sticky comment (`embed`) with its digest in the `<context>/plan` status (`digest`,
`status_digest`), and, after a merge, the reviewed plans of the commit apply runs on
(`reviewed_plans`).

A pull request's author can write anything into a comment, and a maintainer can edit
trainops's own comment: a plan counts only when (1) its comment was written with trainops's
identity (`comments.by_us`), (2) its block parses strictly, and (3) the newest `<context>/plan`
status of the commit it was made of was set by trainops, passed, and names the block's digest.
A status cannot be edited, and no one else's counts, so an edited block no longer matches.
Anything less is no reviewed plan, with a note saying why; never an exception.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from trainops.github.client import GitHubClient
from trainops.github.comments import PLAN_MARKER, by_us
from trainops.github.transport import GitHubError
from trainops.scrub import is_credential_name

__all__ = [
    "DISPATCH",
    "REVIEWED_MARKER",
    "ReviewedAction",
    "ReviewedPlan",
    "digest",
    "embed",
    "parse",
    "reviewed_actions",
    "reviewed_plans",
    "status_digest",
    "status_summary",
]

REVIEWED_MARKER = "<!-- trainops:reviewed v1 "
DISPATCH = 0  # `ReviewedPlan.pull` of a plan run by `workflow_dispatch` on the commit itself
SHORT = 16  # hex digits of the digest in the status: 64 bits, no second preimage by search
_BLOCK = re.compile(r"^<!-- trainops:reviewed v1 (\{.*\}) -->$", re.MULTILINE)
_DIGEST_IN_STATUS = re.compile(r"^plan ([0-9a-f]{16})\b")
_SHA = re.compile(r"^[0-9a-f]{40}\Z")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}\Z")
_MAX_BLOCK_CHARS = 60_000  # of a comment's 65,536: the rest is the plan


@dataclass(frozen=True)
class ReviewedAction:
    """One Submit as a plan showed it."""

    job: str
    revision: str
    attempt: int
    worst_case_usd: float | None  # the plan's worst case for this submit (None: unpriced)
    credentials: tuple[str, ...]  # sorted names of the secrets spec.env hands over (names only)


@dataclass(frozen=True)
class ReviewedPlan:
    """The last plan trainops posted of a pull request the commit came from (`pull` its number;
    `DISPATCH`: a plan run on the commit itself by `workflow_dispatch`)."""

    pull: int
    head_sha: str  # the commit that plan was made of
    actions: Mapping[str, ReviewedAction]  # by job: every Submit that plan showed


def reviewed_actions(
    planned: Iterable[Any], desired: Any = None, credentials: Collection[str] = ()
) -> dict[str, ReviewedAction]:
    """The Submit actions of a plan by job. `planned`: its actions priced as a saved plan prices
    them, `savedplan.write.planned(plan)` (the caller passes them: savedplan reaches render,
    which reads github, so github may not import it); `desired`: the `Desired` the plan was made
    from, for the credential names each job's `spec.env` hands over; `credentials`: more names
    that hold one (a configured `token_env`)."""
    targets = getattr(desired, "targets", {}) or {}
    out: dict[str, ReviewedAction] = {}
    for action in planned:
        if action.op != "submit":
            continue
        target = targets.get(action.job)
        env = getattr(target.job.spec, "env", None) if target is not None else None
        names = sorted(
            {n for n in env or () if isinstance(n, str) and is_credential_name(n, credentials)}
        )
        out[action.job] = ReviewedAction(
            job=action.job,
            revision=action.revision or "",
            attempt=action.attempt or 1,
            worst_case_usd=action.worst_case_usd,
            credentials=tuple(names),
        )
    return out


def _document(reviewed: Mapping[str, ReviewedAction], head_sha: str) -> str:
    """The block's JSON: canonical (sorted, compact), `>` escaped so that no value can close the
    HTML comment it lives in."""
    doc = {
        "head": head_sha,
        "actions": [
            {
                "job": a.job,
                "revision": a.revision,
                "attempt": a.attempt,
                "worst_case_usd": a.worst_case_usd,
                "credentials": list(a.credentials),
            }
            for _, a in sorted(reviewed.items())
        ],
    }
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return text.replace(">", "\\u003e").replace("<", "\\u003c")


def digest(reviewed: Mapping[str, ReviewedAction], head_sha: str = "") -> str:
    """sha256 (hex) of the block of `reviewed`, made of `head_sha`."""
    return hashlib.sha256(_document(reviewed, head_sha).encode()).hexdigest()


def embed(reviewed: Mapping[str, ReviewedAction], head_sha: str = "") -> str:
    """The hidden line the sticky plan comment carries: `<!-- trainops:reviewed v1 {json} -->`.
    "" when it would not fit a comment beside the plan (some 400 submits): then the plan records
    no reviewed plan, and the comment says so."""
    line = f"{REVIEWED_MARKER}{_document(reviewed, head_sha)} -->"
    return line if len(line) <= _MAX_BLOCK_CHARS else ""


def status_digest(reviewed: Mapping[str, ReviewedAction], head_sha: str = "") -> str:
    """The digest as the status names it: its first 16 hex digits."""
    return digest(reviewed, head_sha)[:SHORT]


def status_summary(reviewed: Mapping[str, ReviewedAction], head_sha: str = "") -> str:
    """`plan 1a2b3c4d5e6f7a8b: 1 to submit, up to $5.49`: which plan passed, for a reviewer."""
    short = status_digest(reviewed, head_sha)
    if not reviewed:
        return f"plan {short}: nothing to submit"
    costs = [a.worst_case_usd for a in reviewed.values()]
    total = (
        "no worst case"
        if any(c is None for c in costs)
        else f"up to ${sum(c for c in costs if c is not None):,.2f}"
    )
    return f"plan {short}: {len(reviewed)} to submit, {total}"


def parse(body: str) -> tuple[str, dict[str, ReviewedAction]] | None:
    """(head sha, actions by job) of the one block in a comment's `body`; None when there is
    none, more than one, or it is not exactly what `embed` writes."""
    found = _BLOCK.findall(body)
    if len(found) != 1:
        return None
    try:
        doc = json.loads(found[0])
    except ValueError:
        return None
    if not isinstance(doc, dict) or set(doc) != {"head", "actions"}:
        return None
    head, items = doc["head"], doc["actions"]
    if not isinstance(head, str) or not _SHA.match(head) or not isinstance(items, list):
        return None
    actions: dict[str, ReviewedAction] = {}
    for item in items:
        action = _action(item)
        if action is None or action.job in actions:
            return None
        actions[action.job] = action
    # What was written is what `embed` writes of these values, byte for byte.
    if _document(actions, head) != found[0]:
        return None
    return head, actions


def _action(item: Any) -> ReviewedAction | None:
    keys = {"job", "revision", "attempt", "worst_case_usd", "credentials"}
    if not isinstance(item, dict) or set(item) != keys:
        return None
    job, revision, attempt = item["job"], item["revision"], item["attempt"]
    cost, names = item["worst_case_usd"], item["credentials"]
    if not (isinstance(job, str) and job and isinstance(revision, str)):
        return None
    if not isinstance(attempt, int) or isinstance(attempt, bool) or attempt < 1:
        return None
    if cost is not None and (
        isinstance(cost, bool)
        or not isinstance(cost, int | float)
        or not math.isfinite(cost)
        or cost < 0
    ):
        return None
    if not isinstance(names, list) or not all(
        isinstance(n, str) and _ENV_NAME.match(n) for n in names
    ):
        return None
    if names != sorted(set(names)):
        return None
    worst = None if cost is None else float(cost)
    return ReviewedAction(job, revision, attempt, worst, tuple(names))


def reviewed_plans(
    gh: GitHubClient,
    repo: str,
    sha: str,
    *,
    context: str = "trainops",
    ancestor: Callable[[str, str], bool] | None = None,
) -> tuple[list[ReviewedPlan], str]:
    """The reviewed plans of commit `sha` on the default branch, and a note for the user when
    something was unreadable ("" when nothing was).

    A pull request counts when GitHub names it for `sha` (`GET /commits/{sha}/pulls`: on the
    default branch, the merged pull request that introduced the commit), it was merged
    (`merged_at`), and `sha` is its merge commit or its head is an ancestor of `sha`
    (`ancestor(head, sha)`, from the local clone, False when it cannot tell; without it only
    the merge commit counts).
    Its plan is the newest sticky plan comment trainops wrote, made of the pull request's last
    head, whose block the newest `<context>/plan` status of that head (set by trainops,
    success) names. A plan that `workflow_dispatch` ran on `sha` itself (a commit comment,
    `pull` 0) counts on the same terms. A direct push has none: ([], "").
    """
    plans: list[ReviewedPlan] = []
    notes: list[str] = []
    try:
        pulls = gh.list_pulls_for_commit(repo, sha)
    except GitHubError as exc:
        pulls = []
        notes.append(f"cannot list the pull requests of {sha[:12]}: {exc.message}")
    for pull in pulls:
        plan, note = _pull_plan(gh, repo, sha, pull, context, ancestor)
        if plan is not None:
            plans.append(plan)
        if note:
            notes.append(note)
    plan, note = _dispatch_plan(gh, repo, sha, context)
    if plan is not None:
        plans.append(plan)
    if note:
        notes.append(note)
    return plans, "; ".join(notes)


def _pull_plan(
    gh: GitHubClient,
    repo: str,
    sha: str,
    pull: Any,
    context: str,
    ancestor: Callable[[str, str], bool] | None,
) -> tuple[ReviewedPlan | None, str]:
    if not isinstance(pull, dict) or not isinstance(pull.get("number"), int):
        return None, ""
    number = pull["number"]
    head = pull.get("head")
    head_sha = head.get("sha") if isinstance(head, dict) else None
    if not pull.get("merged_at") or pull.get("state") != "closed":
        return None, ""  # an open pull request containing the commit: not what was merged
    if not isinstance(head_sha, str) or not _SHA.match(head_sha):
        return None, f"pull request #{number} has no head commit"
    merged_here = pull.get("merge_commit_sha") == sha
    if not merged_here and not (ancestor is not None and ancestor(head_sha, sha)):
        return None, ""  # merged elsewhere: not the merge that brought this commit
    try:
        comments = gh.list_issue_comments(repo, number)
    except GitHubError as exc:
        return None, f"cannot read the plan of #{number}: {exc.message}"
    found = _plan_of(gh, repo, comments, head_sha, context)
    if isinstance(found, str):
        return None, f"#{number}: {found}"
    return ReviewedPlan(number, head_sha, found), ""


def _dispatch_plan(
    gh: GitHubClient, repo: str, sha: str, context: str
) -> tuple[ReviewedPlan | None, str]:
    try:
        comments = gh.list_commit_comments(repo, sha)
    except GitHubError as exc:
        return None, f"cannot read the commit comments of {sha[:12]}: {exc.message}"
    if not by_us(gh, comments, PLAN_MARKER):
        return None, ""
    found = _plan_of(gh, repo, comments, sha, context)
    if isinstance(found, str):
        return None, f"the plan of {sha[:12]}: {found}"
    return ReviewedPlan(DISPATCH, sha, found), ""


def _plan_of(
    gh: GitHubClient, repo: str, comments: list[Any], head_sha: str, context: str
) -> dict[str, ReviewedAction] | str:
    """The actions of the newest plan comment of ours in `comments` that is made of `head_sha`
    and whose block the newest `<context>/plan` status of `head_sha` names; or why there is
    none. The status is the anchor (no one edits it): a comment another App's bot wrote, which
    an installation token cannot tell from its own (docs/github.md), counts only when it says
    exactly what the status names."""
    ours = sorted(by_us(gh, comments, PLAN_MARKER), key=lambda c: int(c["id"]), reverse=True)
    if not ours:
        return "trainops posted no plan"
    try:
        statuses = gh.list_commit_statuses(repo, head_sha)  # newest first
    except GitHubError as exc:
        return f"cannot read the statuses of {head_sha[:12]}: {exc.message}"
    want = f"{context}/plan".lower()
    status = next(
        (s for s in statuses if isinstance(s, dict) and str(s.get("context")).lower() == want),
        None,
    )
    if status is None or not gh.wrote({"user": status.get("creator")}):
        return f"no {context}/plan status by trainops on {head_sha[:12]}"
    if status.get("state") != "success":
        return f"its {context}/plan status is {status.get('state')}, not success"
    named = _DIGEST_IN_STATUS.match(str(status.get("description") or ""))
    why = ""
    for comment in ours:
        parsed = parse(str(comment.get("body") or ""))
        if parsed is None:
            why = why or "its plan comment has no readable reviewed-plan block"
            continue
        made_of, actions = parsed
        if made_of != head_sha:
            why = (
                why or f"the last plan is of {made_of[:12]}, not of its last commit {head_sha[:12]}"
            )
            continue
        if named is None or named.group(1) != status_digest(actions, made_of):
            why = why or f"its plan comment does not match the {context}/plan status (edited?)"
            continue
        return actions
    return why
