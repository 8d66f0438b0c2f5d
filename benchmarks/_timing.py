"""Timing two commands side by side, for the ratio benchmarks (validate.py, startup.py).

A ratio between two whole processes only holds on a shared, noisy machine when both are
measured in the same run, alternately (A B A B ...), so that a slow moment slows both: `paired`
does that and reports, besides each command's median, the median of the pair-by-pair ratios.
CPU time (user + system, the kernel's own accounting of the finished child) is less disturbed
by other load than wall time; both are reported.
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path


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


def trainops_command() -> list[str]:
    """The `trainops` console script next to this interpreter, else `python -m trainops`."""
    import shutil

    script = shutil.which("trainops", path=str(Path(sys.executable).parent))
    return [script] if script else [sys.executable, "-m", "trainops"]
