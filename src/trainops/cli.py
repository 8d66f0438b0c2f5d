"""The `trainops` command line: parse, call one function, render, return an exit code.

click is imported here and nowhere else. Every `TrainopsError` becomes its exit code (DESIGN §12)
and a message without a traceback; `--debug` shows tracebacks.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from trainops import __version__, escape
from trainops.errors import EXIT_INVALID, EXIT_OK, EXIT_PROVIDER, InvalidInput, TrainopsError

OUTPUTS = click.Choice(["table", "json", "markdown"])


class _Context:
    debug = False


def echo(message: str = "", *, err: bool = False, nl: bool = True) -> None:
    """The one way text reaches stdout and stderr: through the scrubber (DESIGN §13), so a
    run's error, a log line or a provider's message never prints a credential."""
    from trainops.scrub import scrub

    click.echo(scrub(message), err=err, nl=nl)


def _dir_option(f: Any) -> Any:
    return click.option(
        "--dir",
        "root",
        default=".",
        show_default=True,
        type=click.Path(file_okay=False, path_type=Path),
        help="Repository root.",
    )(f)


def _output_option(f: Any) -> Any:
    return click.option(
        "--output",
        "-o",
        "output",
        type=OUTPUTS,
        default="table",
        show_default=True,
        help="Output format.",
    )(f)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="trainops")
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
def cli(debug: bool) -> None:
    """GitOps for ML training runs: manifests in git, plan on the pull request, apply on merge."""
    _Context.debug = debug


@cli.command()
@_dir_option
@_output_option
@click.option("--github", is_flag=True, help="Also print GitHub workflow annotations.")
def validate(root: Path, output: str, github: bool) -> None:
    """Check every manifest (schema, names, references, inputs against the lock)."""
    from trainops import render
    from trainops.workspace import validate_workspace

    result = validate_workspace(root)
    if output == "json":
        echo(
            render.to_json(
                {
                    "ok": result.ok,
                    "jobs": sorted(result.jobs),
                    "problems": [render.problem_dict(p) for p in result.problems],
                }
            )
        )
    elif result.problems:
        echo(render.problems_text(result.problems), err=True)
    if github and result.problems:
        echo(render.github_annotations(result.problems))
    if result.problems:
        files = len({p.file for p in result.problems})
        if output != "json":
            echo(f"\n{len(result.problems)} problem(s) in {files} file(s)", err=True)
        raise SystemExit(EXIT_INVALID)
    if output != "json":
        echo(f"{len(result.jobs)} job(s) valid in {len(result.files)} file(s)")


@cli.command()
@_dir_option
@click.option("--check", is_flag=True, help="Fail when the files on disk are not up to date.")
def schema(root: Path, check: bool) -> None:
    """Write the JSON Schemas generated from the manifest models to schemas/."""
    from trainops.manifest import json_schemas
    from trainops.output import output_schemas

    stale = []
    for name, text in {**json_schemas(), **output_schemas()}.items():
        path = root / "schemas" / name
        current = path.read_text() if path.exists() else None
        if current == text:
            continue
        stale.append(str(path))
        if not check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            echo(f"wrote {path}")
    if check and stale:
        echo("\n".join(f"{p}: out of date" for p in stale), err=True)
        echo("  hint: run `trainops schema` and commit the result", err=True)
        raise SystemExit(EXIT_INVALID)
    if not stale:
        echo("schemas are up to date")


@cli.command()
@click.argument("directory", default=".", type=click.Path(file_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Overwrite starter files that already exist.")
def init(directory: Path, force: bool) -> None:
    """Create a trainops repository in DIRECTORY with example jobs and workflows.

    A folder that is not a repository's top level becomes a new repository, committed. In an
    existing repository only missing files are added (nothing is committed)."""
    from trainops.init import init_repository

    result = init_repository(directory, force=force)
    where = "a new repository" if result.created_repository else "the existing repository"
    echo(f"Initialized trainops in {where} {directory} ({len(result.written)} files):")
    for path in result.written:
        echo(f"  {path}")
    for path in result.updated:
        echo(f"  {path} (appended .trainops/)")
    if result.skipped:
        echo(f"Skipped {len(result.skipped)} file(s) that exist (--force overwrites):")
        for path in result.skipped:
            echo(f"  {path}")
    if result.created_repository:
        echo("Committed them as 'trainops init'.")
    else:
        echo("Nothing was committed: review the new files and commit them.")
    echo(f"\nNext: cd {directory} && trainops plan && trainops apply --wait")


@cli.command()
@_dir_option
@_output_option
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
def plan(root: Path, output: str, detailed_exitcode: bool, github: bool) -> None:
    """Show what apply would do: runs to submit, cancel, adopt and deliver."""
    import time

    from trainops import render
    from trainops.commands import plan_workspace
    from trainops.errors import EXIT_CHANGES
    from trainops.github.specdiff import spec_diffs
    from trainops.plan import Op

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
        credentials=[ws.config.providers.replicate.token_env],
    )
    for note in result.notes:
        echo(f"note: {escape.line(note)}", err=True)
    if not ws.validation.files and not problems:
        echo(
            escape.line(f"note: no manifest matches {', '.join(ws.config.jobs)} under {ws.root}"),
            err=True,
        )
    if output == "json":
        from trainops.output import report_parts

        drift = render.drift_lines(result.drift)
        notes = [*result.notes, *drift]
        for part in report_parts("plan", result.plan, now, problems, notes=notes, diffs=diffs):
            echo(part, nl=False)
    elif output == "markdown":
        echo(
            render.plan_markdown(
                result.plan,
                now,
                problems,
                packages=ws.packages,
                drift=result.drift,
                workdirs=ws.workdirs,
            )
        )
    else:
        _echo_plan(result, now)
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
        from trainops.github.report import publish_plan

        echo(render.github_annotations(problems))
        for note in publish_plan(
            render.plan_markdown(
                result.plan,
                now,
                problems,
                packages=ws.packages,
                drift=result.drift,
                workdirs=ws.workdirs,
            ),
            failed=bool(problems or refused),
            problems=problems,
            status_context=ws.config.github.status_context,
            diffs=diffs,
        ):
            echo(escape.line(note), err=True)
    if problems or refused:
        raise SystemExit(EXIT_INVALID)
    if detailed_exitcode and result.plan.changes:
        raise SystemExit(EXIT_CHANGES)


def _echo_plan(result: Any, now: float) -> None:
    from trainops import render

    if result.plan.jobs:
        echo(
            render.table(
                render.iter_plan_rows(result.plan, now),
                ["job", "action", "sync", "health", "revision", "worst_case", "reason"],
            )
        )
        echo("")
    echo(render.summary_line(result.plan))
    echo(render.money_line(result.plan))


@cli.command()
@_dir_option
@_output_option
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
    root: Path,
    output: str,
    wait: bool,
    allow_dirty: bool,
    ref: str,
    interval: float,
    timeout: float,
    github: bool,
) -> None:
    """Submit and cancel runs so the providers match the manifests at HEAD."""
    import time

    from trainops import render
    from trainops.apply import describe
    from trainops.commands import apply_workspace, follow, settled, unsucceeded

    def event(message: str) -> None:
        if output == "table":
            echo(escape.line(message))

    ws, rec = apply_workspace(root, ref=ref, allow_dirty=allow_dirty, on_event=event)
    if github:
        from trainops.github.report import run_reporter

        rec.reporter = run_reporter(
            ws.config, on_note=lambda note: echo(escape.line(note), err=True)
        )
    failures: list[Any] = []
    outcomes: list[Any] = []  # every action of every pass, with what became of it
    result = None
    live = _LiveTable() if wait and output == "table" and sys.stdout.isatty() else None
    done = 0
    for result in follow(rec, wait=wait, interval=interval, timeout=timeout):
        failures += result.failed
        outcomes += result.outcomes
        done += sum(1 for o in result.outcomes if o.ok)
        if live is not None:
            live.update(
                render.table(
                    render.iter_plan_rows(result.plan, time.time()),
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
    now = time.time()
    problems = [*ws.validation.problems, *final.problems]
    if output == "json":
        from trainops.output import report_parts

        for part in report_parts(
            "apply", final.plan, now, problems, outcomes=outcomes, notes=final.notes
        ):
            echo(part, nl=False)
    elif output == "markdown":
        echo(render.plan_markdown(final.plan, now, problems, title="trainops apply"))
    else:
        echo("")
        echo(
            render.table(
                render.iter_plan_rows(final.plan, now),
                ["job", "sync", "health", "revision", "run_id", "age", "reason"],
            )
        )
        if failures:
            summary = f"Apply: {done} action(s) done, {len(failures)} failed (errors below)."
        elif done:
            summary = f"Apply: {done} action(s) done."
        else:
            summary = "No changes: the providers match git."
        echo("\n" + summary)
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
    ended_badly = unsucceeded(final) if wait else []
    for line in ended_badly:
        echo(f"error: {escape.line(line)}", err=True)
    if failures:
        raise SystemExit(EXIT_PROVIDER)
    if problems or refused or gave_up or ended_badly:
        # --wait gates CI like `argocd app wait`: 0 only when every current run Succeeded.
        raise SystemExit(EXIT_INVALID)


class _LiveTable:
    """A table redrawn in place on a terminal while `apply --wait` follows the runs."""

    def __init__(self) -> None:
        from rich.live import Live
        from rich.text import Text

        self._text = Text
        self._live = Live(Text(""), auto_refresh=False, transient=True)
        self._live.start()

    def update(self, text: str) -> None:
        from trainops.scrub import scrub

        self._live.update(self._text(scrub(text)), refresh=True)

    def stop(self) -> None:
        self._live.stop()


@cli.command()
@_dir_option
@_output_option
@click.option(
    "--html",
    "html_dir",
    default=None,
    type=click.Path(file_okay=False, path_type=Path),
    help="Also write the status page (index.html, api/status.json) into this folder.",
)
def status(root: Path, output: str, html_dir: Path | None) -> None:
    """Sync and health of every job, with its run, age and cost."""
    import time

    from trainops import render
    from trainops.commands import plan_workspace

    ws, result = plan_workspace(root)
    now = time.time()
    if html_dir is not None:
        from trainops.commands import write_status_page

        for path in write_status_page(ws, result, html_dir, now):
            echo(f"wrote {escape.line(str(path))}", err=True)
    if output == "json":
        from trainops.output import report_parts

        problems = [*ws.validation.problems, *result.problems]
        for part in report_parts("status", result.plan, now, problems, notes=result.notes):
            echo(part, nl=False)
    elif output == "markdown":
        echo(
            render.plan_markdown(result.plan, now, ws.validation.problems, title="trainops status")
        )
    else:
        columns = ["job", "sync", "health", "revision", "run_id", "age", "cost", "reason"]
        if any(v.run and v.run.metrics for v in result.plan.jobs.values()):
            columns.insert(columns.index("cost"), "metrics")  # each job's latest run's headline
        echo(render.table(render.iter_plan_rows(result.plan, now), columns))
        echo(render.money_line(result.plan))
    if result.problems:  # state files that do not validate: named on stderr, their jobs left alone
        echo("\n" + render.problems_text(result.problems), err=True)
        raise SystemExit(EXIT_INVALID)


@cli.command()
@click.argument("job")
@_dir_option
@click.option("--tail", default=50, show_default=True, type=click.IntRange(min=1))
@click.option("--follow", "-f", is_flag=True, help="Keep printing until the run ends.")
def logs(job: str, root: Path, tail: int, follow: bool) -> None:
    """Print the log of JOB's latest run."""
    from trainops.commands import run_logs

    for chunk in run_logs(root, job, tail, follow):
        echo(escape.block(chunk), nl=False)


@cli.command()
@_dir_option
@_output_option
@click.option("--month", default=None, metavar="YYYY-MM", help="Default: the current month.")
@click.option(
    "--by",
    "by",
    default="job",
    show_default=True,
    metavar="job|LABEL",
    help="Group spend by job or by the value of a label.",
)
def cost(root: Path, output: str, month: str | None, by: str) -> None:
    """Spend per job (or per label value) in one month, from the recorded runs."""
    from trainops import render
    from trainops.commands import spend

    report = spend(root, month, by)
    problems = report.pop("problems")
    if output == "json":
        echo(render.to_json({**report, "problems": [render.problem_dict(p) for p in problems]}))
    else:
        rows = [
            {"group": r["group"], "runs": r["runs"], "cost": f"${r['usd']:,.2f}"}
            for r in report["groups"]
        ]
        echo(render.table(rows, ["group", "runs", "cost"]))
        echo(f"\nTotal for {report['month']}: ${report['total_usd']:,.2f}")
    if problems:  # state files that do not validate: their runs are not counted
        echo("\n" + render.problems_text(problems), err=True)
        raise SystemExit(EXIT_INVALID)


@cli.command()
@click.argument("ref")
@_dir_option
@_output_option
def trace(ref: str, root: Path, output: str) -> None:
    """Where a model came from: REF is a run id, a Replicate version (owner/name:id), a weights
    URL or a local file (by sha256); prints job, revision, source commit, snapshot, cost,
    metrics and deliveries."""
    from trainops import provenance, render

    found = provenance.trace(root, ref)
    if output == "json":
        echo(render.to_json({"ref": ref, "runs": [provenance.as_dict(f) for f in found]}))
    elif output == "markdown":
        echo(provenance.markdown(found))
    else:
        echo(provenance.text(found), nl=False)


@cli.command()
@click.argument("ref")
@_dir_option
@click.option(
    "-o",
    "--out",
    "out_dir",
    required=True,
    type=click.Path(path_type=Path, file_okay=False),
    help="A new (or empty) folder to write the run's outputs to.",
)
def checkout(ref: str, root: Path, out_dir: Path) -> None:
    """Fetch the outputs of the run REF names, verified against the delivery manifest."""
    from trainops import provenance

    for line in provenance.checkout(root, ref, out_dir):
        echo(line)


@cli.command()
@click.argument("job")
@_dir_option
@_output_option
def history(job: str, root: Path, output: str) -> None:
    """Every run JOB ever had, oldest first, from the state branch and its git history."""
    from trainops import render, statecmd

    rows, problem = statecmd.history(root, job)
    if output == "json":
        echo(render.to_json({"job": job, "runs": rows, "problem": problem}))
    else:
        columns = ["revision", "attempt", "run_id", "health", "created", "completed", "cost"]
        echo(render.table(rows, [*columns, "note"]))
    if problem:  # a copy of the job's file in history that does not validate: the walk stopped
        echo(escape.line(f"error: history incomplete: {problem}"), err=True)
        raise SystemExit(EXIT_INVALID)


@cli.group()
def state() -> None:
    """Inspect the state branch (list, show), compact it, or forget a job's record."""


@state.command("list")
@_dir_option
@_output_option
def state_list(root: Path, output: str) -> None:
    """One line per job record at the tip of the state branch."""
    from trainops import render, statecmd

    rows, problems = statecmd.state_list(root)
    if output == "json":
        echo(render.to_json({"jobs": rows, "problems": [render.problem_dict(p) for p in problems]}))
    else:
        columns = ["job", "runs", "retired", "revision", "run_id", "health", "file", "note"]
        echo(render.table(rows, columns))
    if problems:
        echo("\n" + render.problems_text(problems), err=True)
        raise SystemExit(EXIT_INVALID)


@state.command("show")
@click.argument("job")
@_dir_option
def state_show(job: str, root: Path) -> None:
    """JOB's record at the tip, as JSON (read-only)."""
    from trainops import render, statecmd

    echo(escape.block(render.to_json(statecmd.show(root, job))))


@state.command("compact")
@_dir_option
def state_compact(root: Path) -> None:
    """Rewrite every record with retention applied (and in the current layout): what an
    upgrade from an older trainops needs once. Dropped runs stay in `history`."""
    from trainops import statecmd

    done = statecmd.state_compact(root)
    echo(f"{done['jobs']} record(s) rewritten, {done['runs_dropped']} run(s) moved to history")


@state.command("forget")
@click.argument("job")
@_dir_option
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def state_forget(job: str, root: Path, yes: bool) -> None:
    """Drop JOB's record (for a job removed by hand on its provider). Its runs stay in git
    history; trainops no longer watches, cancels or reports them."""
    from trainops import render, statecmd

    store, version, record = statecmd.forget_target(root, job)
    active = [r for r in record.runs if r.active]
    echo(
        render.table(
            [{"job": job, "runs": len(record.runs), "active": len(active)}],
            ["job", "runs", "active"],
        )
    )
    if not yes and not click.confirm(f"Forget {job}'s record?", default=False, err=True):
        echo("nothing forgotten", err=True)
        raise SystemExit(EXIT_INVALID)
    statecmd.forget(store, version, record)
    echo(escape.line(f"forgot {job}"))


@cli.command()
@_dir_option
@click.option(
    "--check", is_flag=True, help="Offline: fail when trainops.lock does not match the manifests."
)
def lock(root: Path, check: bool) -> None:
    """Pin each Replicate trainer's version and input schema in trainops.lock."""
    from trainops.commands import lock_workspace

    notes: list[str] = []
    lines, path = lock_workspace(root, check, notes)
    for note in notes:
        echo(f"note: {note}", err=True)
    if check:
        if lines:
            echo("\n".join(f"{path}: stale: {line}" for line in lines), err=True)
            echo("  hint: run `trainops lock` and commit trainops.lock", err=True)
            raise SystemExit(EXIT_INVALID)
        echo(f"{path} is up to date")
        return
    for line in lines:
        echo(f"  {line}")
    echo(f"wrote {path} ({len(lines)} trainer(s))")


@cli.command()
@_dir_option
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
    from trainops.commands import serve_controller

    def log(message: str) -> None:
        echo(escape.line(message), err=True)

    raise SystemExit(
        serve_controller(
            root, listen=listen, interval=interval, github=github, branch=branch, log=log
        )
    )


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the CLI and map errors to exit codes in one place."""
    from trainops import gcpause

    gcpause.tune()
    try:
        cli.main(args=argv, prog_name="trainops", standalone_mode=False)
    except click.exceptions.Abort:
        echo("aborted", err=True)
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except InvalidInput as exc:
        from trainops import render

        echo(render.problems_text(exc.problems), err=True)
        return exc.exit_code
    except TrainopsError as exc:
        if _Context.debug:
            _print_traceback()
        from trainops import render

        echo(f"error: {render.error_text(exc)}", err=True)
        return exc.exit_code
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else EXIT_OK
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a bug in trainops, not user error
        if _Context.debug:
            _print_traceback()
        echo(
            f"internal error: {type(exc).__name__}: {escape.line(str(exc))}\n"
            "  hint: run again with --debug for a traceback, and report it",
            err=True,
        )
        return EXIT_PROVIDER
    return EXIT_OK


def _print_traceback() -> None:
    # --debug adds the traceback; the exit code stays the one DESIGN §12 gives the error.
    import traceback

    echo(escape.block(traceback.format_exc()), err=True, nl=False)  # it may quote any input


if __name__ == "__main__":
    sys.exit(main())
