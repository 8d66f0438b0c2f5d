"""What the commands print on a terminal: the one scrubbed `echo`, the plan and apply tables,
and the live table `apply --wait` redraws. The text itself comes from `trainops.render`.
"""

from __future__ import annotations

from typing import Any

import click


def echo(message: str = "", *, err: bool = False, nl: bool = True) -> None:
    """The one way text reaches stdout and stderr: through the scrubber (DESIGN §13), so a
    run's error, a log line or a provider's message never prints a credential."""
    from trainops.scrub import scrub

    click.echo(scrub(message), err=err, nl=nl)


def echo_plan(result: Any, now: float) -> None:
    """`plan`'s table: one row per job, then the summary and money lines."""
    from trainops import escape, render

    if result.plan.jobs:
        echo(
            render.table(
                render.iter_grouped_rows(result.plan, now),
                ["job", "action", "sync", "health", "revision", "worst_case", "reason"],
            )
        )
        echo("")
    echo(render.summary_line(result.plan))
    echo(escape.line(render.money_line(result.plan)))  # a saved plan's month is its file's


def apply_summary(final: Any, now: float, *, done: int, failed: int) -> None:
    """`apply`'s closing table and the line counting what it did."""
    from trainops import render

    echo("")
    echo(
        render.table(
            render.iter_grouped_rows(final.plan, now),
            ["job", "sync", "health", "revision", "run_id", "age", "reason"],
        )
    )
    if failed:
        summary = f"Apply: {done} action(s) done, {failed} failed (errors below)."
    elif done:
        summary = f"Apply: {done} action(s) done."
    else:
        summary = "No changes: the providers match git."
    echo("\n" + summary)


class LiveTable:
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
