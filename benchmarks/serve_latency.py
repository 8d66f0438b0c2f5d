"""`trainops serve` latency (issue 18): `--jobs` Replicate trainings (default 50) complete at
once; how long until each one's commit status says success, and how many passes that took.

A real git repository with a bare remote, the Replicate emulator (which sends real signed
webhooks) and the GitHub emulator on loopback, `trainops serve --github` as a subprocess with
its interval at 30 minutes (the scheduled reconcile's default cadence), so only webhooks can make
it fast. After the first pass has submitted every training and their start webhooks have been
handled, the emulator's clock jumps past every training's end: each training's completion webhook
goes out at once. A poller watches the GitHub emulator for each job's `success` status.

Prints the median and p95 seconds from completion to commit status, the passes it took, and
beside them the expected wait of the scheduled reconcile (half its interval; worst: all of it).
Targets: median <= 2 s on loopback, <= 5 passes. Usage: python benchmarks/serve_latency.py
[--jobs N]. Exits 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the emulators live in tests/emulators

from benchmarks._repo import ENV, build, commit_lock, replicate_job  # noqa: E402
from tests.emulators.github import GitHubEmulator  # noqa: E402
from tests.emulators.replicate import ReplicateEmulator, SimClock  # noqa: E402

R8 = "r8_" + "ServeLatencyBench0000" * 2
GH = "ghs_" + "ServeLatencyBenchGitHub" * 2
SCHEDULED_INTERVAL = 1800.0  # reconcile.yml's default cadence (DESIGN §11): every 30 minutes
TARGET_MEDIAN, TARGET_PASSES = 2.0, 5


def job(name: str) -> str:
    return replicate_job(
        name,
        trainer="ostris/flux-dev-lora-trainer",
        destination=f"acme/{name}",
        hardware="gpu-h100",
        input={"input_images": "https://example.com/x.zip", "steps": 1000},
    )


def metric(url: str, name: str, labels: str = "") -> float:
    text = httpx.get(f"{url}/metrics", timeout=10).text
    m = re.search(rf"^{name}{re.escape(labels)} (\S+)$", text, re.M)
    return float(m.group(1)) if m else 0.0


def wait(probe: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not probe():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.05)


def idle(url: str) -> bool:
    return (
        metric(url, "trainops_pass_in_progress") == 0 and metric(url, "trainops_pass_pending") == 0
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=50)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="trainops-serve-bench-"))
    emu = ReplicateEmulator(token=R8, queue_seconds=5, run_seconds=100, clock=SimClock(time.time()))
    gh = GitHubEmulator(token=GH)
    with emu, gh:
        names = [f"job-{i:03d}" for i in range(args.jobs)]
        files = {"trainops.yaml": "jobs: ['jobs/**/*.yaml']\n"}
        files.update({f"jobs/{n}.yaml": job(n) for n in names})
        repo = build(tmp, files)
        env = {
            **ENV,
            **gh.env(),
            "REPLICATE_API_TOKEN": R8,
            "REPLICATE_BASE_URL": emu.base_url,
            "GITHUB_REPOSITORY": "acme/models",
            "TRAINOPS_GITHUB_WRITE_INTERVAL": "0",
            "TRAINOPS_GITHUB_BACKOFF": "0",
        }
        cli = [sys.executable, "-m", "trainops"]
        source = commit_lock(repo, env)

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        url = f"http://127.0.0.1:{port}"
        env["TRAINOPS_PUBLIC_URL"] = url
        serve = subprocess.Popen(
            [*cli, "serve", "--listen", f"127.0.0.1:{port}", "--interval", "30m", "--github"],
            cwd=repo,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=open(tmp / "serve.log", "w"),  # noqa: SIM115
        )
        try:
            wait(lambda: _up(url), 300, "the first pass")
            assert len(emu.trainings) == args.jobs, len(emu.trainings)
            emu.advance(10)  # every training starts: start webhooks, one or two passes
            emu.wait_webhooks()
            wait(lambda: idle(url), 300, "the start webhooks' passes")
            before = metric(url, "trainops_passes_total", '{outcome="ok"}')

            seen: dict[str, float] = {}
            stop = threading.Event()

            def poll() -> None:
                while not stop.is_set() and len(seen) < args.jobs:
                    now = time.time()
                    for st in gh.statuses(source):
                        if st["state"] == "success":
                            seen.setdefault(st["context"], now)
                    time.sleep(0.02)

            poller = threading.Thread(target=poll, daemon=True)
            completed = time.time()
            emu.advance(200)  # ...and every one completes at this instant
            poller.start()
            wait(lambda: len(seen) >= args.jobs, 300, "every commit status")
            stop.set()
            wait(lambda: idle(url), 300, "the controller to settle")
            passes = metric(url, "trainops_passes_total", '{outcome="ok"}') - before
        finally:
            serve.send_signal(signal.SIGTERM)
            code = serve.wait(60)
    latencies = sorted(t - completed for t in seen.values())
    median = statistics.median(latencies)
    p95 = latencies[max(0, round(0.95 * len(latencies)) - 1)]
    print(f"trainings completing at once:     {args.jobs}")
    print(
        f"completion -> commit status:      median {median:.2f} s, p95 {p95:.2f} s "
        f"(target median <= {TARGET_MEDIAN:g} s)"
    )
    print(f"passes it took:                   {passes:g} (target <= {TARGET_PASSES})")
    print(
        f"scheduled reconcile (every {SCHEDULED_INTERVAL / 60:g} min): expected wait "
        f"{SCHEDULED_INTERVAL / 2:.0f} s, worst {SCHEDULED_INTERVAL:.0f} s "
        f"-> serve is {SCHEDULED_INTERVAL / 2 / max(median, 1e-3):.0f}x faster at the median"
    )
    print("serve without webhooks (--interval 60s, its default): expected wait 30 s, worst 60 s")
    print(f"serve exit code after SIGTERM:    {code}")
    ok = median <= TARGET_MEDIAN and passes <= TARGET_PASSES and code == 0
    return 0 if ok else 1


def _up(url: str) -> bool:
    try:
        return httpx.get(f"{url}/api/status", timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


if __name__ == "__main__":
    sys.exit(main())
