"""A no-op `trainops apply` over many local manifests whose runs all succeeded (issue 3).

Builds a repository with `--count` manifests (default 10,000) and a bare remote, writes the state
branch directly with `GitStateStore` (one succeeded run per job, at the revision the workspace
computes) instead of running that many trainings, then measures in the same run:

- `trainops validate` wall time (the baseline: parsing and checking every manifest),
- a no-op `trainops apply` wall time, its ratio to validate (target: at most 2x), and its peak RSS
  (target: under 300 MB), and that it made no state commit,
- trainops' YAML loader over every manifest against libyaml's compose of the same texts, in
  the same process (target: at most 1.5x),
- a saved plan (issue 29): `plan --out FILE` once, then `apply FILE` timed beside the plain
  apply of the same runs, and their ratio (target: at most 1.1x: checking the file costs no
  more than a plain apply, DESIGN §20).

Usage: python benchmarks/reconcile_local.py [--count N] [--repeat R] [--keep DIR]
`--keep DIR` builds the repository there and keeps it; a later run with the same DIR and count
reuses it instead of building again. Exits 1 when a target is missed.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the shared repository builder: benchmarks/_repo.py

from benchmarks._repo import build as build_repo  # noqa: E402
from benchmarks._repo import git, local_jobs  # noqa: E402
from benchmarks._timing import Samples, arguments, measure, scratch, verdict  # noqa: E402

TARGET_RATIO = 2.0
TARGET_LOADER = 1.5  # trainops' loader against libyaml's compose of the same files
TARGET_RSS_MB = 300.0
TARGET_SAVED = 1.1  # apply FILE against a plain apply of the same (no-op) plan
BRANCH = "trainops/state"


def build(base: Path, count: int) -> Path:
    return build_repo(
        base,
        local_jobs(count),
        key=f"reconcile_local {count}",
        then=write_state,
        packed=True,
        message=f"{count} jobs",
    )


def write_state(root: Path) -> None:
    """Every job's current revision succeeded, recorded as apply would have recorded it."""
    from trainops.providers.local import run_id_for
    from trainops.state.git import GitStateStore
    from trainops.state.layout import snapshot_path, state_path
    from trainops.state.model import Health, JobState, Run
    from trainops.workspace import Workspace

    ws = Workspace.open(root, ref="HEAD")
    desired = ws.desired()
    assert len(desired.targets) > 0 and not ws.validation.problems, ws.validation.problems
    now = time.time()
    changes: dict[str, str | None] = {}
    for name, target in desired.targets.items():
        run_id = run_id_for(name, target.revision, 1)
        run = Run(
            revision=target.revision,
            attempt=1,
            provider="local",
            input_hash="0" * 16,
            created_at=now - 3600,
            source_commit=ws.commit,
            run_id=run_id,
            health=Health.SUCCEEDED,
            started_at=now - 3590,
            completed_at=now - 3000,
            billed_seconds=590.0,
            cost_usd=0.0,
            outputs={"weights": f"/runs/{run_id}/outputs/weights.bin"},
            owner="bench:1",
            snapshot=snapshot_path(name, target.revision),
        )
        changes[state_path(name)] = JobState(name, (run,)).to_text()
    GitStateStore(root, branch=BRANCH).save("", changes, "benchmark: every run succeeded\n")


def check_no_op(done: subprocess.CompletedProcess[str]) -> None:
    """`apply --output json` did nothing, and found every job Synced and Succeeded."""
    report = json.loads(done.stdout)
    assert not report["actions"], report["actions"][:3]
    unsynced = [
        r["job"] for r in report["jobs"] if (r["sync"], r["health"]) != ("Synced", "Succeeded")
    ]
    assert not unsynced, f"{len(unsynced)} jobs not Synced/Succeeded: {unsynced[:3]}"


def loader_ratio(root: Path, rounds: int = 5, chunk: int = 100) -> tuple[float, float]:
    """Seconds to read every manifest with trainops' loader (values, positions, refusals) and
    with libyaml's compose (node graph only) of the same texts, in this process: the floor a
    loader built on libyaml's events can approach. Each `chunk` of files is read by one, then
    at once by the other, `rounds` times; each side keeps its fastest time per chunk, summed.
    This machine's speed drifts by a third within minutes: timed side by side at this grain,
    both see the same machine (three whole passes of one, then three of the other, did not)."""
    import yaml

    from trainops.yamlsource import load_text

    texts = [p.read_text() for p in sorted((root / "jobs").glob("*.yaml"))]
    chunks = [texts[i : i + chunk] for i in range(0, len(texts), chunk)]
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

    def ours(part: list[str]) -> None:
        for text in part:
            load_text(text, "x.yaml")

    def compose(part: list[str]) -> None:
        for text in part:
            list(yaml.compose_all(text, Loader=loader))

    fastest = {"ours": [float("inf")] * len(chunks), "compose": [float("inf")] * len(chunks)}
    for _ in range(rounds):
        for i, part in enumerate(chunks):
            for name, fn in (("ours", ours), ("compose", compose)):
                began = time.perf_counter()
                fn(part)
                fastest[name][i] = min(fastest[name][i], time.perf_counter() - began)
    return sum(fastest["ours"]), sum(fastest["compose"])


def state_commits(root: Path) -> int:
    return int(git(root / ".." / "repo.git", "rev-list", "--count", f"refs/heads/{BRANCH}"))


def main() -> int:
    args = arguments(__doc__, count=10_000).parse_args()
    with scratch(args.keep) as base:
        began = time.perf_counter()
        root = build(base, args.count)
        print(
            f"built {args.count} manifests and their state in "
            f"{time.perf_counter() - began:.1f}s ({root})"
        )
        commits = state_commits(root)

        plan_file = base / "saved-plan.json"
        wall, _mb, done = measure(root, "plan", "--out", str(plan_file))
        assert done.returncode == 0, done.stderr[-2000:]
        print(f"plan --out {wall:7.2f}s  ({plan_file.stat().st_size / 1e6:.1f} MB file)")
        runs = Samples()
        for _ in range(args.repeat):
            runs.run("validate", root, "validate")
            check_no_op(runs.run("apply", root, "apply", "--output", "json"))
            done = runs.run("apply FILE", root, "apply", str(plan_file), "--output", "json")
            assert not json.loads(done.stdout)["actions"]
        assert state_commits(root) == commits, "the no-op apply made a state commit"

        v, a, peak = runs.best("validate"), runs.best("apply"), runs.peak("apply", "apply FILE")
        ratio = a / v
        print(f"validate   {v:7.2f}s  ({runs.text('validate')})")
        print(f"apply      {a:7.2f}s  ({runs.text('apply')})")
        print(f"ratio      {ratio:7.2f}x  (target <= {TARGET_RATIO:g}x)")
        print(f"peak RSS   {peak:7.1f} MB (target < {TARGET_RSS_MB:g} MB)")
        saved_ratio = runs.best("apply FILE") / a
        print(f"apply FILE {runs.best('apply FILE'):7.2f}s  ({runs.text('apply FILE')})")
        print(f"saved/plain {saved_ratio:6.2f}x  (target <= {TARGET_SAVED:g}x)")
        print("state commits by the no-op apply: 0")
        ours, compose = loader_ratio(root)
        loaded = ours / compose
        print(f"loader     {ours:7.2f}s  libyaml compose {compose:.2f}s of the same files")
        print(f"loader     {loaded:7.2f}x compose (target <= {TARGET_LOADER:g}x)")
        return verdict(
            [
                name
                for name, bad in (
                    ("ratio", ratio > TARGET_RATIO),
                    ("rss", peak >= TARGET_RSS_MB),
                    ("loader", loaded > TARGET_LOADER),
                    ("saved plan", saved_ratio > TARGET_SAVED),
                )
                if bad
            ]
        )


if __name__ == "__main__":
    sys.exit(main())
