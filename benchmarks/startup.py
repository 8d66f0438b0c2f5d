"""Benchmark: trainops' start-up against the floor it stands on, `python -c "import click"`.

    python benchmarks/startup.py [--repeat R] [--check]

Times, as whole processes, alternately with `python -c "import click"` in the same run (see
benchmarks/_timing.py), R counted pairs after one warm-up pair:

- `trainops --help`: click, the command table and the help text (issue 28: at most 1.3x);
- `trainops validate` of a repository of one manifest: what a command pays before its work
  (pydantic's models, the YAML loader), reported, not a target.

Prints each command's median CPU and wall time and the median of the pair-by-pair ratios.
`--check` exits 1 when the `--help` target is missed.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks._timing import Pair, paired, trainops_command  # noqa: E402

HELP_TARGET = 1.3  # `trainops --help` at most this many times `python -c "import click"`

MANIFEST = """\
apiVersion: trainops/v1
kind: TrainingJob
metadata:
  name: eval-00001
spec:
  provider: local
  command: [python, train.py]
  input: {epochs: 10}
"""


def tiny_repository(root: Path) -> Path:
    (root / "jobs").mkdir(parents=True)
    (root / "trainops.yaml").write_text('jobs: ["jobs/*.yaml"]\n')
    (root / "jobs" / "eval.yaml").write_text(MANIFEST)
    return root


def row(label: str, pair: Pair) -> str:
    return (
        f"  {label:<34} {pair.a.cpu * 1000:6.1f} ms cpu {pair.a.wall * 1000:6.1f} ms wall   "
        f"import click {pair.b.cpu * 1000:5.1f} / {pair.b.wall * 1000:5.1f} ms   "
        f"ratio {pair.cpu_ratio:.2f}x cpu, {pair.wall_ratio:.2f}x wall"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=40, help="counted pairs per command")
    parser.add_argument("--check", action="store_true", help="exit 1 when the target is missed")
    args = parser.parse_args()

    trainops = trainops_command()
    floor = [sys.executable, "-c", "import click"]
    with tempfile.TemporaryDirectory(prefix="trainops-startup-") as tmp:
        repo = tiny_repository(Path(tmp) / "repo")
        helps = paired([*trainops, "--help"], floor, args.repeat, repo)
        validate = paired([*trainops, "validate", "--dir", str(repo)], floor, args.repeat, repo)

    met = helps.cpu_ratio <= HELP_TARGET
    print(
        f"start-up against `python -c 'import click'`, alternating, median of {helps.runs} "
        f"pairs; python {sys.version.split()[0]}; {' '.join(Path(c).name for c in trainops)}"
    )
    print(row("trainops --help", helps))
    print(row("trainops validate (1 manifest)", validate))
    print(
        f"--help: {helps.cpu_ratio:.2f}x import click (cpu; wall {helps.wall_ratio:.2f}x) "
        f"(target <= {HELP_TARGET:g}x): {'met' if met else 'MISSED'}"
    )
    return 1 if args.check and not met else 0


if __name__ == "__main__":
    sys.exit(main())
