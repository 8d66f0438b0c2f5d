"""trainops on a real Ray cluster (issue 14): client calls per observe pass, and submit throughput.

Every call is counted on the wire, at a loopback proxy in front of the head's job API (the official
client is pointed at it; nothing in ray is patched). `--runs` jobs (default 1,000) are submitted
through the Ray provider, each reserving a custom resource no node has, so they stay PENDING:
active as far as trainops is concerned, and no process on this 2-core machine. Then, for 1, 100
and `--runs` active jobs, one observe pass of the provider (target: 1 call, `list_jobs`) is
measured beside the get-per-job baseline (`get_job_info` for each asked job) in the same run.
Submit throughput is jobs a second through `RayProvider.submit` (its calls per submit too: the
version check the client makes when a job reserves resources, the package checks, the POST).

The jobs are stopped at the end; Ray keeps a stopped job PENDING until its supervisor can be
placed or its start timeout (RAY_JOB_START_TIMEOUT_SECONDS, 15 min) fails it: use a scratch
cluster (the default) rather than a shared one.

Usage: python benchmarks/reconcile_ray.py [--runs N] [--address http://127.0.0.1:8265]. Without
`--address` it starts its own head on 127.0.0.1 (tests/support/rayhead.py) and stops it after.
Exits 1 when an observe pass costs more than one call.
"""

from __future__ import annotations

import argparse
import resource
import secrets
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the proxy and the head live in tests/support

from benchmarks._repo import build  # noqa: E402
from tests.support.httpproxy import CountingProxy  # noqa: E402

NEVER = "trainops_benchmark_never"  # a resource no node has: the jobs stay PENDING


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--address", default="")
    args = parser.parse_args(argv)
    head = None
    address = args.address
    if not address:
        from tests.support.rayhead import RayHead

        head = RayHead.start()
        address = head.address
    try:
        return _measure(address, args.runs)
    finally:
        if head is not None:
            head.stop()


def _measure(address: str, runs: int) -> int:
    from ray.job_submission import JobSubmissionClient

    from trainops.manifest import Job, RayConfig, TrainingJob
    from trainops.providers.base import Submission, input_hash
    from trainops.providers.ray import RayProvider
    from trainops.yamlsource import Document

    revision = secrets.token_hex(6)
    with (
        tempfile.TemporaryDirectory(prefix="trainops-bench-ray-") as tmp,
        CountingProxy(address) as proxy,
    ):
        root = build(Path(tmp), {}, remote=False)  # an empty clone: the workdir is untracked
        (root / "train.py").write_text("print('never runs')\n")
        hardware = {"pending": {"resources": {NEVER: 1}}}
        provider = RayProvider(
            root,
            RayConfig.model_validate({"output_uri": str(root / "out"), "hardware": hardware}),
            environ={"RAY_ADDRESS": proxy.url},
        )

        def submission(i: int) -> Submission:
            data = {
                "apiVersion": "trainops/v1",
                "kind": "TrainingJob",
                "metadata": {"name": f"bench-{i}"},
                "spec": {
                    "provider": "ray",
                    "command": ["python", "train.py"],
                    "workdir": ".",
                    "hardware": "pending",
                    "input": {"i": i},
                },
            }
            job = Job(TrainingJob.model_validate(data), Document("jobs/b.yaml", 0, data))
            value = {"i": i}
            return Submission(job, revision, 1, value, input_hash(value), "s.yaml")

        provider.cluster.connect()  # the client's two version checks, once per process
        setup_calls = proxy.total()
        proxy.reset()
        started = time.perf_counter()
        ids = [provider.submit(submission(i)).run_id for i in range(runs)]
        submit_s = time.perf_counter() - started
        submit_calls = proxy.total()
        print(f"Ray provider against a real head ({address}), {runs} jobs kept PENDING")
        print(f"client setup (version checks, once):        {setup_calls} calls")
        print(
            f"submit: {runs} jobs in {submit_s:.1f} s = {runs / submit_s:.1f} jobs/s, "
            f"{submit_calls / runs:.1f} calls per submit"
        )
        direct = JobSubmissionClient(proxy.url)
        worst = 0
        for count in sorted({1, min(100, runs), runs}):
            asked = ids[:count]
            proxy.reset()
            t0 = time.perf_counter()
            seen = provider.observe(asked)
            observe_s = time.perf_counter() - t0
            observe_calls = proxy.total()
            assert len(seen) == count and all(o.health.active for o in seen.values())
            proxy.reset()
            t0 = time.perf_counter()
            for run_id in asked:
                direct.get_job_info(run_id)
            get_s = time.perf_counter() - t0
            get_calls = proxy.total()
            worst = max(worst, observe_calls)
            print(
                f"{count:>5} active: observe {observe_calls} call(s) in {observe_s:.2f} s | "
                f"get-per-job {get_calls} calls in {get_s:.2f} s | "
                f"{get_calls / observe_calls:.0f}x fewer calls"
            )
        rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"peak RSS of this process: {rss_mib:.0f} MiB")
        for run_id in ids:  # the jobs never ran; Ray ends a stopped PENDING job once its
            provider.cancel(run_id)  # supervisor can be placed, or after its start timeout
    ok = worst == 1
    print("target (1 call per observe pass):", "met" if ok else "MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
