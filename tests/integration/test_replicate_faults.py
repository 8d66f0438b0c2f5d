"""Many reconcile passes over many Replicate jobs while about a fifth of the calls fail, in every
way the emulator can fail them: every job must end Succeeded, and the emulator must hold exactly
one training per (job, revision, attempt) — never a duplicate, never a lost training.

The reconciler runs in-process on a real git repository (state branch, compare-and-swap) with the
official client on real HTTP. Two clocks, neither waited on: the emulator's simulated clock,
which is also the reconciler's (so intents and trainings share a time line and the adoption
grace of DESIGN §8 elapses in test time), and a fake monotonic clock on which the provider paces
and backs off. `TRAINOPS_FAULT_JOBS` (default 200) and `TRAINOPS_FAULT_PASSES` (default 60, the
most passes allowed to converge) scale it; `TRAINOPS_SEED` picks which calls fail.
"""

from __future__ import annotations

import collections
import json
import os
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.emulators.replicate import (
    CREATE_PATH,
    FLUX_LORA_VERSION,
    Fault,
    OpenAPIResponses,
    ReplicateEmulator,
)
from tests.support.gitrepo import make_repo
from trainops.apply import Pass
from trainops.commands import reconciler
from trainops.errors import ProviderError
from trainops.providers.base import Health
from trainops.providers.replicate import ReplicateProvider
from trainops.state.model import JobState
from trainops.workspace import Workspace

JOBS = int(os.environ.get("TRAINOPS_FAULT_JOBS", "200"))
MAX_PASSES = int(os.environ.get("TRAINOPS_FAULT_PASSES", "60"))
SEED = int(os.environ.get("TRAINOPS_SEED", "7"))
PASS_SECONDS = 120.0  # simulated time between passes: every training started ends by the next
TIMEOUT = 1.0  # the provider's HTTP timeout; the slowest injected answers take longer
ENV = "FAULT_REPLICATE_TOKEN"
TRAINER = f"ostris/flux-dev-lora-trainer:{FLUX_LORA_VERSION}"

# (kind, options): tried in this order by the emulator, the first that matches applies.
# About 20% of requests are faulted (printed at the end); creates get more, as they matter most.
FAULTS: list[tuple[str, dict[str, Any]]] = [
    ("rate_limit", {"retry_after": 0, "probability": 0.03}),
    # A Retry-After of 1 s only on POSTs: the client itself sleeps it for real on GETs.
    ("rate_limit", {"retry_after": 1, "method": "POST", "probability": 0.03}),
    ("error", {"status": 500, "probability": 0.03}),
    ("error", {"status": 503, "probability": 0.03}),
    ("drop", {"probability": 0.025}),
    ("lost_response", {"method": "POST", "path": CREATE_PATH, "probability": 0.05}),
    ("lost_response", {"probability": 0.02}),
    ("error", {"status": 500, "after": True, "probability": 0.015}),  # handled, then a 500
    (
        "delay",
        {"delay": TIMEOUT + 0.2, "method": "POST", "path": CREATE_PATH, "probability": 0.02},
    ),  # the client times out after the training exists
    ("delay", {"delay": 0.02, "probability": 0.03}),
    ("abort", {"probability": 0.04}),
    ("fail", {"probability": 0.04}),
]


class FakeMonotonic:
    """Pacing and backoff time: moves only when the provider sleeps."""

    def __init__(self) -> None:
        self.now, self.slept = 1000.0, 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.slept += seconds


def manifest(i: int) -> str:
    name = f"job-{i:03d}"
    doc = {
        "apiVersion": "trainops/v1",
        "kind": "TrainingJob",
        "metadata": {"name": name},
        "spec": {
            "provider": "replicate",
            "trainer": TRAINER,
            "destination": f"acme/faults-{i % 4}",
            "hardware": "gpu-l40s",
            "retries": 6,
            # unique per job: the emulator's count per input is a count per job
            "input": {
                "input_images": f"https://example.com/{name}.zip",
                "trigger_word": f"T{i:03d}",
                "steps": 100 + i,
            },
        },
    }
    return yaml.safe_dump(doc, sort_keys=False)


@dataclass
class Run:
    passes: int
    errors: int  # passes that raised ProviderError
    adopted: int
    results: list[Pass]


@pytest.fixture
def emu() -> Iterator[ReplicateEmulator]:
    # Rate limiting here is injected as faults; pacing under the limits is the benchmark's and
    # the provider tests' concern.
    with ReplicateEmulator(
        queue_seconds=5, run_seconds=60, seed=SEED, rate_limits={"create": 10**6, "default": 10**6}
    ) as emulator:
        yield emulator
        assert emulator.server_errors == []


def converge(rec: Any, emu: ReplicateEmulator) -> Run:
    results, errors, adopted = [], 0, 0
    for n in range(1, MAX_PASSES + 1):
        try:
            result = rec.apply()
        except ProviderError:
            errors += 1  # e.g. observe gave up after its retries: the next pass goes on
        else:
            results.append(result)
            adopted += sum(1 for o in result.outcomes if o.detail.startswith("adopted run"))
            views = result.plan.jobs.values()
            if not result.plan.actions and all(v.health is Health.SUCCEEDED for v in views):
                return Run(n, errors, adopted, results)
        emu.advance(PASS_SECONDS)
    raise AssertionError(
        f"not converged after {MAX_PASSES} passes; last plan: "
        f"{[(a.job, type(a).__name__) for a in results[-1].plan.actions][:20]}"
    )


def test_every_job_converges_with_exactly_one_training_per_attempt(
    tmp_path: Path, emu: ReplicateEmulator
) -> None:
    cfg = {
        "jobs": ["jobs/*.yaml"],
        "providers": {"replicate": {"base_url": emu.base_url, "token_env": ENV}},
    }
    files = {"trainops.yaml": yaml.safe_dump(cfg)}
    files.update({f"jobs/job-{i:03d}.yaml": manifest(i) for i in range(JOBS)})
    root = make_repo(tmp_path / "repo", files)
    faults = [(kind, emu.inject(kind, count=None, **options)) for kind, options in FAULTS]

    fake = FakeMonotonic()
    provider = ReplicateProvider(
        base_url=emu.base_url,
        token_env=ENV,
        environ={ENV: emu.token},
        timeout=TIMEOUT,
        sleep=fake.sleep,
        clock=fake,
        rng=random.Random(3),
    )
    rec = reconciler(Workspace.open(root, ref="HEAD"), clock=emu.now)
    rec.providers.inject("replicate", provider)
    with provider:
        run = converge(rec, emu)
    emu.clear_faults()

    state: dict[str, JobState] = run.results[-1].state
    trainings = emu.trainings
    by_input: dict[str, list[Any]] = collections.defaultdict(list)
    for t in trainings:
        by_input[t.input["trigger_word"]].append(t)
    retried = 0
    for i in range(JOBS):
        runs = state[f"job-{i:03d}"].runs
        assert runs[-1].health is Health.SUCCEEDED, runs[-1]
        started = [r for r in runs if not r.lost]
        # exactly one training per attempt that reached the emulator, and no other
        assert sorted(r.run_id or "" for r in started) == sorted(
            t.id for t in by_input[f"T{i:03d}"]
        ), (runs, by_input[f"T{i:03d}"])
        assert [r.attempt for r in runs] == list(range(1, len(runs) + 1))
        for earlier in runs[:-1]:  # a later attempt only after a lost intent or a failure
            status = emu.training_json(earlier.run_id)["status"] if earlier.run_id else "lost"
            assert (earlier.lost and not earlier.run_id) or status in ("failed", "aborted"), (
                earlier,
                status,
            )
        retried += len(runs) > 1
    assert len(trainings) == sum(len(by_input[f"T{i:03d}"]) for i in range(JOBS))

    hits = collections.Counter[str]()
    for kind, fault in faults:
        hits[_label(kind, fault)] += fault.hits
    requests = emu.requests
    faulted = sum(1 for r in requests if r.fault) + hits["abort"] + hits["fail"]
    print(
        json.dumps(
            {
                "jobs": JOBS,
                "passes": run.passes,
                "passes_raising": run.errors,
                "requests": len(requests),
                "faulted": faulted,
                "faulted_share": round(faulted / len(requests), 3),
                "faults": dict(sorted(hits.items())),
                "trainings": len(trainings),
                "jobs_with_attempt_gt_1": retried,
                "adopted": run.adopted,
                "lost_intents": sum(r.lost for s in state.values() for r in s.runs),
                "fake_seconds_slept": round(fake.slept, 1),
            },
            indent=1,
        )
    )
    if JOBS >= 100:  # enough calls that every kind of fault struck, and adoption was needed
        assert 0.15 <= faulted / len(requests) <= 0.3
        assert all(hits.values()) and run.adopted > 0 and retried > 0, hits
    assert OpenAPIResponses().errors(requests) == []


def _label(kind: str, fault: Fault) -> str:
    if kind == "rate_limit":
        return f"rate_limit_retry_after_{fault.retry_after}"
    if kind == "error":
        return f"error_{fault.status}" + ("_after_handling" if fault.after else "")
    if kind == "delay":
        return "delay_past_timeout" if fault.delay > TIMEOUT else "delay_short"
    if kind == "lost_response":
        return "lost_response_create" if fault.path else "lost_response_any"
    return kind
