"""The `trainops` click group and the options its commands share (`--dir`, `--output`).

The command modules (`authoring`, `runs`, `records`) register themselves on `cli`;
`trainops.cli.main` runs it.
"""

from __future__ import annotations

from typing import Any

import click

from trainops import __version__

OUTPUTS = click.Choice(["table", "json", "markdown"])


class PathArg(click.Path):
    """`click.Path(path_type=pathlib.Path)`, but pathlib (with urllib and ipaddress behind it)
    is imported when a value is converted, not for `trainops --help`."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)

    def convert(self, value: Any, param: Any, ctx: Any) -> Any:
        import os
        from pathlib import Path

        return Path(os.fsdecode(super().convert(value, param, ctx)))


class Flags:
    """The group's own options, read by `main` when an error is mapped to its exit code."""

    debug = False


def dir_option(f: Any) -> Any:
    return click.option(
        "--dir",
        "root",
        default=".",
        show_default=True,
        type=PathArg(file_okay=False),
        help="Repository root.",
    )(f)


def output_option(f: Any) -> Any:
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
    Flags.debug = debug
