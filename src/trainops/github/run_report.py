"""Each run's outcome on its commit (DESIGN §11): `run_reporter` gives apply a `RunReporter`
that sets `trainops/<job>` statuses and posts one commit comment per terminal run (and one per
promotion outcome). Every text posted goes through `trainops.scrub`, and every post is first
compared with what GitHub already holds, so a report repeated after a crash posts nothing twice.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from trainops import escape, metrics
from trainops.errors import UsageError
from trainops.github.client import COMMENT_MAX_CHARS, GitHubClient, truncate_description
from trainops.github.comments import by_us, fit, one_line
from trainops.github.context import SHA, ActionsContext, client_from_env
from trainops.github.set_report import set_comment, set_marker
from trainops.github.transport import GitHubError
from trainops.manifest import format_duration, set_of
from trainops.scrub import scrubber
from trainops.state.model import Health

if TYPE_CHECKING:
    from trainops.manifest import Config
    from trainops.plan import SetOutcome
    from trainops.state.model import Run

__all__ = [
    "STATUS_STATE",
    "GitHubRunReporter",
    "promotion_comment",
    "run_comment",
    "run_marker",
    "run_reporter",
    "run_status",
]

LOG_TAIL_LINES = 30
LOG_TAIL_CHARS = 8_000

# A commit status is red for both `failure` and `error`. A canceled run did not fail: it was
# stopped (replaced, suspended, over budget, or by hand), so it is an `error`: "did not complete".
STATUS_STATE = {
    Health.PENDING: "pending",
    Health.RUNNING: "pending",
    Health.SUCCEEDED: "success",
    Health.FAILED: "failure",
    Health.CANCELED: "error",
}


def _promotion_line(status: str) -> str:
    """A run's record for one alias as a sentence (promotion.gate's statuses)."""
    if status == "done":
        return "moved to this run"
    if status.startswith("held: "):
        return "held, the alias did not move: " + one_line(status.removeprefix("held: "))
    return one_line(status)


def run_marker(job: str, run: Run) -> str:
    return f"<!-- trainops:run:{job}:{run.run_id}:{run.health.value} -->"


def run_status(run: Run) -> tuple[str, str]:
    """The commit status state and description (at most 140 characters) for `run`'s health:
    outcome and duration, cost, produced version, and the reason for a failure or cancel."""
    health = run.health
    if health is Health.RUNNING and run.started_at is not None:
        head = f"Running since {_utc(run.started_at)}"
    elif health.terminal and run.started_at is not None and run.completed_at is not None:
        took = format_duration(max(0.0, run.completed_at - run.started_at))
        head = f"{health.value} {'in' if health is Health.SUCCEEDED else 'after'} {took}"
    elif health is Health.PENDING:
        head = "Pending: waiting to start"
    else:
        head = health.value
    parts = [head]
    if run.cost_usd is not None:
        parts.append(f"${run.cost_usd:,.2f}" + ("" if health.terminal else " so far"))
    if run.outputs.get("version"):
        parts.append(run.outputs["version"])
    reason = run.error if health is Health.FAILED else run.reason
    if reason and health.terminal:
        parts.append(one_line(reason))
    held = [v for _k, v in sorted(run.promotions.items()) if v.startswith("held: ")]
    if held:
        parts.append("promotion " + one_line(held[0]).split(";")[0])
    return STATUS_STATE.get(health, "pending"), truncate_description(" · ".join(parts))


def run_comment(
    job: str, run: Run, log_tail: str, *, branch: str = "trainops/state", run_url: str = ""
) -> str:
    """The commit comment for a terminal run: outcome, reason, cost, outputs, the last log lines
    and where its snapshot is kept; at most GitHub's comment limit."""
    health = run.health
    code = functools.partial(escape.md_code, in_table=True)  # the provider chose the run id
    rows = [
        ("run", f"{code(run.run_id or '-')} ({escape.md_text(run.provider)})"),
        ("revision", f"{code(run.revision)}, attempt {run.attempt}"),
    ]
    if run.started_at is not None and run.completed_at is not None:
        rows.append(("duration", format_duration(max(0.0, run.completed_at - run.started_at))))
    rows.append(("cost", "unknown" if run.cost_usd is None else f"${run.cost_usd:,.2f}"))
    if run.outputs.get("version"):
        rows.append(("produced version", code(one_line(run.outputs["version"], 200))))
    if run.snapshot:
        rows.append(("snapshot", f"{code(run.snapshot)} on branch {code(branch)}"))
    if run_url:
        rows.append(("reported by", f"[workflow run]({run_url})"))
    lines = [
        run_marker(job, run),
        f"### trainops: {escape.md_code(job)} {health.value.lower()}",
        "",
        "| | |",
        "|---|---|",
        *(f"| {k} | {v} |" for k, v in rows),
    ]
    reason = run.error if health is Health.FAILED else run.reason
    if reason:
        label = "Error" if health is Health.FAILED else "Reason"
        lines += ["", f"**{label}:** {escape.md_text(one_line(reason))}"]
    outputs = {k: v for k, v in sorted(run.outputs.items()) if k != "version"}
    if outputs:
        lines += ["", "**Outputs**", ""]
        lines += [
            f"- {escape.md_code(one_line(k, 200))}: {escape.md_code(one_line(v, 200))}"
            for k, v in outputs.items()
        ]
    if run.metrics:
        lines += ["", "**Metrics**", ""]
        lines += [
            f"- {escape.md_code(k)}: {escape.md_code(metrics.fmt(v))}"
            for k, v in sorted(run.metrics.items())
        ]
    if run.promotions:
        lines += ["", "**Promotion**", ""]
        lines += [
            f"- {escape.md_code(one_line(k, 200))}: {escape.md_text(_promotion_line(v))}"
            for k, v in sorted(run.promotions.items())
        ]
    tail = escape.block(_tail(log_tail))
    if tail:
        fence = "`" * max(3, _longest_backtick_run(tail) + 1)
        count = tail.count("\n") + 1
        lines += ["", f"**Last {count} log line(s)**", "", f"{fence}text", tail, fence]
    return fit("\n".join(lines) + "\n", COMMENT_MAX_CHARS)


class GitHubRunReporter:
    """apply's `RunReporter` for GitHub: status `<prefix>/<job>` on the run's source commit, and
    one commit comment per terminal run (found again by `run_marker`, so never posted twice);
    a sweep's member gets no comment of its own: its set gets one when settled (`report_set`).

    A status equal to the newest one of its context is not posted again, so repeating a report
    (apply crashed after posting, before recording) changes nothing on GitHub. A failing call
    raises `GitHubError`: apply stops reporting for this pass and the next apply retries.
    """

    def __init__(
        self,
        client: GitHubClient,
        repository: str,
        *,
        context_prefix: str = "trainops",
        branch: str = "trainops/state",
        run_url: str = "",
        scrub: Callable[[str], str] = str,
        on_note: Callable[[str], None] | None = None,
    ) -> None:
        self.client = client
        self.repository = repository
        self.context_prefix = context_prefix
        self.branch = branch
        self.run_url = run_url
        self.scrub = scrub
        self.on_note = on_note or (lambda _note: None)
        self._statuses: dict[str, list[dict[str, Any]]] = {}  # sha -> statuses, newest first
        self._sets: set[str] = set()  # markers of the set comments on GitHub (this process)

    def close(self) -> None:
        self.client.close()

    def report(self, job: str, run: Run, log_tail: str) -> bool:
        sha = run.source_commit
        if not SHA.match(sha):
            self.on_note(
                f"{job}: run {run.run_id} has no source commit; its health is not "
                "reported to GitHub"
            )
            return True  # nothing to report on, ever: do not keep it in the outbox
        try:
            self._set_status(job, run, sha)
            if run.health.terminal and not set_of(job):
                self._comment_once(job, run, sha, log_tail)
        except GitHubError as exc:
            self.on_note(
                f"GitHub: {job} {run.health.value} not reported ({exc.message}); "
                "the next apply sends it"
            )
            raise
        return True

    def _set_status(self, job: str, run: Run, sha: str) -> None:
        context = f"{self.context_prefix}/{job}"
        state, description = run_status(run)
        description = truncate_description(self.scrub(description))
        if sha not in self._statuses:
            self._statuses[sha] = self.client.list_commit_statuses(self.repository, sha)
        latest = next(
            (
                s
                for s in self._statuses[sha]
                if str(s.get("context", "")).lower() == context.lower()
            ),
            None,
        )
        if latest and (latest.get("state"), latest.get("description")) == (state, description):
            return
        posted = self.client.create_commit_status(
            self.repository,
            sha,
            state,
            context=context,
            description=description,
            target_url=self.run_url or None,
        )
        self._statuses[sha].insert(0, posted)

    def _comment_once(self, job: str, run: Run, sha: str, log_tail: str) -> None:
        marker = run_marker(job, run)
        if by_us(self.client, self.client.list_commit_comments(self.repository, sha), marker):
            return
        body = run_comment(job, run, self.scrub(log_tail), branch=self.branch, run_url=self.run_url)
        self.client.create_commit_comment(self.repository, sha, self.scrub(body))

    def report_promotion(self, job: str, sha: str, lines: list[str]) -> bool:
        """`PromotionReporter`: one commit comment on `sha` per distinct outcome (its marker
        holds a digest of the text), so a repeat after a crash posts nothing twice."""
        if not SHA.match(sha):
            return True
        body = promotion_comment(job, lines)
        marker = body.split("\n", 1)[0]
        try:
            if by_us(self.client, self.client.list_commit_comments(self.repository, sha), marker):
                return True
            self.client.create_commit_comment(self.repository, sha, self.scrub(body))
        except GitHubError as exc:
            self.on_note(f"GitHub: the promotion of {job} not reported ({exc.message})")
            raise
        return True

    def report_set(self, outcome: SetOutcome, sha: str) -> bool:
        """`SetReporter`: the settled set's one comment on `sha`, posted once per outcome (its
        marker holds a digest of the members' runs)."""
        marker = set_marker(outcome)
        if not SHA.match(sha) or marker in self._sets:
            return True
        try:
            comments = self.client.list_commit_comments(self.repository, sha)
            if not by_us(self.client, comments, marker):
                body = set_comment(outcome, run_url=self.run_url)
                self.client.create_commit_comment(self.repository, sha, self.scrub(body))
        except GitHubError as exc:
            self.on_note(f"GitHub: the sweep {outcome.name} not reported ({exc.message})")
            raise
        self._sets.add(marker)
        return True


def promotion_comment(job: str, lines: list[str]) -> str:
    """A commit comment for aliases moved (or held) by applying this commit, one line each."""
    import hashlib

    digest = hashlib.sha256("\n".join([job, *lines]).encode()).hexdigest()[:16]
    body = [
        f"<!-- trainops:promote:{job}:{digest} -->",
        f"### trainops: {escape.md_code(job)} promotion",
        "",
        *(f"- {escape.md_text(one_line(line))}" for line in lines),
    ]
    return fit("\n".join(body) + "\n", COMMENT_MAX_CHARS)


def run_reporter(
    config: Config,
    on_note: Callable[[str], None],
    *,
    env: Mapping[str, str] | None = None,
    client: GitHubClient | None = None,
) -> GitHubRunReporter | None:
    """The reporter for `apply --github`, or None (with a note) when there is no GitHub context
    or no token. Runs stay unreported in state, so a later apply with a token reports them."""
    env = os.environ if env is None else env
    ctx = ActionsContext.from_env(env)
    if ctx is None:
        on_note("no GitHub context (GITHUB_REPOSITORY is not set): run health is not reported")
        return None
    try:
        gh = client or client_from_env(env)
    except UsageError as exc:
        on_note(f"run health is not reported to GitHub: {exc.message}")
        return None
    scrub = scrubber(env, [env.get(config.providers.replicate.token_env, "")])
    return GitHubRunReporter(
        gh,
        ctx.repository,
        context_prefix=config.github.status_context,
        branch=config.state.branch,
        run_url=ctx.run_url,
        scrub=scrub,
        on_note=on_note,
    )


def _tail(log: str) -> str:
    lines = log.rstrip("\n").splitlines()[-LOG_TAIL_LINES:]
    text = "\n".join(line if len(line) <= 400 else line[:399] + "…" for line in lines)
    return text[-LOG_TAIL_CHARS:] if len(text) > LOG_TAIL_CHARS else text


def _longest_backtick_run(text: str) -> int:
    return max((len(m) for m in re.findall(r"`+", text)), default=0)


def _utc(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M UTC")
