"""Many reconcile passes over many Replicate jobs while about a fifth of the calls fail, in every
way the emulator can fail them: every job must end Succeeded, and the emulator must hold exactly
one training per (job, revision, attempt) — never a duplicate, never a lost training.

The reconciler runs in-process on a real git repository (state branch, compare-and-swap) with the
official client on real HTTP. Two clocks, neither waited on: the emulator's simulated clock,
which is also the reconciler's (so intents and trainings share a time line and the adoption
grace of DESIGN §8 elapses in test time), and a fake monotonic clock on which the provider paces
and backs off. `TRAINOPS_FAULT_JOBS` (default 60) and `TRAINOPS_FAULT_PASSES` (default 60, the
most passes allowed to converge) scale it; `TRAINOPS_FAULT_GAPS` lists the simulated seconds
between passes to pick from; `TRAINOPS_SEED` picks which calls fail.
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
from trainops.commands import reconciler
from trainops.errors import ProviderError
from trainops.providers.replicate import ReplicateProvider
from trainops.reconcile import Pass
from trainops.state.model import Health, JobState
from trainops.workspace import Workspace

JOBS = int(os.environ.get("TRAINOPS_FAULT_JOBS", "60"))
MAX_PASSES = int(os.environ.get("TRAINOPS_FAULT_PASSES", "60"))
SEED = int(os.environ.get("TRAINOPS_SEED", "7"))
# Simulated seconds between passes, from `apply --wait` (seconds) to a scheduled apply (minutes):
# short gaps put a retry inside the adoption search's clock-skew window of the attempt before.
GAPS = [float(gap) for gap in os.environ.get("TRAINOPS_FAULT_GAPS", "10,30,120,300").split(",")]
TIMEOUT = 1.0  # the provider's HTTP timeout; the slowest injected answers take longer
ENV = "FAULT_REPLICATE_TOKEN"
TRAINER = f"ostris/flux-dev-lora-trainer:{FLUX_LORA_VERSION}"

# (kind, options): tried in this order by the emulator, the first that matches applies.
# About 20% of requests are faulted (printed at the end); creates get more, as they matter most.
FAULTS: list[tuple[str, dict[str, Any]]] = [
    ("rate_limit", {"retry_after": 0, "probability": 0.025}),
    # A Retry-After of 1 s only on POSTs: the client itself sleeps it for real on GETs.
    ("rate_limit", {"retry_after": 1, "method": "POST", "probability": 0.025}),
    ("error", {"status": 500, "probability": 0.025}),
    ("error", {"status": 503, "probability": 0.025}),
    ("drop", {"probability": 0.02}),
    ("lost_response", {"method": "POST", "path": CREATE_PATH, "probability": 0.04}),
    ("lost_response", {"probability": 0.015}),
    ("error", {"status": 500, "after": True, "probability": 0.015}),  # handled, then a 500
    # the client times out after the training exists
    ("delay", {"delay": TIMEOUT + 0.2, "method": "POST", "path": CREATE_PATH, "probability": 0.02}),
    ("delay", {"delay": 0.02, "probability": 0.025}),
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


def manifest(i: int, input: dict[str, Any] | None = None) -> str:
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
            "input": input
            or {
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


def workspace(
    tmp_path: Path, emu: ReplicateEmulator, jobs: int, input: dict[str, Any] | None = None
) -> tuple[Any, FakeMonotonic]:
    """A repository of `jobs` manifests and a reconciler for it whose Replicate provider paces
    and backs off on fake time; the reconciler's clock is the emulator's."""
    cfg = {
        "jobs": ["jobs/*.yaml"],
        "providers": {"replicate": {"token_env": ENV}},
    }
    files = {"trainops.yaml": yaml.safe_dump(cfg)}
    files.update({f"jobs/job-{i:03d}.yaml": manifest(i, input) for i in range(jobs)})
    root = make_repo(tmp_path / "repo", files)
    fake = FakeMonotonic()
    provider = ReplicateProvider(
        token_env=ENV,
        environ={ENV: emu.token, "REPLICATE_BASE_URL": emu.base_url},
        timeout=TIMEOUT,
        sleep=fake.sleep,
        clock=fake,
        rng=random.Random(SEED),
    )
    rec = reconciler(Workspace.open(root, ref="HEAD"), clock=emu.now)
    rec.providers.inject("replicate", provider)
    return rec, fake


def converge(rec: Any, emu: ReplicateEmulator) -> Run:
    gaps = random.Random(SEED)
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
        emu.advance(gaps.choice(GAPS))
    raise AssertionError(
        f"not converged after {MAX_PASSES} passes; last plan: "
        f"{[(a.job, type(a).__name__) for a in results[-1].plan.actions][:20]}"
    )


def test_every_job_converges_with_exactly_one_training_per_attempt(
    tmp_path: Path, emu: ReplicateEmulator
) -> None:
    rec, fake = workspace(tmp_path, emu, JOBS)
    faults = [(kind, emu.inject(kind, count=None, **options)) for kind, options in FAULTS]
    # Each once more whatever the dice say (tried after the others): every kind strikes.
    faults += [(kind, emu.inject(kind, **{**opts, "probability": 1.0})) for kind, opts in FAULTS]
    with rec.providers["replicate"]:
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
    assert all(hits.values()) and run.adopted > 0 and retried > 0, hits
    if JOBS >= 50:  # enough calls for the dice to average out
        assert 0.15 <= faulted / len(requests) <= 0.3
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


def test_a_retry_never_adopts_the_training_of_the_attempt_before(
    tmp_path: Path, emu: ReplicateEmulator
) -> None:
    """Attempt 1 is aborted; attempt 2, same input, is submitted seconds later and its create
    never reaches Replicate (503). Adoption searches a minute before the intent for clock skew:
    it must not bind attempt 1's training to attempt 2. Attempt 2 is lost after the grace period
    and attempt 3 trains."""
    rec, _fake = workspace(tmp_path, emu, 1)
    with rec.providers["replicate"]:
        emu.inject("abort", path=CREATE_PATH)
        rec.apply()
        emu.advance(10)  # aborted after 5 s in the queue
        emu.inject("error", status=503, path=CREATE_PATH)
        rec.apply()  # attempt 2: outcome unknown
        emu.advance(10)
        adopting = rec.apply()
        assert [o.detail for o in adopting.outcomes] == ["run not visible yet; will look again"]
        emu.advance(ReplicateProvider.adoption_grace)
        assert [o.detail for o in rec.apply().outcomes] == ["no run was created: intent lost"]
        rec.apply()  # attempt 3
        emu.advance(120)
        runs = rec.apply().state["job-000"].runs
    [aborted, succeeded] = emu.trainings
    assert [(r.attempt, r.run_id, r.lost, r.health) for r in runs] == [
        (1, aborted.id, False, Health.FAILED),
        (2, None, True, Health.PENDING),
        (3, succeeded.id, False, Health.SUCCEEDED),
    ]


def test_jobs_with_the_same_input_never_adopt_one_training_twice(
    tmp_path: Path, emu: ReplicateEmulator
) -> None:
    """Two jobs train the same input (to different destinations); both creates are answered 500
    after the trainings exist, so both are adopted in the next pass, each to its own training."""
    same = {"input_images": "https://example.com/shared.zip", "steps": 500}
    rec, _fake = workspace(tmp_path, emu, 2, input=same)
    with rec.providers["replicate"]:
        emu.inject("error", status=500, after=True, path=CREATE_PATH, count=2)
        assert len(rec.apply().failed) == 2
        emu.advance(10)
        adopted = rec.apply()
    assert sorted(o.detail.split()[0] for o in adopted.outcomes) == ["adopted", "adopted"]
    bound = [s.runs[0].run_id for s in adopted.state.values()]
    assert sorted(bound) == sorted(t.id for t in emu.trainings)  # two, one each
