"""The `trainops` command line: parse, call one function, render, return an exit code.

click is imported here and nowhere else. Every `TrainopsError` becomes its exit code (DESIGN §12)
and a message without a traceback; `--debug` shows tracebacks.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from trainops import __version__
from trainops.errors import EXIT_INVALID, EXIT_OK, EXIT_PROVIDER, InvalidInput, TrainopsError

OUTPUTS = click.Choice(["table", "json", "markdown"])


class _Context:
    debug = False


def _dir_option(f: Any) -> Any:
    return click.option("--dir", "root", default=".", show_default=True,
                        type=click.Path(file_okay=False, path_type=Path),
                        help="Repository root.")(f)


def _output_option(f: Any) -> Any:
    return click.option("--output", "-o", "output", type=OUTPUTS, default="table",
                        show_default=True, help="Output format.")(f)


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
        click.echo(render.to_json({
            "ok": result.ok,
            "jobs": sorted(result.jobs),
            "problems": [render.problem_dict(p) for p in result.problems],
        }))
    elif result.problems:
        click.echo(render.problems_text(result.problems), err=True)
    if github and result.problems:
        click.echo(render.github_annotations(result.problems))
    if result.problems:
        files = len({p.file for p in result.problems})
        if output != "json":
            click.echo(f"\n{len(result.problems)} problem(s) in {files} file(s)", err=True)
        raise SystemExit(EXIT_INVALID)
    if output != "json":
        click.echo(f"{len(result.jobs)} job(s) valid in {len(result.files)} file(s)")


@cli.command()
@_dir_option
@click.option("--check", is_flag=True, help="Fail when the files on disk are not up to date.")
def schema(root: Path, check: bool) -> None:
    """Write the JSON Schemas generated from the manifest models to schemas/."""
    from trainops.manifest import json_schemas

    stale = []
    for name, text in json_schemas().items():
        path = root / "schemas" / name
        current = path.read_text() if path.exists() else None
        if current == text:
            continue
        stale.append(str(path))
        if not check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            click.echo(f"wrote {path}")
    if check and stale:
        click.echo("\n".join(f"{p}: out of date" for p in stale), err=True)
        click.echo("  hint: run `trainops schema` and commit the result", err=True)
        raise SystemExit(EXIT_INVALID)
    if not stale:
        click.echo("schemas are up to date")


@cli.command()
@click.argument("directory", default=".", type=click.Path(file_okay=False, path_type=Path))
def init(directory: Path) -> None:
    """Create a trainops repository in DIRECTORY with example jobs and workflows."""
    from trainops.init import init_repository

    written = init_repository(directory)
    click.echo(f"Initialized a trainops repository in {directory} ({len(written)} files):")
    for path in written:
        click.echo(f"  {path}")
    click.echo(f"\nNext: cd {directory} && trainops plan && trainops apply --wait")


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the CLI and map errors to exit codes in one place."""
    try:
        cli.main(args=argv, prog_name="trainops", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except InvalidInput as exc:
        from trainops import render

        click.echo(render.problems_text(exc.problems), err=True)
        return exc.exit_code
    except TrainopsError as exc:
        if _Context.debug:
            raise
        click.echo(f"error: {exc}", err=True)
        return exc.exit_code
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else EXIT_OK
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a bug in trainops, not user error
        if _Context.debug:
            raise
        click.echo(f"internal error: {type(exc).__name__}: {exc}\n"
                   "  hint: run again with --debug for a traceback, and report it", err=True)
        return EXIT_PROVIDER
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
