"""`trainops validate` runs each provider's own offline `check()` (providers/base.py) and
reports what it finds at file:line:col, exit 1 (issue 26, finding 9): before, no command called
it, so a local command path with a typo or an unknown Hugging Face flavor passed `validate` and
failed only once the run was started."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

LOCAL = """\
apiVersion: trainops/v1
kind: TrainingJob
metadata: {name: typo}
spec:
  provider: local
  command: [./train/trian.sh]
"""

HF = """\
apiVersion: trainops/v1
kind: TrainingJob
metadata: {name: flavor}
spec:
  provider: huggingface
  image: python:3.12
  command: [python, train.py]
  hardware: a100-huge
"""


def validate(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "trainops", "validate"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_validate_reports_the_problems_of_each_providers_check(tmp_path: Path) -> None:
    (tmp_path / "jobs/train").mkdir(parents=True)
    (tmp_path / "jobs/train/train.sh").write_text("#!/bin/sh\n")
    (tmp_path / "jobs/typo.yaml").write_text(LOCAL)
    (tmp_path / "jobs/flavor.yaml").write_text(HF)
    result = validate(tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert any(
        line.startswith("jobs/typo.yaml:6:") and "train/trian.sh" in line for line in lines
    ), result.stderr
    assert any(line.startswith("jobs/flavor.yaml:8:") and "a100-huge" in line for line in lines), (
        result.stderr
    )

    # The same files once fixed are valid: the checks do not refuse a good job.
    (tmp_path / "jobs/typo.yaml").write_text(LOCAL.replace("trian", "train"))
    (tmp_path / "jobs/flavor.yaml").write_text(HF.replace("a100-huge", "a100-large"))
    fixed = validate(tmp_path)
    assert fixed.returncode == 0, fixed.stderr


WORKDIR_OUT = """\
apiVersion: trainops/v1
kind: TrainingJob
metadata: {name: out}
spec:
  provider: local
  workdir: real/out
  command: [./run.sh]
"""


def test_a_job_refused_already_is_not_checked_again_nor_looked_for_outside(
    tmp_path: Path,
) -> None:
    """A workdir that leads out through a link is refused by validate's own check; the
    provider's check must not then look for the command in the folder outside (an existence
    probe of the CI machine's disk, printed with its absolute path) nor add a second problem."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (tmp_path / "r/jobs").mkdir(parents=True)
    (tmp_path / "r/real").mkdir()
    (tmp_path / "r/real/out").symlink_to(outside)
    (tmp_path / "r/jobs/out.yaml").write_text(WORKDIR_OUT)
    result = validate(tmp_path / "r")
    assert result.returncode == 1, result.stdout + result.stderr
    problems = [line for line in result.stderr.splitlines() if line.startswith("jobs/")]
    assert len(problems) == 1, result.stderr
    assert "through a symlink" in problems[0]
    assert str(outside) not in result.stderr
