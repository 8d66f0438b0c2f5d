"""The `trainops` command line: parse, call one function, render, return an exit code.

click is imported in this package and nowhere else. The commands live in `authoring` (init,
validate, schema, lock), `runs` (plan, show, apply, serve), `status` (status, adopt, logs) and
`records` (cost, trace, checkout, history, state); `display` prints. `main` maps every
`TrainopsError` to its exit code (DESIGN §12) and a message without a traceback; `--debug` shows
tracebacks.
"""

from __future__ import annotations

import sys

import click

from trainops.cli import authoring, records, runs, status  # noqa: F401  (they register commands)
from trainops.cli.base import Flags, cli
from trainops.cli.display import echo

__all__ = ["cli", "main"]


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the CLI and map errors to exit codes in one place. The error family
    (with dataclasses behind it) is imported when an error is mapped, not for `--help`."""
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
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 0  # EXIT_OK
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        return _failed(exc)
    return 0  # EXIT_OK (DESIGN §12)


def _failed(exc: Exception) -> int:
    """The exit code of DESIGN §12 for `exc`, its message printed without a traceback."""
    from trainops import escape, render
    from trainops.errors import EXIT_PROVIDER, InvalidInput, TrainopsError

    if isinstance(exc, InvalidInput):
        echo(render.problems_text(exc.problems), err=True)
        return exc.exit_code
    if isinstance(exc, TrainopsError):
        if Flags.debug:
            _print_traceback()
        echo(f"error: {render.error_text(exc)}", err=True)
        return exc.exit_code
    # a bug in trainops, not user error
    if Flags.debug:
        _print_traceback()
    echo(
        f"internal error: {type(exc).__name__}: {escape.line(str(exc))}\n"
        "  hint: run again with --debug for a traceback, and report it",
        err=True,
    )
    return EXIT_PROVIDER


def _print_traceback() -> None:
    # --debug adds the traceback; the exit code stays the one DESIGN §12 gives the error.
    import traceback

    from trainops import escape

    echo(escape.block(traceback.format_exc()), err=True, nl=False)  # it may quote any input


if __name__ == "__main__":
    sys.exit(main())
