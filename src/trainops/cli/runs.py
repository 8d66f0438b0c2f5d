"""The commands of a reconcile pass: `plan`, `show` (a saved plan), `apply` and `serve`.

Each parses its options, calls one function of `trainops.commands`, and hands the result to
`trainops.cli.display` (or `trainops.render`) to print; the exit code follows DESIGN §12.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import click

from trainops.cli.base import PathArg, cli, dir_option, output_option
from trainops.cli.display import LiveTable, apply_summary, echo, echo_plan

if TYPE_CHECKING:
    from pathlib import Path


@cli.command()
@dir_option
@output_option
@click.option(
    "--detailed-exitcode",
    is_flag=True,
    help="Exit 4 when the plan has actions, 0 when it has none.",
)
@click.option(
    "--github",
    is_flag=True,
    help="On a pull request: sticky plan comment, trainops/plan status, annotations, job summary.",
)
@click.option(
    "--out",
    "out",
    default=None,
    type=PathArg(dir_okay=False),
    help="Also save the plan of HEAD to this file, for `trainops apply FILE`.",
)
def plan(root: Path, output: str, detailed_exitcode: bool, github: bool, out: Path | None) -> None:
    """Show what apply would do: runs to submit, cancel, adopt and deliver."""
    import time

    from trainops import escape, render
    from trainops.commands import plan_to_save, plan_workspace
    from trainops.errors import EXIT_CHANGES, EXIT_INVALID
    from trainops.github.specdiff import spec_diffs
    from trainops.plan import Op

    if out is not None:
        ws, result, bound = plan_to_save(root)
    else:
        ws, result = plan_workspace(root)
    problems = [*ws.validation.problems, *result.problems]
    now = time.time()
    # What changed in each job's spec since the run it last submitted: the same lines the pull
    # request comment shows (DESIGN §12); off GitHub, for the jobs that will train anew (or
    # start again: a retry passes today's `env`). Credentials passed in `spec.env` are marked.
    diffs = spec_diffs(
        result.files,
        result.state,
        ws.desired(),
        trainer=ws.trainer,
        new_revisions_only=not github,
        submitting={a.job for a in result.plan.actions if a.op is Op.SUBMIT},
        credentials=ws.config.credential_names(),
    )
    for note in result.notes:
        echo(f"note: {escape.line(note)}", err=True)
    if not ws.validation.files and not problems:
        echo(
            escape.line(f"note: no manifest matches {', '.join(ws.config.jobs)} under {ws.root}"),
            err=True,
        )

    def markdown() -> str:
        # The one markdown of this plan: `--output markdown` prints it, `--github` posts it.
        return render.plan_markdown(
            result.plan,
            now,
            problems,
            packages=ws.packages,
            drift=result.drift,
            workdirs=ws.workdirs,
        )

    def json_parts() -> Any:
        from trainops.output import report_parts

        notes = [*result.notes, *render.drift_lines(result.drift)]
        return report_parts("plan", result.plan, now, problems, notes=notes, diffs=diffs)

    if out is not None:
        from trainops.output import iso
        from trainops.savedplan.write import dump, make

        saved = make(bound, result.version, result.plan, "".join(json_parts()), iso(now) or "")
        _write(out, dump(saved))
        echo(f"saved the plan to {escape.line(str(out))}: `trainops apply` it", err=True)
    if output == "json":
        for part in json_parts():
            echo(part, nl=False)
    elif output == "markdown":
        echo(markdown())
    else:
        echo_plan(result, now)
        if ws.packages:
            echo("\n" + render.data_text(ws.packages))
        if ws.workdirs:
            echo("\n" + render.workdir_text(ws.workdirs))
        if sent := render.hyperparameter_text(ws.validation.jobs):
            echo("\n" + sent)
        if result.drift:
            echo("\n" + render.drift_text(result.drift))
        if diffs:
            echo("\n" + render.spec_diffs_text(diffs))
        if problems:
            echo("\n" + render.problems_text(problems), err=True)
    refused = [v for v in result.plan.jobs.values() if v.refused]
    if github:
        from trainops.github.plan_report import publish_plan
        from trainops.github.reviewed import reviewed_actions
        from trainops.savedplan.write import planned

        echo(render.github_annotations(problems))
        # What a reviewer approves: each Submit's revision, attempt, worst case and the
        # credentials it is handed, which apply binds the merge to (DESIGN §20).
        reviewed = reviewed_actions(
            planned(result.plan),
            ws.desired(),
            credentials=ws.config.credential_names(),
        )
        for note in publish_plan(
            markdown(),
            failed=bool(problems or refused),
            problems=problems,
            status_context=ws.config.github.status_context,
            diffs=diffs,
            reviewed=reviewed,
        ):
            echo(escape.line(note), err=True)
    if problems or refused:
        raise SystemExit(EXIT_INVALID)
    if detailed_exitcode and result.plan.changes:
        raise SystemExit(EXIT_CHANGES)


def _write(path: Path, text: str) -> None:
    """`text` into `path` whole or not at all (a CI step cut off leaves no half a plan)."""
    import os
    import tempfile
    from pathlib import Path

    from trainops.errors import UsageError

    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent or Path("."), prefix=f".{path.name}.")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None


def _report_orphans(rec: Any, state: Any, now: float) -> None:
    """A scheduled reconcile (`apply --github` from reconcile.yml) reports the orphaned runs
    its census finds, once each, on their job's source commit (DESIGN §20)."""
    import os

    from trainops import escape
    from trainops.errors import TrainopsError
    from trainops.github.orphan_report import publish_orphans, scheduled
    from trainops.reconcile.orphans import census

    if not scheduled(os.environ):
        return

    def note(text: str) -> None:
        echo(f"note: {escape.line(text)}", err=True)

    try:
        found = census(rec, state, now)
    except TrainopsError as exc:
        note(f"runs nobody declared not listed: {exc.message}")
        return
    publish_orphans(found.orphaned, state, now, os.environ, on_note=note)


@cli.command()
@click.argument("file", type=PathArg(dir_okay=False))
@output_option
def show(file: Path, output: str) -> None:
    """Print the saved plan FILE (`plan --out`) as `plan` printed it."""
    from trainops import escape, render
    from trainops.commands import read_saved_plan
    from trainops.reconcile import Pass
    from trainops.savedplan.show import to_plan

    doc = read_saved_plan(file)
    if output == "json":
        echo(doc.report.model_dump_json(indent=2))
        return
    shown, made = to_plan(doc)
    problems = [render_problem(p) for p in doc.report.problems]
    if output == "markdown":
        echo(render.plan_markdown(shown, made, problems, title="trainops plan (saved)"))
        return
    # The file's free strings reach the terminal escaped (a hand-edited file is no one's word).
    echo(
        escape.line(
            f"Saved plan of commit {doc.commit[:12]}, state {doc.state_version[:12] or 'empty'}, "
            f"made {doc.created_at}."
        )
    )
    echo_plan(Pass(shown, {}), made)
    if problems:
        echo("\n" + render.problems_text(problems), err=True)


def render_problem(doc: Any) -> Any:
    from trainops.errors import Problem

    return Problem(doc.file, doc.line, doc.col, doc.message, doc.hint)


@cli.command()
@click.argument("plan_file", required=False, default=None, type=PathArg(dir_okay=False))
@dir_option
@output_option
@click.option("--wait", is_flag=True, help="Follow the runs until every one is terminal.")
@click.option(
    "--allow-dirty",
    is_flag=True,
    help="Apply HEAD even when manifests in the working tree differ from it.",
)
@click.option("--ref", default="HEAD", show_default=True, help="The commit to apply.")
@click.option(
    "--interval",
    default=2.0,
    show_default=True,
    type=click.FloatRange(min=0.1),
    help="Seconds between passes with --wait.",
)
@click.option(
    "--timeout",
    default=0.0,
    type=click.FloatRange(min=0),
    help="With --wait, give up after this many seconds (0: never).",
)
@click.option(
    "--github",
    is_flag=True,
    help="Report each run's health as commit statuses and comments on its commit.",
)
def apply(
    plan_file: Path | None,
    root: Path,
    output: str,
    wait: bool,
    allow_dirty: bool,
    ref: str,
    interval: float,
    timeout: float,
    github: bool,
) -> None:
    """Submit and cancel runs so the providers match the manifests at HEAD; with PLAN_FILE
    (`plan --out`), exactly the actions it saved, or none when it went stale."""
    import time

    from trainops import escape, render
    from trainops.commands import apply_workspace, follow, read_plan_to_apply, settled, unsucceeded
    from trainops.errors import EXIT_INVALID, EXIT_PROVIDER
    from trainops.plan import describe

    def event(message: str) -> None:
        if output == "table":
            echo(escape.line(message))

    saved = None
    if plan_file is not None and wait:
        from trainops.errors import UsageError

        raise UsageError(
            "--wait follows the runs with more passes, which a saved plan does not cover",
            "apply the plan file, then follow the runs with `trainops status` or "
            "`trainops apply --wait`",
        )
    ws, rec = apply_workspace(root, ref=ref, allow_dirty=allow_dirty, on_event=event)
    if plan_file is not None:  # read while the state branch is read ahead (git's work)
        saved = read_plan_to_apply(plan_file)
    if github:
        from trainops.commands import review_on_github
        from trainops.github.run_report import run_reporter

        def github_note(note: str) -> None:
            echo(escape.line(note), err=True)

        rec.reporter = run_reporter(ws.config, on_note=github_note)
        review_on_github(rec, on_note=github_note)  # plan binding on merge (DESIGN §20)
    failures: list[Any] = []
    outcomes: list[Any] = []  # every action of every pass, with what became of it
    result = None
    live = LiveTable() if wait and output == "table" and sys.stdout.isatty() else None
    done = 0
    passes = follow(rec, wait=wait, interval=interval, timeout=timeout)
    if saved is not None:
        passes = iter([_apply_saved(rec, saved, str(plan_file))])
    notes: list[str] = []  # what the passes said (the review's unreviewed submissions)
    for result in passes:
        failures += result.failed
        outcomes += result.outcomes
        notes += result.notes
        done += sum(1 for o in result.outcomes if o.ok)
        if live is not None:
            live.update(
                render.table(
                    render.iter_grouped_rows(result.plan, time.time()),
                    ["job", "sync", "health", "revision", "age", "reason"],
                )
            )
    if live is not None:
        live.stop()
    close = getattr(rec.reporter, "close", None)
    if close is not None:
        close()  # the GitHub client's connections
    assert result is not None
    gave_up = wait and not settled(result)
    final = rec.preview() if result.plan.changes else result
    close = getattr(rec.reviews, "close", None)
    if close is not None:
        close()
    for note in dict.fromkeys(notes):
        echo(f"note: {escape.line(note)}", err=True)
    notes = list(dict.fromkeys([*notes, *final.notes]))
    now = time.time()
    if github:
        _report_orphans(rec, final.state, now)
    problems = [*ws.validation.problems, *final.problems]
    if output == "json":
        from trainops.output import report_parts

        for part in report_parts(
            "apply", final.plan, now, problems, outcomes=outcomes, notes=notes
        ):
            echo(part, nl=False)
    elif output == "markdown":
        echo(render.plan_markdown(final.plan, now, problems, title="trainops apply"))
    else:
        apply_summary(final, now, done=done, failed=len(failures))
    for outcome in failures:
        echo(
            f"error: {escape.line(describe(outcome.action))}: {escape.line(outcome.detail)}",
            err=True,
        )
    if problems:
        echo("\n" + render.problems_text(problems), err=True)
    refused = [v for _name, v in sorted(final.plan.jobs.items()) if v.refused]
    for view in refused:
        echo(f"refused by policy: {view.job}: {escape.line(view.reason)}", err=True)
    if gave_up:
        echo(
            f"error: --timeout {timeout:g}s reached before every run ended; the runs go on",
            err=True,
        )
    ended_badly = unsucceeded(final, rec.desired) if wait else []
    for line in ended_badly:
        echo(f"error: {escape.line(line)}", err=True)
    if failures:
        raise SystemExit(EXIT_PROVIDER)
    if problems or refused or gave_up or ended_badly:
        # --wait gates CI like `argocd app wait`: 0 only when every current run Succeeded.
        raise SystemExit(EXIT_INVALID)


def _apply_saved(rec: Any, saved: Any, file: str) -> Any:
    """One pass carrying out `saved`, or its stale lines and exit 1 (DESIGN §20)."""
    from trainops.savedplan.model import StalePlan

    try:
        return rec.apply(saved, file)
    except StalePlan as exc:
        from trainops import escape, render
        from trainops.errors import EXIT_INVALID

        echo(f"error: {render.error_text(exc).splitlines()[0]}", err=True)
        for line in exc.lines:
            echo(f"  {escape.line(line)}", err=True)
        echo(f"  hint: {escape.line(exc.hint)}", err=True)
        raise SystemExit(EXIT_INVALID) from None


@cli.command()
@dir_option
@click.option("--listen", default="127.0.0.1:8080", show_default=True, metavar="HOST:PORT")
@click.option(
    "--interval",
    default="60s",
    show_default=True,
    help="Time between scheduled passes (90, 60s, 5m, 1h).",
)
@click.option(
    "--github",
    is_flag=True,
    help="Report each run's health to GitHub (GITHUB_TOKEN, GITHUB_REPOSITORY).",
)
@click.option("--branch", default=None, help="Branch to reconcile (default: the remote's HEAD).")
def serve(root: Path, listen: str, interval: str, github: bool, branch: str | None) -> None:
    """Reconcile continuously: on an interval and at once on verified webhooks (needs the
    `trainops[serve]` extra)."""
    from trainops import escape
    from trainops.serve import serve_controller

    def log(message: str) -> None:
        echo(escape.line(message), err=True)

    raise SystemExit(
        serve_controller(
            root, listen=listen, interval=interval, github=github, branch=branch, log=log
        )
    )
