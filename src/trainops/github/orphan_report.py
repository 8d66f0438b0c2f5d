"""Orphaned runs on the commit that declared their job (DESIGN §20, "runs nobody declared"): a
scheduled reconcile (or `serve --github`) that finds a run carrying one of this repository's
jobs' ownership marks that no state file knows posts one commit comment on that job's source
commit, naming each such run, its age and cost so far and the `trainops adopt` that binds it.

Once per run id: every comment lists the run ids it names in a hidden line, and the next pass
reads them back from the comments trainops wrote on that commit (`comments.by_us`: a comment
someone else wrote listing run ids suppresses nothing). A crash after the POST is no second
comment either: the POST is never resent blindly (`GitHubClient._create_comment`), and the next
pass finds the comment it made.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from trainops import escape
from trainops.errors import UsageError
from trainops.github.client import COMMENT_MAX_CHARS, GitHubClient
from trainops.github.comments import by_us, fit
from trainops.github.context import SHA, ActionsContext, client_from_env
from trainops.github.transport import GitHubError
from trainops.manifest import format_duration

if TYPE_CHECKING:
    from trainops.state.model import JobState

__all__ = [
    "ORPHAN_MARKER",
    "SCHEDULED_EVENTS",
    "orphan_comment",
    "publish_orphans",
    "report_orphans",
    "reported_ids",
    "scheduled",
    "sources_of",
]

ORPHAN_MARKER = "<!-- trainops:orphaned -->"
# The runs of reconcile.yml: its schedule, and a manual run of it (apply.yml's pushes do not
# take a census: a push wants its apply, not a listing of every run of each provider).
SCHEDULED_EVENTS = ("schedule", "workflow_dispatch")
_IDS = re.compile(r"^<!-- trainops:orphaned-runs (\[.*\]) -->$", re.MULTILINE)


def scheduled(env: Mapping[str, str]) -> bool:
    """Whether this `apply --github` is a scheduled (or manual) reconcile in Actions."""
    ctx = ActionsContext.from_env(env)
    return ctx is not None and ctx.event_name in SCHEDULED_EVENTS


def sources_of(state: Mapping[str, JobState]) -> dict[str, str]:
    """Each job's source commit: its newest run's that names one."""
    out: dict[str, str] = {}
    for name, job in state.items():
        for run in reversed(job.runs):
            if run.source_commit:
                out[name] = run.source_commit
                break
    return out


def publish_orphans(
    orphaned: Iterable[Any],
    state: Mapping[str, JobState],
    now: float,
    env: Mapping[str, str],
    *,
    on_note: Callable[[str], None] = lambda _n: None,
    client: GitHubClient | None = None,
) -> int:
    """`report_orphans` where the pass runs: the repository and the applied commit (for a job
    no state file names) from the Actions context, a client from `env` unless given."""
    ctx = ActionsContext.from_env(env)
    orphaned = list(orphaned)
    if ctx is None or not orphaned:
        return 0
    try:
        gh = client or client_from_env(env)
    except UsageError as exc:
        on_note(f"orphaned runs are not reported to GitHub: {exc.message}")
        return 0
    try:
        return report_orphans(
            gh, ctx.repository, orphaned, sources_of(state), now, fallback=ctx.sha, on_note=on_note
        )
    finally:
        if client is None:
            gh.close()


def report_orphans(
    gh: GitHubClient,
    repo: str,
    orphaned: Iterable[Any],
    sources: Mapping[str, str],
    now: float,
    *,
    fallback: str = "",
    on_note: Callable[[str], None] = lambda _n: None,
) -> int:
    """Post the orphaned runs (`reconcile.orphans.Stray`s of kind orphaned) not reported yet,
    one comment per source commit; return how many runs were reported. `sources`: each job's
    source commit, from its state file (the newest run's); `fallback`: the commit to use for a
    job no state file names (the commit the pass applied), "" to leave such runs out. A GitHub
    failure on one commit is a note, and that commit's runs are tried again on the next pass."""
    by_commit: dict[str, list[Any]] = {}
    for stray in orphaned:
        sha = sources.get(stray.job) or fallback
        if SHA.match(sha or ""):
            by_commit.setdefault(sha, []).append(stray)
    posted = 0
    for sha, strays in sorted(by_commit.items()):
        try:
            known = reported_ids(gh, gh.list_commit_comments(repo, sha))
            new = sorted(
                (s for s in strays if s.run_id not in known), key=lambda s: (s.job, s.run_id)
            )
            new = list({s.run_id: s for s in new}.values())
            if new:
                gh.create_commit_comment(repo, sha, orphan_comment(new, now))
                posted += len(new)
        except GitHubError as exc:
            on_note(f"orphaned runs not reported on {sha[:12]}: {exc.message}")
    return posted


def reported_ids(gh: GitHubClient, comments: list[Any]) -> set[str]:
    """The run ids the orphan comments trainops wrote list (a malformed list: none)."""
    ids: set[str] = set()
    for comment in by_us(gh, comments, ORPHAN_MARKER):
        found = _IDS.search(str(comment.get("body") or ""))
        if found is None:
            continue
        try:
            listed = json.loads(found.group(1))
        except ValueError:
            continue
        if isinstance(listed, list):
            ids.update(i for i in listed if isinstance(i, str))
    return ids


def orphan_comment(strays: Sequence[Any], now: float) -> str:
    """The comment: the marker, the hidden list of run ids, a table of the runs, what to do."""
    ids = json.dumps([s.run_id for s in strays], ensure_ascii=True)
    ids = ids.replace("<", "\\u003c").replace(">", "\\u003e")
    lines = [
        ORPHAN_MARKER,
        f"<!-- trainops:orphaned-runs {ids} -->",
        "### trainops: runs nobody declared",
        "",
        "These runs carry the ownership marks of a job of this commit, but no state file knows "
        "them (a state branch reset, or a crash before the run id was recorded): nothing "
        "follows, retries or cancels them, and they may still cost money.",
        "",
        "| job | run | provider | health | age | cost so far | bind it with |",
        "|---|---|---|---|---|---|---|",
    ]
    for s in strays:
        adopt = f"trainops adopt {s.job} {s.run_id}"
        lines.append(
            f"| {escape.md_code(s.job, in_table=True)} | {escape.md_code(s.run_id, in_table=True)}"
            f" | {escape.md_text(s.provider)} | {escape.md_text(s.health.value)}"
            f" | {format_duration(s.age(now))} | ${s.cost_usd:,.2f}"
            f" | {escape.md_code(adopt, in_table=True)} |"
        )
    lines += [
        "",
        "Adopt a run to follow it as its job's, or cancel it on the provider. "
        "`trainops status --all` lists every run nobody declared.",
        "",
    ]
    head = "\n".join(lines[:2]) + "\n"
    return head + fit("\n".join(lines[2:]), COMMENT_MAX_CHARS - len(head))
