"""`.ci/run` as CI runs it: a fresh virtual environment on every run, the README's second shell
block (the test command, read from README.md) run in it as written, and pytest's exit 5 (no tests
collected) as a failure. Run on a stub project so it takes seconds, not the suite; the suite
itself runs the real README's block through `.ci/run` in CI."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]
# The test the stub project runs reports which interpreter ran it, and from where pytest came.
PROBE = """\
import sys
from pathlib import Path

import pytest


def test_probe() -> None:
    Path("probe.txt").write_text(f"{sys.prefix}\\n{pytest.__file__}\\n")
"""


# The stub's README: its second block is its test command, and notes which interpreter ran it.
README = """\
# stub

```sh
echo "the first block is the newcomer's run, not the tests" > first.txt
```

```sh
pip install pytest && python -c "import sys; print(sys.prefix)" >>prefixes.txt && pytest -q
```
"""


def stub(root: Path, with_tests: bool) -> Path:
    (root / ".ci").mkdir(parents=True)
    shutil.copy(PROJECT / ".ci" / "run", root / ".ci" / "run")
    (root / "README.md").write_text(README)
    (root / "tests").mkdir()
    if with_tests:
        (root / "tests" / "test_probe.py").write_text(PROBE)
    return root


def ci(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", ".ci/run"],
        cwd=root,
        env={"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "HOME": str(root)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_each_run_runs_the_readmes_test_command_in_a_fresh_virtual_environment(
    tmp_path: Path,
) -> None:
    root = stub(tmp_path / "p", with_tests=True)
    passed = ci(root)
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert not (root / "first.txt").exists()  # only the second block is the test command
    prefix, pytest_file = (root / "probe.txt").read_text().splitlines()
    assert pytest_file.startswith(prefix)  # pytest installed into that environment
    assert prefix != sys.prefix and not Path(prefix).exists()  # and removed afterwards
    assert "ci: pytest==" in passed.stdout  # what the run resolved is in the log

    (root / "tests" / "test_probe.py").unlink()
    empty = ci(root)  # pytest's exit 5 is a failure
    assert empty.returncode == 1, empty.stdout + empty.stderr
    assert "pytest collected no tests: failing" in empty.stderr
    first, second = (root / "prefixes.txt").read_text().splitlines()
    assert first == prefix and second != first  # a new environment for each run


def test_a_readme_without_the_test_command_fails(tmp_path: Path) -> None:
    root = stub(tmp_path / "p", with_tests=True)
    (root / "README.md").write_text("# stub\n\n```sh\npip install -e .\n```\n")
    result = ci(root)
    assert result.returncode == 1
    assert "no second ```sh block" in result.stderr
