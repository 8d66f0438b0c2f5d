"""`trainops serve` under half-open connections (issue 26, finding 5): `--count` connections
(default 5,000) that each send part of a request (half a request line, half the headers of a
webhook POST, the headers and half the body) and then hang up (closed, half-closed or reset) or
hang; then the same with every connection hanging. Afterwards a signed webhook must be answered
and the process must hold few descriptors.

A real `trainops serve` subprocess on loopback in a git clone with a bare remote, the Replicate
emulator (signing secret) and the GitHub emulator. Prints counts: connections by kind, how many
the server refused or dropped, the server's descriptors before, at their highest during the
sweep (sampled between batches) and after, sockets left in CLOSE-WAIT, and the answer to the
webhook sent afterwards. Targets: every hanging connection dropped, the webhook answered 202,
fewer than 100 descriptors after, no CLOSE-WAIT. Exits 1 when one is missed.
Usage: python benchmarks/serve_connections.py [--count N] [--nofile LIMIT].
"""

from __future__ import annotations

import argparse
import json
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the emulators and the sweep live in tests/

from benchmarks._repo import ENV, build, commit_lock  # noqa: E402
from benchmarks.serve_latency import R8, _up, job  # noqa: E402
from tests.emulators.replicate import ReplicateEmulator, SimClock  # noqa: E402
from tests.support.halfopen import close_wait, descriptors, sweep  # noqa: E402

MAX_FDS = 100


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=5000)
    parser.add_argument(
        "--nofile", type=int, default=1024, help="serve's descriptor limit (systemd's default)"
    )
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="trainops-serve-conns-"))
    emu = ReplicateEmulator(token=R8, queue_seconds=5, run_seconds=100, clock=SimClock(time.time()))
    ok = True
    with emu:
        files = {"trainops.yaml": "jobs: ['jobs/**/*.yaml']\n", "jobs/one.yaml": job("one")}
        repo = build(tmp, files)
        env = {
            **ENV,
            "REPLICATE_API_TOKEN": R8,
            "REPLICATE_BASE_URL": emu.base_url,
        }
        cli = [sys.executable, "-m", "trainops"]
        commit_lock(repo, env)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        url = f"http://127.0.0.1:{port}"
        serve = subprocess.Popen(
            [*cli, "serve", "--listen", f"127.0.0.1:{port}", "--interval", "30m"],
            cwd=repo,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=open(tmp / "serve.log", "w"),  # noqa: SIM115
        )
        try:
            deadline = time.monotonic() + 300
            while not _up(url):
                if time.monotonic() > deadline or serve.poll() is not None:
                    raise SystemExit("serve did not start: see " + str(tmp / "serve.log"))
                time.sleep(0.1)
            import resource

            resource.prlimit(serve.pid, resource.RLIMIT_NOFILE, (args.nofile, args.nofile))
            print(f"server descriptor limit:              {args.nofile}")
            base = descriptors(serve.pid)
            print(f"server descriptors at rest:           {base}")
            for label, hang_every in (("mixed (1 in 5 hangs)", 5), ("every one hangs", 1)):
                peak = [base]

                def sample(peak: list[int] = peak) -> None:
                    peak[0] = max(peak[0], descriptors(serve.pid))

                done = sweep(port, args.count, hang_every=hang_every, on_batch=sample)
                dropped = done.dropped_by_server(within=60)
                stuck = close_wait(port)
                body = json.dumps({"id": "t-none", "status": "processing"}).encode()
                headers = emu.sign_webhook(body, f"msg_after_{hang_every}")
                try:
                    answer = httpx.post(
                        f"{url}/webhooks/replicate", content=body, headers=headers, timeout=1.0
                    ).status_code
                except httpx.HTTPError as exc:
                    answer = f"no answer within 1 s ({type(exc).__name__})"  # type: ignore[assignment]
                after = descriptors(serve.pid)
                hanging = len(done.hanging)
                done.close()
                print(f"-- {label}: {args.count} connections")
                print(f"   by kind:                           {dict(sorted(done.opened.items()))}")
                print(f"   refused or reset while sending:    {done.refused}")
                print(f"   hanging, dropped by the server:    {dropped} of {hanging}")
                print(
                    f"   server descriptors, peak / after:  {peak[0]} / {after} "
                    f"(target after < {MAX_FDS})"
                )
                print(f"   sockets left in CLOSE-WAIT:        {stuck}")
                print(f"   signed webhook afterwards:         {answer}")
                ok = ok and dropped == hanging and after < MAX_FDS and stuck == 0 and answer == 202
        finally:
            serve.send_signal(signal.SIGTERM)
            code = serve.wait(60)
    print(f"serve exit code after SIGTERM:        {code}")
    return 0 if ok and code == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
