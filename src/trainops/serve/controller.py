"""The controller loop: passes of the same `Reconciler` as `apply` on the remote default branch
(fetched, never the working tree), on an interval and at once when a webhook asks.

Passes never overlap: one thread runs them. A request made while a pass runs schedules exactly
one more, so a burst of webhooks coalesces into at most two passes. `stop()` (SIGTERM) lets the
pass in flight finish.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trainops.errors import TrainopsError, UsageError
from trainops.serve.metrics import ControllerMetrics, CountingTransport
from trainops.serve.status_page import StatusView, build_view

if TYPE_CHECKING:
    from trainops.manifest import Config
    from trainops.reconcile import RunReporter


# A census of runs nobody declared (DESIGN §20) lists every run of each provider (up to
# `orphans.MAX_LIST_CALLS` requests), so the loop takes one on its first pass and then once per
# this many passes, never on every pass; in between the page and /metrics show the last one.
CENSUS_EVERY = 10


def census_due(passes: int, every: int = CENSUS_EVERY) -> bool:
    """Whether the pass numbered `passes` (0 for the first) takes a census."""
    return passes % every == 0


class Controller:
    def __init__(
        self,
        root: Path,
        *,
        interval: float,
        github: bool = False,
        remote: str = "origin",
        branch: str | None = None,
        log: Callable[[str], None] = lambda _m: None,
        metrics: ControllerMetrics | None = None,
    ) -> None:
        self.root, self.interval, self.github, self.remote = root, interval, github, remote
        self.log = log
        self.metrics = metrics or ControllerMetrics()
        self.branch = branch or default_branch(root, remote)
        self.view: StatusView | None = None
        self.undeclared: dict[str, object] | None = None  # the last census, as `-o json` has it
        self.passes = 0
        self.last_error = ""
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._busy = threading.Lock()

    @property
    def ref(self) -> str:
        return f"refs/remotes/{self.remote}/{self.branch}"

    def request(self, why: str) -> None:
        """Schedule a pass as soon as the current one (if any) ends; never runs one here."""
        self.metrics.pending.set(1)
        self._wake.set()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def run(self) -> None:
        """Passes until `stop()`: one now, then one per interval or request."""
        while not self._stopping.is_set():
            self._wake.clear()
            self.metrics.in_progress.set(1)  # before pending drops: never both 0 in between
            self.metrics.pending.set(0)
            self.run_pass()
            self._wake.wait(self.interval)

    def run_pass(self) -> bool:
        """One fetch + apply; errors are logged and counted, never raised (the next pass tries
        again). True when the pass succeeded."""
        with self._busy:
            started = time.monotonic()
            self.metrics.in_progress.set(1)
            try:
                self._pass()
            except TrainopsError as exc:
                self.last_error = exc.message
                self.log(f"pass failed: {exc.message}" + (f" ({exc.hint})" if exc.hint else ""))
                self.metrics.passes.labels("error").inc()
                return False
            except Exception as exc:  # a bug: keep serving, say what broke
                self.last_error = f"internal error: {type(exc).__name__}"
                self.log(f"pass failed: internal error: {type(exc).__name__}: {exc}")
                self.metrics.passes.labels("error").inc()
                return False
            else:
                self.last_error = ""
                self.metrics.passes.labels("ok").inc()
            finally:
                self.passes += 1
                self.metrics.pass_duration.observe(time.monotonic() - started)
                # Last, once the pass is counted: a scrape that reads no pass in progress (and
                # none pending) reads every pass that ended in the count.
                self.metrics.in_progress.set(0)
            return True

    def _pass(self) -> None:
        from trainops.commands import apply_workspace
        from trainops.output import report_parts

        fetch(self.root, self.remote, self.branch)
        ws, rec = apply_workspace(self.root, ref=self.ref, allow_dirty=True, on_event=self.log)
        reporter = self._reporter(ws.config) if self.github else None
        rec.reporter = reporter
        if self.github:  # plan binding on merge (DESIGN §20): a pass never bypasses `block`
            self._review(rec)
        try:
            result = rec.apply()
            final = rec.preview() if result.plan.changes else result
        finally:
            for handle in (reporter, rec.reviews):
                close = getattr(handle, "close", None)
                if close is not None:
                    close()
        for note in result.notes:
            self.log(note)
        now = time.time()
        targets = rec.desired.targets
        providers: dict[str, str] = {n: str(t.job.spec.provider) for n, t in targets.items()}
        self.metrics.record_outcomes(result.outcomes, providers)
        self.metrics.record_pass(final, providers, now)
        for outcome in result.failed:
            self.log(f"{outcome.action.job}: {outcome.action.op.value} failed: {outcome.detail}")
        problems = [*ws.validation.problems, *final.problems]
        if census_due(self.passes):
            from trainops.output import census_doc
            from trainops.reconcile.orphans import census

            try:
                found = census(rec, final.state, now)
            except TrainopsError as exc:  # the pass itself succeeded: keep the last census
                self.log(f"runs nobody declared not listed: {exc.message}")
            else:
                self.metrics.record_census(found)
                self.undeclared = census_doc(found, now).model_dump(mode="json")
                if self.github:
                    self._report_orphans(found.orphaned, final.state, now)
        doc = "".join(report_parts("status", final.plan, now, problems, notes=final.notes))
        if self.undeclared is not None:
            parsed = json.loads(doc)
            parsed["undeclared"] = self.undeclared
            doc = json.dumps(parsed)
        self.view = build_view(doc, final.state, ws.config.prices_usd_per_second, now)

    def _report_orphans(self, orphaned: list[Any], state: Any, now: float) -> None:
        """Each orphaned run once on its job's source commit (DESIGN §20), as a scheduled
        reconcile does."""
        from trainops.github.context import client_from_env
        from trainops.github.orphan_report import publish_orphans

        if not orphaned:
            return
        try:
            client = client_from_env(os.environ, CountingTransport(self.metrics.github_calls))
        except UsageError as exc:
            self.log(f"orphaned runs are not reported to GitHub: {exc.message}")
            return
        with client:
            publish_orphans(orphaned, state, now, os.environ, on_note=self.log, client=client)

    def _review(self, rec: Any) -> None:
        from trainops.commands import review_on_github
        from trainops.github.context import client_from_env

        try:
            client = client_from_env(os.environ, CountingTransport(self.metrics.github_calls))
        except UsageError:
            client = None  # the reviews say why, and find no reviewed plan
        review_on_github(rec, on_note=self.log, client=client)

    def _reporter(self, config: Config) -> RunReporter | None:
        from trainops.github.context import client_from_env
        from trainops.github.run_report import run_reporter

        try:
            client = client_from_env(os.environ, CountingTransport(self.metrics.github_calls))
        except UsageError as exc:
            self.log(f"run health is not reported to GitHub: {exc.message}")
            return None
        return run_reporter(config, on_note=self.log, client=client)


def default_branch(root: Path, remote: str) -> str:
    """The remote's default branch: what its HEAD points at, else the clone's record of it."""
    from trainops.repo import git_run

    out = git_run(["ls-remote", "--symref", remote, "HEAD"], root)
    for line in out.stdout.decode(errors="replace").splitlines():
        if line.startswith("ref: refs/heads/") and line.endswith("\tHEAD"):
            return line[len("ref: refs/heads/") : -len("\tHEAD")]
    out = git_run(["symbolic-ref", "--quiet", f"refs/remotes/{remote}/HEAD"], root)
    name = out.stdout.decode(errors="replace").strip()
    prefix = f"refs/remotes/{remote}/"
    if out.returncode == 0 and name.startswith(prefix):
        return name[len(prefix) :]
    raise UsageError(
        f"cannot tell the default branch of remote {remote!r}",
        "check that the clone has that remote and it is reachable, or pass --branch",
    )


def fetch(root: Path, remote: str, branch: str) -> None:
    from trainops.repo import git_run

    spec = f"+refs/heads/{branch}:refs/remotes/{remote}/{branch}"
    out = git_run(["fetch", "--quiet", "--no-tags", remote, spec], root)
    if out.returncode != 0:
        lines = out.stderr.decode(errors="replace").strip().splitlines()
        raise UsageError(
            f"could not fetch {branch!r} from remote {remote!r}"
            + (f": {lines[-1]}" if lines else ""),
            "check the network and that `git fetch` works in this clone",
        )
