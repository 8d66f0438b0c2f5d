"""trainops on Hugging Face Jobs against the emulator (issue 15): calls per observe pass.

One observe pass over `--runs` active HF jobs (default 1,000), measured side by side in the same
run, each counted at the emulator: trainops' `observe` (one label- and stage-filtered list,
paged through the `Link` header, plus an inspect per asked job that left the active stages)
against get-per-job polling (`inspect_job` for each, with the official client). The namespace
also holds 500 finished trainops jobs and 200 active jobs started outside trainops, so the
filters have something to leave out; `--finished` of the asked jobs (default 5) completed since
the last pass. Target: ceil(N / page size) + 2 calls (+ the finished ones' inspects).

Usage: python benchmarks/reconcile_huggingface.py [--runs N] [--finished N]. Exits 1 when the
target is missed.
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--finished", type=int, default=5)
    args = parser.parse_args(argv)
    from huggingface_hub import HfApi

    from trainops.providers.huggingface import HuggingFaceProvider, labels_of

    with HubEmulator(namespaces={"acme"}) as emu:
        emu.run_s = 10**6  # every job stays RUNNING unless finished below

        def add(n: int, trainops: bool, at: float, run_s: float = 10**6) -> list[str]:
            ids = []
            for i in range(n):
                job_id = f"{len(emu.jobs) + 1:024x}"
                labels = labels_of(f"job-{len(emu.jobs)}", "abc", 1, "h") if trainops else {}
                spec = {"command": ["python"], "flavor": "cpu-basic", "dockerImage": "python",
                        "labels": labels, "environment": {}}  # fmt: skip
                emu.jobs[job_id] = HFJob(spec, "acme", job_id, at + i, 0.0, run_s, "COMPLETED")
                ids.append(job_id)
            return ids

        add(500, True, emu.now - 10**5, run_s=60)  # finished long ago
        asked = add(args.runs, True, emu.now - 5000)
        add(200, False, emu.now - 4000)  # someone else's jobs
        for job_id in random.Random(1).sample(asked, args.finished):
            emu.jobs[job_id].run_s = 100.0  # completed since the last pass
        env = emu.env()
        provider = HuggingFaceProvider(namespace="acme", environ=env)
        before = len(emu.requests)
        seen = provider.observe(asked)
        paged = len(emu.requests) - before
        assert len(seen) == len(asked), (len(seen), len(asked))
        api = HfApi(endpoint=env["HF_ENDPOINT"], token=env["HF_TOKEN"])
        before = len(emu.requests)
        for job_id in asked:
            api.inspect_job(job_id=job_id, namespace="acme")
        per_job = len(emu.requests) - before
        assert emu.errors == []
    target = math.ceil(args.runs / emu.page_size) + 2 + args.finished
    print(f"active HF jobs asked: {args.runs} (page size {emu.page_size}, "
          f"{args.finished} finished since the last pass)")  # fmt: skip
    print(f"observe (paged list + inspect of the finished): {paged} calls")
    print(f"get-per-job (inspect_job each):                 {per_job} calls")
    print(f"ratio: {per_job / paged:.1f}x fewer calls; target <= {target}: "
          f"{'met' if paged <= target else 'MISSED'}")  # fmt: skip
    return 0 if paged <= target else 1


if __name__ == "__main__":
    raise SystemExit(main())
