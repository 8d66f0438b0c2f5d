"""The commands that show what runs: `status` (with `--all`, the runs nobody declared, DESIGN
§20), `adopt` (binds one of those to its job) and `logs`.

Each parses its options, calls one function of `trainops.commands`, and hands the result to
`trainops.render` to print; the exit code follows DESIGN §12.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from trainops.cli.base import PathArg, cli, dir_option, output_option
from trainops.cli.display import echo

if TYPE_CHECKING:
    from pathlib import Path


@cli.command()
@dir_option
@output_option
@click.option(
    "--html",
    "html_dir",
    default=None,
    type=PathArg(file_okay=False),
    help="Also write the status page (index.html, api/status.json) into this folder.",
)
@click.option(
    "--all",
    "everything",
    is_flag=True,
    help="Also list runs nobody declared: orphaned (our marks, no state) and foreign ones.",
)
def status(root: Path, output: str, html_dir: Path | None, everything: bool) -> None:
    """Sync and health of every job, with its run, age and cost."""
    import time

    from trainops import escape, render
    from trainops.commands import plan_workspace, status_all
    from trainops.errors import EXIT_INVALID

    found = None
    if everything:
        ws, result, found = status_all(root)
    else:
        ws, result = plan_workspace(root)
    now = time.time()
    if html_dir is not None:
        from trainops.serve.status_page import write_status_page

        for path in write_status_page(ws, result, html_dir, now):
            echo(f"wrote {escape.line(str(path))}", err=True)
    if output == "json":
        from trainops.output import census_doc, report_parts

        problems = [*ws.validation.problems, *result.problems]
        undeclared = census_doc(found, now) if found is not None else None
        for part in report_parts(
            "status", result.plan, now, problems, notes=result.notes, undeclared=undeclared
        ):
            echo(part, nl=False)
    elif output == "markdown":
        echo(
            render.plan_markdown(result.plan, now, ws.validation.problems, title="trainops status")
        )
        if found is not None:
            echo(render.census_markdown(found, now))
    else:
        columns = ["job", "sync", "health", "revision", "run_id", "age", "cost", "reason"]
        if any(v.run and v.run.metrics for v in result.plan.jobs.values()):
            columns.insert(columns.index("cost"), "metrics")  # each job's latest run's headline
        echo(render.table(render.iter_grouped_rows(result.plan, now), columns))
        echo(render.money_line(result.plan))
        if found is not None:
            echo(render.census_text(found, now))
    if result.problems:  # state files that do not validate: named on stderr, their jobs left alone
        echo("\n" + render.problems_text(result.problems), err=True)
        raise SystemExit(EXIT_INVALID)


@cli.command()
@click.argument("job")
@click.argument("run_id")
@dir_option
def adopt(job: str, run_id: str, root: Path) -> None:
    """Bind the orphaned run RUN_ID (see `status --all`) to JOB, once its provider's record
    shows this repository's marks for JOB."""
    from trainops import escape
    from trainops.commands import adopt_run

    run = adopt_run(root, job, run_id)
    echo(
        f"adopted {escape.line(run_id)} as {escape.line(job)} revision {run.revision} "
        f"attempt {run.attempt} ({run.health.value})"
    )


@cli.command()
@click.argument("job")
@dir_option
@click.option("--tail", default=50, show_default=True, type=click.IntRange(min=1))
@click.option("--follow", "-f", is_flag=True, help="Keep printing until the run ends.")
def logs(job: str, root: Path, tail: int, follow: bool) -> None:
    """Print the log of JOB's latest run."""
    from trainops import escape
    from trainops.commands import run_logs

    for chunk in run_logs(root, job, tail, follow):
        echo(escape.block(chunk), nl=False)
