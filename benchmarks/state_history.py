"""A no-op `apply` and a `plan` over 5,000 jobs whose state went through 40 revisions each
(issue 13: retention, DESIGN §9), against `validate` of the same repository in the same run.

The state branch is built by the real state code: 40 rounds, one commit per round touching every
job, each round recording one succeeded run per job (with its snapshot) through
`state_changes`, the path apply writes by (retention, fan-out layout, cost totals, archive
chain). The last round is each job's current revision, so the no-op apply has nothing to do.
Then, in the same run: `validate`, a no-op `apply`, `plan` (wall time, peak RSS), their ratios to
validate (each the fastest of `--repeat` runs, see `best`), and what history costs: the tip's
size against all runs ever recorded, and the hops `history` makes for one job. Targets: apply
and plan <= 2x validate, peak RSS < 300 MB.

Usage: python benchmarks/state_history.py [--count N] [--revisions R] [--repeat K] [--keep DIR]
`--keep DIR` builds the repository there and keeps it; a later run with the same DIR, count and
revisions reuses it. Exits 1 when a target is missed. Prints the ratios and RSS last.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the shared repository builder: benchmarks/_repo.py

from benchmarks._repo import build as build_repo  # noqa: E402
from benchmarks._repo import git, local_jobs  # noqa: E402
from benchmarks._timing import Samples, arguments, scratch, verdict  # noqa: E402

TARGET_RATIO = 2.0
TARGET_RSS_MB = 300.0
BRANCH = "trainops/state"


def build(base: Path, count: int, revisions: int) -> tuple[Path, int]:
    recorded: list[int] = []
    root = build_repo(
        base,
        local_jobs(count),
        key=f"state_history {count} {revisions}",
        then=lambda root: recorded.append(write_history(root, revisions)),
        packed=True,
        message=f"{count} jobs",
    )
    return root, recorded[0] if recorded else count * revisions


def write_history(root: Path, revisions: int) -> int:
    """`revisions` rounds of one succeeded run per job, written as apply writes them; the last
    at the revision the workspace computes. Returns the runs recorded."""
    from trainops.state.admin import read_jobs
    from trainops.state.git import GitStateStore
    from trainops.state.layout import snapshot_path
    from trainops.state.model import Health, JobState, Run
    from trainops.state.retention import state_changes
    from trainops.workspace import Workspace

    ws = Workspace.open(root, ref="HEAD")
    desired = ws.desired()
    assert desired.targets and not ws.validation.problems, ws.validation.problems
    store = GitStateStore(root, branch=BRANCH, remote=None)
    now = time.time()
    version, jobs = "", {name: JobState(name) for name in desired.targets}
    for r in range(revisions):
        began = now - (revisions - r) * 3 * 86400  # every three days, back over ~4 months
        changes: dict[str, str | None] = {}
        updates = {}
        for name, target in desired.targets.items():
            rev = target.revision if r == revisions - 1 else f"{r:04x}{target.revision[4:]}"
            run = Run(
                revision=rev,
                attempt=1,
                provider="local",
                input_hash="0" * 16,
                created_at=began,
                source_commit=ws.commit,
                run_id=f"{name}-{rev}-1",
                health=Health.SUCCEEDED,
                started_at=began + 10,
                completed_at=began + 600,
                billed_seconds=590.0,
                cost_usd=0.0,
                labels={"team": "bench"},
                owner="bench:1",
                snapshot=snapshot_path(name, rev),
            )
            updates[name] = jobs[name].with_run(run)
            changes[run.snapshot] = f"# trainops snapshot of {name} revision {rev}\nspec: {{}}\n"
        changes |= state_changes(updates, jobs, version)
        version = store.save(version, changes, f"benchmark: round {r}\n")
        jobs = read_jobs(store)[1]
    git(root, "push", "--quiet", "origin", f"{BRANCH}:{BRANCH}")
    return revisions * len(desired.targets)


def main() -> int:
    parser = arguments(__doc__, count=5_000)
    parser.add_argument("--revisions", type=int, default=40)
    args = parser.parse_args()
    with scratch(args.keep) as base:
        began = time.perf_counter()
        root, recorded = build(base, args.count, args.revisions)
        print(
            f"built {args.count} jobs x {args.revisions} revisions in "
            f"{time.perf_counter() - began:.1f}s ({root})"
        )
        remote = root / ".." / "repo.git"
        commits = int(git(remote, "rev-list", "--count", BRANCH))

        from trainops.state.git import GitStateStore
        from trainops.state.history import job_history

        store = GitStateStore(root, branch=BRANCH)
        tip = store.load()
        kept = sum(len(json.loads(t)["runs"]) for t in tip.files.values())
        began = time.perf_counter()
        found = job_history(store, "job-00000")
        hist_s = time.perf_counter() - began
        assert len(found.runs) == args.revisions and not found.problem, found

        runs = Samples()
        for _ in range(args.repeat):
            runs.run("validate", root, "validate")
            applied = runs.run("apply", root, "apply", "--output", "json")
            assert not json.loads(applied.stdout)["actions"]
            runs.run("plan", root, "plan", "--output", "json")
        assert int(git(remote, "rev-list", "--count", BRANCH)) == commits, "apply committed"

        v = runs.best("validate")
        print(f"state commits       {commits}")
        print(f"runs ever recorded  {recorded}; at the tip {kept} ({kept / recorded:.1%})")
        print(f"history of one job  {len(found.runs)} runs, {found.hops} hops, {hist_s:.2f}s")
        for name in runs.times:
            print(f"{name:9} {runs.best(name):7.2f}s  ({runs.text(name)})")
        missed = []
        for name in ("apply", "plan"):
            ratio, peak = runs.best(name) / v, runs.peak(name)
            print(
                f"{name:5} ratio {ratio:5.2f}x validate (target <= {TARGET_RATIO:g}x), "
                f"peak RSS {peak:6.1f} MB (target < {TARGET_RSS_MB:g} MB)"
            )
            if ratio > TARGET_RATIO:
                missed.append(f"{name} ratio")
            if peak >= TARGET_RSS_MB:
                missed.append(f"{name} rss")
        return verdict(missed)


if __name__ == "__main__":
    sys.exit(main())
