"""trainops on SageMaker against the emulator (issue 31): API calls per observe pass.

One observe pass over `--runs` training jobs trainops recorded as active (default 1,000), counted
at the emulator: trainops' `observe` (ListTrainingJobs of InProgress and of Stopping, 100 a page,
filtered by the repository scope the names carry; then DescribeTrainingJob + ListTags only for
the asked jobs the lists did not show, the `--finished` that ended since the last pass) against
the naive pass, a DescribeTrainingJob per job. The account also holds 300 active jobs of another
repository, which the name filter leaves out. Target: ceil(N / 100) + 1 + 2 x finished calls.

Usage: python benchmarks/reconcile_sagemaker.py [--runs N] [--finished N]. Exits 1 when the
target is missed.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the emulator lives in tests/emulators

from tests.emulators.sagemaker import Job, SageMakerEmulator  # noqa: E402


def _request(name: str) -> dict[str, object]:
    return {
        "TrainingJobName": name,
        "AlgorithmSpecification": {"TrainingImage": "img", "TrainingInputMode": "File"},
        "RoleArn": "arn:aws:iam::123456789012:role/trainops",
        "OutputDataConfig": {"S3OutputPath": "s3://acme-models/sm"},
        "ResourceConfig": {
            "InstanceType": "ml.g5.xlarge",
            "InstanceCount": 1,
            "VolumeSizeInGB": 30,
        },
        "StoppingCondition": {"MaxRuntimeInSeconds": 10**7},
    }


def measure(runs: int, finished: int) -> tuple[int, int]:
    """(observe calls, naive calls)."""
    from trainops.manifest import SageMakerConfig
    from trainops.providers.sagemaker import SageMakerProvider, training_job_name

    with SageMakerEmulator() as emu:
        os.environ.update(emu.env())
        ids = []
        for i in range(runs + 300):
            repo = "github.com/acme/models" if i < runs else "github.com/other/repo"
            name = training_job_name(f"job{i}", "0123456789ab", 1, repo)
            created = emu.now - (10**6 if i < finished else 100)  # finished ones: long done
            emu.jobs[name] = Job(name, _request(name), created)
            if i < finished:
                emu.jobs[name].request["StoppingCondition"] = {"MaxRuntimeInSeconds": 400}
            if i < runs:
                ids.append(name)
        provider = SageMakerProvider(SageMakerConfig())
        emu.calls.clear()
        seen = provider.observe(ids)
        assert len(seen) == runs, len(seen)
        ours = sum(emu.calls.values())
        emu.calls.clear()
        client = provider.api.client("sagemaker")
        for name in ids:
            client.describe_training_job(TrainingJobName=name)
        naive = sum(emu.calls.values())
    return ours, naive


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--finished", type=int, default=5)
    args = parser.parse_args(argv)
    ours, naive = measure(args.runs, args.finished)
    target = math.ceil((args.runs - args.finished) / 100) + 1 + 2 * args.finished
    print(f"active jobs asked:        {args.runs} ({args.finished} finished since the last pass)")
    print(f"trainops observe:         {ours} calls (target <= {target})")
    print(f"describe per job (naive): {naive} calls ({naive / max(ours, 1):.0f}x)")
    return 0 if ours <= target else 1


if __name__ == "__main__":
    raise SystemExit(main())
