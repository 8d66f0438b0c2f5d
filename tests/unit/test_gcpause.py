"""The collector's thresholds for a trainops process (`gcpause.tune`, issue 13): a command over
many jobs walks its whole heap in full collections only rarely, and still collects cycles."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.support.gitrepo import make_repo
from tests.support.workspace import config, manifest

# Runs `trainops ARGS` in a fresh interpreter and prints the collections of each generation.
_COUNT = """\
import gc, json, sys
import trainops.cli
runs = [0, 0, 0]
gc.callbacks.append(lambda phase, info: phase == "start" and runs.__setitem__(
    info["generation"], runs[info["generation"]] + 1))
code = trainops.cli.main(sys.argv[1:])
print(json.dumps([code, gc.get_threshold(), runs]))
"""


def test_a_command_over_many_jobs_makes_no_full_collection(tmp_path: Path) -> None:
    from trainops.gcpause import THRESHOLDS

    files = {"trainops.yaml": config(), "train.py": "pass\n"}
    files |= {f"jobs/j{i:04d}.yaml": manifest(f"j{i:04d}") for i in range(1500)}
    root = make_repo(tmp_path / "repo", files)
    proc = subprocess.run(
        [sys.executable, "-c", _COUNT, "validate", "--dir", str(root)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    code, thresholds, runs = json.loads(proc.stdout.splitlines()[-1])
    # Under the default thresholds (700, 10, 10) this ran a full collection over its heap (a
    # 5,000-job plan ran 4).
    assert (code, runs[2]) == (0, 0), runs
    assert tuple(thresholds) == THRESHOLDS
