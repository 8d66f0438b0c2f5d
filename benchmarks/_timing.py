"""How the benchmarks time trainops' commands as whole processes (issue 28: one copy of it).

Two ways, each with its own reading of noise:

- the repository benchmarks (reconcile_local.py, state_history.py, sweep.py) run each command
  `--repeat` times through `measure` (wall seconds and the peak RSS of the command alone, see
  `_SPAWN`), keep every figure in a `Samples` by name, and compare the fastest runs (`best`);
  `arguments`, `scratch` and `verdict` are the parts of their `main` they share;
- the ratio benchmarks (validate.py, startup.py) time two commands alternately in the same run
  (A B A B ...), so that a slow moment slows both: `paired` does that and reports, besides each
  command's median, the median of the pair-by-pair ratios. CPU time (user + system, the kernel's
  own accounting of the finished child) is less disturbed by other load than wall time; both are
  reported.

Import it as `from benchmarks._timing import ...` with the project root on `sys.path`.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Hashable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks._repo import ENV


@dataclass(frozen=True)
class Figure:
    """One command's medians over the counted runs, in seconds."""

    cpu: float
    wall: float


@dataclass(frozen=True)
class Pair:
    a: Figure
    b: Figure
    cpu_ratio: float  # median of the per-pair ratios A/B
    wall_ratio: float
    runs: int


def env() -> dict[str, str]:
    """The environment the commands run in: as installed, with bytecode written (a test
    session's PYTHONDONTWRITEBYTECODE would make every run compile trainops anew)."""
    out = dict(os.environ)
    out.pop("PYTHONDONTWRITEBYTECODE", None)
    return out


def run_once(cmd: list[str], cwd: Path, expect: int = 0) -> tuple[float, float]:
    """(cpu, wall) seconds of one run of `cmd`; exits when it does not exit with `expect`."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = proc.communicate()  # reaped: its CPU time is in the children's counters now
    wall = time.perf_counter() - start
    if proc.returncode != expect:
        sys.exit(
            f"{' '.join(cmd[:4])} ... exited {proc.returncode}:\n"
            f"{out.decode(errors='replace')[-2000:]}{err.decode(errors='replace')[-2000:]}"
        )
    return _children_cpu_since(), wall


_last_children_cpu = [0.0]


def _children_cpu_since() -> float:
    """CPU seconds of the children reaped since the last call (RUSAGE_CHILDREN only grows)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # microseconds, not clock ticks
    total = usage.ru_utime + usage.ru_stime
    spent, _last_children_cpu[0] = total - _last_children_cpu[0], total
    return spent


def paired(
    a: list[str], b: list[str], repeat: int, cwd: Path, *, warmup: int = 1, expect_a: int = 0
) -> Pair:
    """`a` and `b` in turn, `warmup` pairs not counted (page cache, bytecode), then `repeat`."""
    _children_cpu_since()
    rows: list[tuple[float, float, float, float]] = []
    for i in range(warmup + repeat):
        a_cpu, a_wall = run_once(a, cwd, expect_a)
        b_cpu, b_wall = run_once(b, cwd)
        if i >= warmup:
            rows.append((a_cpu, a_wall, b_cpu, b_wall))
    med = statistics.median
    return Pair(
        a=Figure(med(r[0] for r in rows), med(r[1] for r in rows)),
        b=Figure(med(r[2] for r in rows), med(r[3] for r in rows)),
        cpu_ratio=med(r[0] / r[2] for r in rows),
        wall_ratio=med(r[1] / r[3] for r in rows),
        runs=len(rows),
    )


def median_wall(cmd: list[str], repeat: int, cwd: Path, expect: int = 0) -> float:
    """The median wall seconds of `repeat` runs of `cmd` after one run not counted (page cache,
    bytecode); exits when a run does not exit with `expect`."""
    run_once(cmd, cwd, expect)
    return statistics.median(run_once(cmd, cwd, expect)[1] for _ in range(repeat))


def trainops_command() -> list[str]:
    """The `trainops` console script next to this interpreter, else `python -m trainops`."""
    script = shutil.which("trainops", path=str(Path(sys.executable).parent))
    return [script] if script else [sys.executable, "-m", "trainops"]


# ---- the repository benchmarks: a command's wall time and peak RSS, fastest of R runs -------

# Runs `python -m trainops ARGS` and writes its wall seconds and peak RSS (KiB) to argv[1]. A
# child's ru_maxrss counts the memory of the process it was forked from (the fork, or the vfork
# before exec, shares its pages): measured straight from a benchmark, which holds the whole
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
    `trainops ARGS` run in `root` as a user runs it, started from a small process (`_SPAWN`),
    in the benchmarks' hermetic environment (benchmarks/_repo.py's `ENV`)."""
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


@dataclass
class Samples:
    """Every run's wall seconds and peak RSS (MB), by the name of what was run."""

    times: dict[Hashable, list[float]] = field(default_factory=dict)
    rss: dict[Hashable, list[float]] = field(default_factory=dict)

    def run(self, name: Hashable, root: Path, *args: str) -> subprocess.CompletedProcess[str]:
        """`trainops ARGS` in `root`, measured (`measure`) and kept under `name`; it must
        succeed."""
        wall, mb, done = measure(root, *args)
        assert done.returncode == 0, done.stderr[-2000:]
        self.times.setdefault(name, []).append(wall)
        self.rss.setdefault(name, []).append(mb)
        return done

    def best(self, name: Hashable) -> float:
        return best(self.times[name])

    def peak(self, *names: Hashable) -> float:
        """The largest peak RSS of any run of `names`."""
        return max(mb for name in names for mb in self.rss[name])

    def text(self, name: Hashable) -> str:
        return runs_text(self.times[name])


def arguments(doc: str, count: int) -> argparse.ArgumentParser:
    """A repository benchmark's options: `--count` (default `count`), `--repeat`, `--keep DIR`;
    the caller adds its own and parses."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--count", type=int, default=count)
    parser.add_argument("--repeat", type=int, default=5, help="runs of each command (fastest)")
    parser.add_argument("--keep", type=Path, help="build the repositories here and keep them")
    return parser


@contextlib.contextmanager
def scratch(keep: Path | None, prefix: str = "trainops-bench-") -> Iterator[Path]:
    """The folder a benchmark builds in: `keep` (made if missing, left in place; the builder
    reuses what an earlier run built there), else a new temporary folder removed at the end.
    trainops is compiled first (`compiled`)."""
    base = keep or Path(tempfile.mkdtemp(prefix=prefix))
    base.mkdir(parents=True, exist_ok=True)
    compiled()
    try:
        yield base
    finally:
        if keep is None:
            shutil.rmtree(base, ignore_errors=True)


def verdict(missed: list[str]) -> int:
    """A benchmark's exit code: 1 (and the targets it says) when any was missed."""
    if missed:
        print(f"MISSED: {', '.join(missed)}")
        return 1
    return 0
