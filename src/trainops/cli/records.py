"""The commands that read what trainops recorded: `cost`, `trace`, `checkout`, `history` and
the `state` group (list, show, compact, forget). They never submit or cancel a run.
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
    from trainops.errors import EXIT_INVALID

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
@dir_option
@output_option
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
@dir_option
@click.option(
    "-o",
    "--out",
    "out_dir",
    required=True,
    type=PathArg(file_okay=False),
    help="A new (or empty) folder to write the run's outputs to.",
)
def checkout(ref: str, root: Path, out_dir: Path) -> None:
    """Fetch the outputs of the run REF names, verified against the delivery manifest."""
    from trainops import provenance

    for line in provenance.checkout(root, ref, out_dir):
        echo(line)


@cli.command()
@click.argument("job")
@dir_option
@output_option
def history(job: str, root: Path, output: str) -> None:
    """Every run JOB ever had, oldest first, from the state branch and its git history."""
    from trainops import escape, render, statecmd
    from trainops.errors import EXIT_INVALID

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
@dir_option
@output_option
def state_list(root: Path, output: str) -> None:
    """One line per job record at the tip of the state branch."""
    from trainops import render, statecmd
    from trainops.errors import EXIT_INVALID

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
@dir_option
def state_show(job: str, root: Path) -> None:
    """JOB's record at the tip, as JSON (read-only)."""
    from trainops import escape, render, statecmd

    echo(escape.block(render.to_json(statecmd.show(root, job))))


@state.command("compact")
@dir_option
def state_compact(root: Path) -> None:
    """Rewrite every record with retention applied (and in the current layout): what an
    upgrade from an older trainops needs once. Dropped runs stay in `history`."""
    from trainops import statecmd

    done = statecmd.state_compact(root)
    echo(f"{done['jobs']} record(s) rewritten, {done['runs_dropped']} run(s) moved to history")


@state.command("forget")
@click.argument("job")
@dir_option
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def state_forget(job: str, root: Path, yes: bool) -> None:
    """Drop JOB's record (for a job removed by hand on its provider). Its runs stay in git
    history; trainops no longer watches, cancels or reports them."""
    from trainops import escape, render, statecmd
    from trainops.errors import EXIT_INVALID

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
