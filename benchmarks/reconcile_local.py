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

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the shared repository builder: benchmarks/_repo.py

from benchmarks._repo import ENV, git, local_jobs  # noqa: E402
from benchmarks._repo import build as build_repo  # noqa: E402

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


# Runs `python -m trainops ARGS` and writes its wall seconds and peak RSS (KiB) to argv[1]. A
# child's ru_maxrss counts the memory of the process it was forked from (the fork, or the vfork
# before exec, shares its pages): measured straight from this benchmark, which holds the whole
# repository it built, every command would read as large as the benchmark itself. So the command
# is started from this small process, and its figure read here.
_SPAWN = """\
import os, subprocess, sys, time
began = time.perf_counter()
proc = subprocess.Popen([sys.executable, "-m", "trainops", *sys.argv[2:]])
_pid, status, usage = os.wait4(proc.pid, 0)
wall = time.perf_counter() - began
with open(sys.argv[1], "w") as out:
    out.write(f"{wall} {usage.ru_maxrss}")
sys.exit(os.waitstatus_to_exitcode(status))
"""


def compiled() -> None:
    """Compile trainops' bytecode, as pip does when it installs it: with an editable install
    under PYTHONDONTWRITEBYTECODE, every command run here would compile every module first,
    a fixed cost that makes each ratio look smaller than a user's."""
    import compileall

    import trainops

    compileall.compile_dir(Path(trainops.__file__).parent, quiet=1)


def best(times: list[float]) -> float:
    """The time a command takes, from repeated runs: the fastest. Noise on a shared machine only
    ever adds time, so the minimum is the steadiest estimate of the work itself; the ratios
    compare minimums measured in the same run (the medians are printed beside them)."""
    return min(times)


def runs_text(times: list[float]) -> str:
    return f"median {statistics.median(times):.2f}s; runs: " + ", ".join(f"{x:.2f}" for x in times)


def measure(root: Path, *args: str) -> tuple[float, float, subprocess.CompletedProcess[str]]:
    """Wall seconds and peak RSS (MB, the process and the children it waited for) of
    `trainops ARGS` run as a user runs it, started from a small process (see _SPAWN)."""
    with (
        tempfile.TemporaryFile("w+") as out,
        tempfile.TemporaryFile("w+") as err,
        tempfile.NamedTemporaryFile("r") as figures,
    ):
        proc = subprocess.run(
            [sys.executable, "-c", _SPAWN, figures.name, *args],
            cwd=root,
            env=ENV,
            stdout=out,
            stderr=err,
        )
        out.seek(0)
        err.seek(0)
        done = subprocess.CompletedProcess(proc.args, proc.returncode, out.read(), err.read())
        wall, rss_kib = (float(x) for x in Path(figures.name).read_text().split())
    return wall, rss_kib / 1024, done


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
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5, help="runs of each command (fastest)")
    parser.add_argument("--keep", type=Path, help="build the repository here and keep it")
    args = parser.parse_args()

    base = args.keep or Path(tempfile.mkdtemp(prefix="trainops-bench-"))
    base.mkdir(parents=True, exist_ok=True)
    compiled()
    try:
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
        validate, apply, rss, saved = [], [], [], []
        for _ in range(args.repeat):
            wall, _mb, done = measure(root, "validate")
            assert done.returncode == 0, done.stderr[-2000:]
            validate.append(wall)
            wall, mb, done = measure(root, "apply", "--output", "json")
            assert done.returncode == 0, done.stderr[-2000:]
            report = json.loads(done.stdout)
            assert not report["actions"], report["actions"][:3]
            unsynced = [
                r["job"]
                for r in report["jobs"]
                if (r["sync"], r["health"]) != ("Synced", "Succeeded")
            ]
            assert not unsynced, f"{len(unsynced)} jobs not Synced/Succeeded: {unsynced[:3]}"
            apply.append(wall)
            rss.append(mb)
            wall, mb, done = measure(root, "apply", str(plan_file), "--output", "json")
            assert done.returncode == 0, done.stderr[-2000:]
            assert not json.loads(done.stdout)["actions"]
            saved.append(wall)
            rss.append(mb)
        assert state_commits(root) == commits, "the no-op apply made a state commit"

        v, a, peak = best(validate), best(apply), max(rss)
        ratio = a / v
        print(f"validate   {v:7.2f}s  ({runs_text(validate)})")
        print(f"apply      {a:7.2f}s  ({runs_text(apply)})")
        print(f"ratio      {ratio:7.2f}x  (target <= {TARGET_RATIO:g}x)")
        print(f"peak RSS   {peak:7.1f} MB (target < {TARGET_RSS_MB:g} MB)")
        saved_ratio = best(saved) / a
        print(f"apply FILE {best(saved):7.2f}s  ({runs_text(saved)})")
        print(f"saved/plain {saved_ratio:6.2f}x  (target <= {TARGET_SAVED:g}x)")
        print("state commits by the no-op apply: 0")
        ours, compose = loader_ratio(root)
        loaded = ours / compose
        print(f"loader     {ours:7.2f}s  libyaml compose {compose:.2f}s of the same files")
        print(f"loader     {loaded:7.2f}x compose (target <= {TARGET_LOADER:g}x)")
        missed = [
            name
            for name, bad in (
                ("ratio", ratio > TARGET_RATIO),
                ("rss", peak >= TARGET_RSS_MB),
                ("loader", loaded > TARGET_LOADER),
                ("saved plan", saved_ratio > TARGET_SAVED),
            )
            if bad
        ]
        if missed:
            print(f"MISSED: {', '.join(missed)}")
            return 1
        return 0
    finally:
        if args.keep is None:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
