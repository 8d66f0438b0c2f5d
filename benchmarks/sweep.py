"""A sweep of N members against N hand-written jobs (issue 30, DESIGN §21).

Builds two repositories with the same N local jobs, every run succeeded in the state branch:

- `set`: one manifest, `spec.matrix: {seed: [0 .. N-1]}`, `input.seed: "${{ matrix.seed }}"`;
- `hand`: N manifests (`benchmarks/_repo.py`'s `local_jobs`), the same spec each with its seed.

and measures, alternately in the same run (set, hand, set, hand, ...), `trainops validate` and a
no-op `trainops apply` of each: their wall times, the ratios set / hand (target: at most 1.1x
for both commands: a member costs what a job costs) and the peak RSS of every command.

Usage: python benchmarks/sweep.py [--count N] [--repeat R] [--keep DIR]
Exits 1 when a target is missed.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the shared repository builder: benchmarks/_repo.py

from benchmarks._repo import LOCAL_MANIFEST, local_jobs  # noqa: E402
from benchmarks._repo import build as build_repo  # noqa: E402
from benchmarks._timing import Samples, arguments, scratch, verdict  # noqa: E402
from benchmarks.reconcile_local import check_no_op, write_state  # noqa: E402

TARGET_RATIO = 1.1  # set / hand-written, for validate and for a no-op apply


def sweep_files(count: int) -> dict[str, str]:
    """The hand-written repository's files, its jobs replaced by one set of `count` members
    whose specs are theirs (the same seed in each)."""
    files = {k: v for k, v in local_jobs(0).items()}
    text = LOCAL_MANIFEST.format(name="job", seed='"${{ matrix.seed }}"')
    seeds = ", ".join(str(i) for i in range(count))
    text = text.replace("  retries: 1", f"  retries: 1\n  matrix: {{seed: [{seeds}]}}")
    files["jobs/job.yaml"] = text
    return files


def build(base: Path, kind: str, count: int) -> Path:
    files = sweep_files(count) if kind == "set" else local_jobs(count)
    return build_repo(
        base / kind,
        files,
        key=f"sweep {kind} {count}",
        then=write_state,
        packed=True,
        message=f"{count} jobs ({kind})",
    )


def main() -> int:
    args = arguments(__doc__, count=1000).parse_args()
    with scratch(args.keep, prefix="trainops-bench-sweep-") as base:
        began = time.perf_counter()
        roots = {kind: build(base, kind, args.count) for kind in ("set", "hand")}
        print(f"built both repositories in {time.perf_counter() - began:.1f}s ({base})")
        runs = Samples()
        for _ in range(args.repeat):
            for kind, root in roots.items():
                done = runs.run((kind, "validate"), root, "validate")
                assert f"{args.count} job(s) valid" in done.stdout, done.stdout[-500:]
                check_no_op(runs.run((kind, "apply"), root, "apply", "--output", "json"))
        missed = []
        for command in ("validate", "apply"):
            s, h = runs.best(("set", command)), runs.best(("hand", command))
            for kind, seconds in (("set", s), ("hand", h)):
                print(
                    f"{command:8} {kind:4} {seconds:6.2f}s  peak RSS "
                    f"{runs.peak((kind, command)):6.1f} MB  ({runs.text((kind, command))})"
                )
            ratio = s / h
            print(
                f"{command:8} set/hand {ratio:5.2f}x, hand/set {h / s:5.2f}x "
                f"(target set/hand <= {TARGET_RATIO:g}x)"
            )
            if ratio > TARGET_RATIO:
                missed.append(f"{command} {ratio:.2f}x")
        return verdict(missed)


if __name__ == "__main__":
    sys.exit(main())
