"""Reconcile passes over Hugging Face jobs while a fifth of the Jobs API calls fail (429, 500,
503, dropped connections, creates and cancels whose answer is lost after they took effect): every
job ends Succeeded, its output delivered as a Hub revision, and the emulator holds exactly one HF
job per (job, revision, attempt); the second create of every trial loses its answer whatever the
dice say. In-process reconciler on a real git repository, the official client on real HTTP, the
emulator's simulated clock as the reconciler's. `TRAINOPS_TRIALS` (default 3) is the number of
seeded trials; each runs 12 jobs.
"""

from __future__ import annotations

import collections
import os
import random
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.emulators.huggingface import HubEmulator
from tests.support.gitrepo import make_repo
from trainops.commands import reconciler
from trainops.errors import ProviderError
from trainops.providers.huggingface import HuggingFaceProvider
from trainops.state.model import Health
from trainops.workspace import Workspace

TRIALS = int(os.environ.get("TRAINOPS_TRIALS", "3"))
JOBS = 12
MAX_PASSES = 80


def manifest(i: int) -> str:
    doc = {
        "apiVersion": "trainops/v1",
        "kind": "TrainingJob",
        "metadata": {"name": f"job-{i:02d}"},
        "spec": {
            "provider": "huggingface",
            "image": "python:3.12",
            "command": ["python", "train.py"],
            "hardware": "a10g-small",
            "output_repo": f"acme/out-{i:02d}",
            "retries": 3,
            "budget": {"max_duration": "2h"},
            "input": {"steps": 100 + i},
        },
    }
    return yaml.safe_dump(doc, sort_keys=False)


def converge(rec: Any, emu: HubEmulator, rng: random.Random) -> int:
    for n in range(1, MAX_PASSES + 1):
        try:
            result = rec.apply()
        except ProviderError:
            pass  # a pass whose reads gave up: the next one goes on
        else:
            views = result.plan.jobs.values()
            if not result.plan.actions and all(v.health is Health.SUCCEEDED for v in views):
                return n
        emu.advance(rng.choice([10.0, 30.0, 120.0, 300.0]))
    raise AssertionError(f"not converged after {MAX_PASSES} passes")


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(TRIALS))
def test_fault_passes_leave_exactly_one_hf_job_per_attempt(tmp_path: Path, seed: int) -> None:
    files = {"trainops.yaml": yaml.safe_dump({"providers": {"huggingface": {"namespace": "acme"}}})}
    files.update({f"jobs/job-{i:02d}.yaml": manifest(i) for i in range(JOBS)})
    root = make_repo(tmp_path / "repo", files)
    with HubEmulator(namespaces={"acme"}) as emu:
        emu.failing = {f"job-{i:02d}" for i in range(0, JOBS, 4)}  # their attempt 1 fails
        emu.chaos = (0.2, random.Random(seed))
        # A pass makes few calls now that finished jobs come from one list, so chance alone may
        # strike none in a trial: one create's answer is always lost (chaos strikes besides).
        emu.fail("job-create", 500, nth=2, after_apply=True)
        provider = HuggingFaceProvider(
            namespace="acme", environ=emu.env(), sleep=lambda s: None, rng=random.Random(seed)
        )
        rec = reconciler(Workspace.open(root, ref="HEAD"), clock=lambda: emu.now)
        rec.providers.inject("huggingface", provider)
        converge(rec, emu, random.Random(seed))
        emu.chaos = None
        state = rec.store.load()
        from trainops.providers import check_run
        from trainops.state.trust import parse_state

        jobs = parse_state(state.files, check_run, state.unreadable)
        created = collections.Counter(
            (
                j["labels"]["trainops-job"],
                j["labels"]["trainops-revision"],
                j["labels"]["trainops-attempt"],
            )
            for j in emu.created_jobs()
        )
        assert emu.errors == []
    assert created and max(created.values()) == 1, created
    faulted = [r for r in emu.requests if r.endpoint.startswith("job-") and r.status != 200]
    assert faulted, "no fault struck"
    for i in range(JOBS):
        name = f"job-{i:02d}"
        runs = jobs[name].runs
        assert runs[-1].health is Health.SUCCEEDED, runs
        assert runs[-1].outputs["weights"].startswith(f"acme/out-{i:02d}@")
        bound = sorted(r.run_id for r in runs if r.run_id)
        ours = sorted(j["id"] for j in emu.created_jobs(**{"trainops-job": name}))
        assert bound == ours  # every HF job of this job is one of its recorded runs
    assert all(len(jobs[f"job-{i:02d}"].runs) >= 2 for i in range(0, JOBS, 4))
