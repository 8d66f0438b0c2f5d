"""`trainops --help` loads click and the command table, nothing else it does not need.

benchmarks/startup.py measures the start-up against `python -c "import click"` (issue 28); this
test keeps the modules that made the difference out of `--help`, so that a top-level import
added back to the CLI fails the suite instead of a figure drifting.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

# Loaded by the commands when they run (or by an error being mapped to its exit code), never
# by `--help`: the standard library's pathlib (with urllib.parse and ipaddress behind it) and
# dataclasses, trainops' error family and escaping, and the libraries the commands work with.
NOT_FOR_HELP = (
    "pathlib",
    "urllib.parse",
    "ipaddress",
    "dataclasses",
    "trainops.errors",
    "trainops.escape",
    "trainops.scrub",
    "trainops.render",
    "trainops.repo",
    "trainops.manifest",
    "trainops.workspace",
    "yaml",
    "pydantic",
    "jsonschema",
    "rich",
    "git",
    "httpx",
    "boto3",
    "botocore",
    "replicate",
    "huggingface_hub",
    "ray",
)

SCRIPT = """\
import contextlib, io, sys
from trainops.cli import main
with contextlib.redirect_stdout(io.StringIO()) as out:
    code = main(sys.argv[1:])
print(code, "Usage: trainops" in out.getvalue())
print("\\n".join(sorted(sys.modules)))
"""


def run(*args: str) -> tuple[str, set[str]]:
    """What `trainops ARGS` returned (exit code, whether it printed a usage), and the modules
    a fresh interpreter held after it, run as the console script runs it."""
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    first, _, rest = proc.stdout.partition("\n")
    return first, set(rest.split())


@pytest.mark.parametrize("args", [("--help",), ("-h",), ("validate", "--help"), ("state", "-h")])
def test_help_imports_none_of_what_the_commands_use(args: tuple[str, ...]) -> None:
    result, loaded = run(*args)
    assert result == "0 True"
    assert sorted(m for m in NOT_FOR_HELP if m in loaded) == []


def test_a_command_that_runs_loads_them(tmp_path: Path) -> None:
    # The names are the modules the CLI really loads: `validate` of a small repository holds
    # all but the provider libraries, the terminal table and git (the probe sees them).
    (tmp_path / "trainops.yaml").write_text('jobs: ["jobs/*.yaml"]\n')
    result, loaded = run("validate", "--dir", str(tmp_path))
    assert result == "0 False"
    unused = {"rich", "git", "httpx", "boto3", "botocore", "replicate", "huggingface_hub", "ray"}
    unused.add("jsonschema")
    assert sorted(m for m in NOT_FOR_HELP if m not in loaded) == sorted(unused)
