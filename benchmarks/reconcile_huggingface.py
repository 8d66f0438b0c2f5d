"""trainops on Hugging Face Jobs against the emulator (issue 15): calls per observe pass.

One observe pass over `--runs` HF jobs trainops recorded as active (default 1,000), measured side
by side in the same run, each counted at the emulator: trainops' `observe` (the label- and
stage-filtered list of active jobs, paged through the `Link` header; then the finished jobs,
newest first, only as far as the jobs that finished since the last pass; an inspect for what
neither list showed) against inspect-per-job polling (`inspect_job` for each, with the official
client). The namespace also holds 500 trainops jobs finished long ago and 200 active jobs started
outside trainops, so the filters have something to leave out. Two cases: `--finished` of the
asked jobs (default 5) finished since the last pass, and 500 of them at once (`--burst`).
observe gets each id with its recorded creation time, as the reconciler passes it. Target for
both: ceil(N / page size) + 2 calls.

Usage: python benchmarks/reconcile_huggingface.py [--runs N] [--finished N] [--burst N]. Exits 1
when a target is missed.
"""

from __future__ import annotations

import argparse
import math
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the emulator lives in tests/emulators

from tests.emulators.huggingface import HFJob, HubEmulator  # noqa: E402


def measure(runs: int, finished: int) -> tuple[int, int, int]:
    """(observe calls, inspect-per-job calls, page size) for one namespace."""
    from huggingface_hub import HfApi

    from trainops.providers.huggingface import HuggingFaceProvider, labels_of

    with HubEmulator(namespaces={"acme"}) as emu:
        emu.run_s = 10**6  # every job stays RUNNING unless finished below

        def add(n: int, trainops: bool, at: float, run_s: float = 10**6) -> dict[str, float]:
            ids = {}
            for i in range(n):
                job_id = f"{len(emu.jobs) + 1:024x}"
                labels = labels_of(f"job-{len(emu.jobs)}", "abc", 1, "h") if trainops else {}
                spec = {"command": ["python"], "flavor": "cpu-basic", "dockerImage": "python",
                        "labels": labels, "environment": {}}  # fmt: skip
                emu.jobs[job_id] = HFJob(spec, "acme", job_id, at + i, 0.0, run_s, "COMPLETED")
                ids[job_id] = at + i
            return ids

        add(500, True, emu.now - 10**5, run_s=60)  # finished long ago
        asked = add(runs, True, emu.now - 5000)
        add(200, False, emu.now - 4000)  # someone else's jobs
        for job_id in random.Random(1).sample(sorted(asked), finished):
            emu.jobs[job_id].run_s = 100.0  # finished since the last pass
        env = emu.env()
        provider = HuggingFaceProvider(namespace="acme", environ=env)
        before = len(emu.requests)
        seen = provider.observe(asked)
        paged = len(emu.requests) - before
        assert len(seen) == len(asked), (len(seen), len(asked))
        done = sum(1 for obs in seen.values() if obs.health.terminal)
        assert done == finished, (done, finished)
        api = HfApi(endpoint=env["HF_ENDPOINT"], token=env["HF_TOKEN"])
        before = len(emu.requests)
        for job_id in asked:
            api.inspect_job(job_id=job_id, namespace="acme")
        per_job = len(emu.requests) - before
        assert emu.errors == []
        return paged, per_job, emu.page_size


def throttled_reads(reads: int, rate: float = 0.2) -> dict[str, int]:
    """`reads` logical reads (a job's logs) while a seeded `rate` of job requests answers 429 as
    the Hub does (`RateLimit: "api";r=0;t=0`, `Retry-After`): HTTP requests per read, give-ups.
    The provider's policy is the one retry layer; its sleeps are not waited."""
    from trainops.errors import ProviderError
    from trainops.providers.huggingface import HuggingFaceProvider

    gave_up = 0
    with HubEmulator(namespaces={"acme"}) as emu:
        emu.rate_limit_reset = 0
        emu.throttle = (rate, random.Random(5))
        provider = HuggingFaceProvider(
            namespace="acme", environ=emu.env(), sleep=lambda _s: None, rng=random.Random(0)
        )
        for i in range(reads):
            try:
                provider.logs(f"{i + 1:024x}")
            except ProviderError:
                gave_up += 1
        requests = len(emu.calls("job-logs"))
        throttled = sum(1 for r in emu.calls("job-logs") if r.status == 429)
    return {"reads": reads, "requests": requests, "throttled": throttled, "gave_up": gave_up}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--finished", type=int, default=5)
    parser.add_argument("--burst", type=int, default=500)
    args = parser.parse_args(argv)
    missed = 0
    for finished in (args.finished, args.burst):
        paged, per_job, page = measure(args.runs, finished)
        target = math.ceil(args.runs / page) + 2
        met = paged <= target
        missed += not met
        print(f"{args.runs:,} active HF jobs, {finished:,} finished since the last pass "
              f"(page size {page})")  # fmt: skip
        print(f"  observe (active list, finished list, inspects): {paged} calls")
        print(f"  inspect-per-job (inspect_job each):             {per_job} calls")
        print(f"  ratio: {per_job / paged:.1f}x fewer calls; target <= {target}: "
              f"{'met' if met else 'MISSED'}")  # fmt: skip
    reads = throttled_reads(args.runs)
    per_read = reads["requests"] / reads["reads"]
    met = per_read <= 2.0 and reads["gave_up"] == 0
    missed += not met
    print(f"{reads['reads']} reads while 20% of job requests answer 429 (the Hub's way)")
    print(f"  {reads['requests']} HTTP requests = {per_read:.2f} per read (target <= 2), "
          f"429 answers {reads['throttled']}, give-ups {reads['gave_up']} (target 0): "
          f"{'met' if met else 'MISSED'}")  # fmt: skip
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
