"""The commands for writing a trainops repository: `init`, `validate`, `schema` and `lock`.
None of them reads the state branch or starts a run.
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
@click.option("--github", is_flag=True, help="Also print GitHub workflow annotations.")
def validate(root: Path, output: str, github: bool) -> None:
    """Check every manifest (schema, names, references, inputs against the lock)."""
    from trainops import render
    from trainops.errors import EXIT_INVALID
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
@dir_option
@click.option("--check", is_flag=True, help="Fail when the files on disk are not up to date.")
def schema(root: Path, check: bool) -> None:
    """Write the JSON Schemas generated from the manifest models to schemas/."""
    from trainops.errors import EXIT_INVALID
    from trainops.manifest import json_schemas
    from trainops.output import output_schemas
    from trainops.savedplan.model import saved_plan_schemas

    stale = []
    for name, text in {**json_schemas(), **output_schemas(), **saved_plan_schemas()}.items():
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
@click.argument("directory", default=".", type=PathArg(file_okay=False))
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
@dir_option
@click.option(
    "--check", is_flag=True, help="Offline: fail when trainops.lock does not match the manifests."
)
def lock(root: Path, check: bool) -> None:
    """Pin each Replicate trainer's version and input schema in trainops.lock."""
    from trainops.commands import lock_workspace
    from trainops.errors import EXIT_INVALID

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
