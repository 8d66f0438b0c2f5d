"""Remote input fingerprints (issue 16): what one pass costs for many jobs sharing a few URLs.

`--jobs` jobs (default 1,000) whose inputs name `--urls` distinct URLs (default 50) on a loopback
web server that answers each request after `--delay` seconds (default 0.02, a remote host's
latency). Measured side by side in the same run, counted at the server: trainops' batch
(`fingerprints.check_inputs`, what apply runs before the intents: one HEAD per distinct URL, a
bounded pool) against a HEAD per job and URL one after another (what a naive loop would do).
Targets: requests == distinct URLs; the batch takes less wall time than the sequential HEADs
of the same distinct URLs.

Usage: python benchmarks/input_fingerprints.py [--jobs N] [--urls N] [--delay S] [--counts-only].
Exits 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the web server lives in tests/emulators

from tests.emulators.web import WebServer  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--urls", type=int, default=50)
    parser.add_argument("--delay", type=float, default=0.02)
    parser.add_argument(
        "--counts-only", action="store_true", help="judge request counts, not time (the suite)"
    )
    args = parser.parse_args(argv)
    import httpx

    from trainops.fingerprints import Observer, check_inputs

    with WebServer() as web:
        for i in range(args.urls):
            web.put(f"/data-{i}.zip", f"dataset {i}".encode())
        web.delay = args.delay
        host = web.url.removeprefix("http://")
        inputs = {
            f"job-{j}": {"images": f"{web.url}/data-{j % args.urls}.zip", "steps": 100}
            for j in range(args.jobs)
        }
        started = time.perf_counter()
        checked = check_inputs(
            Observer({"TRAINOPS_INPUT_HOSTS": host}, mode="named"), inputs, {}, {}
        )
        batch_s = time.perf_counter() - started
        batch_requests = web.count("HEAD")
        recorded = sum(1 for c in checked.values() if "images" in c.fingerprints)

        web.requests.clear()
        started = time.perf_counter()
        with httpx.Client(trust_env=False) as client:
            for i in range(args.urls):
                client.head(f"{web.url}/data-{i}.zip")
        sequential_s = time.perf_counter() - started
        naive_requests = args.jobs  # a HEAD per job and URL

    print(f"jobs: {args.jobs}, distinct URLs: {args.urls}, server delay: {args.delay:g} s")
    print(f"batch (check_inputs):        {batch_requests} HEAD requests, {batch_s:.2f} s")
    print(f"naive (a HEAD per job):      {naive_requests} HEAD requests")
    print(f"sequential (distinct URLs):  {args.urls} HEAD requests, {sequential_s:.2f} s")
    print(f"requests ratio batch/naive:  {batch_requests / max(naive_requests, 1):.3f}")
    print(f"time ratio batch/sequential: {batch_s / max(sequential_s, 1e-9):.2f}")
    print(f"runs with a fingerprint:     {recorded} of {args.jobs}")
    ok = batch_requests == args.urls and recorded == args.jobs
    ok = ok and (args.counts_only or batch_s < sequential_s)
    if not ok:
        print("target missed", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
