"""Small builders for planner and apply tests: jobs, runs and state values."""

from __future__ import annotations

from typing import Any

from trainops.manifest import Job, TrainingJob, revision
from trainops.plan import Desired, Target
from trainops.state.model import Health, JobState, Run
from trainops.yamlsource import Document


def job(name: str, **spec: Any) -> Job:
    body: dict[str, Any] = {"provider": "local", "command": ["python", "train.py"]}
    if spec.get("provider") == "replicate":
        body = {"trainer": "acme/trainer:abcdef12", "destination": "acme/model"}
    body.update(spec)
    data = {
        "apiVersion": "trainops/v1",
        "kind": "TrainingJob",
        "metadata": {"name": name},
        "spec": body,
    }
    return Job(TrainingJob.model_validate(data), Document(f"jobs/{name}.yaml", 0, data))


def target(name: str, **spec: Any) -> Target:
    j = job(name, **spec)
    return Target(j, revision(j.spec))


def desired(*targets: Target, invalid: tuple[str, ...] = (), complete: bool = True) -> Desired:
    return Desired({t.name: t for t in targets}, frozenset(invalid), complete)


def run(
    t: Target | str,
    health: Health = Health.RUNNING,
    attempt: int = 1,
    *,
    run_id: str | None = "auto",
    created_at: float = 1000.0,
    **fields: Any,
) -> Run:
    rev = t.revision if isinstance(t, Target) else t
    rid = f"r-{rev[:4]}-{attempt}" if run_id == "auto" else run_id
    base: dict[str, Any] = {
        "revision": rev,
        "attempt": attempt,
        "provider": "local",
        "input_hash": "h",
        "created_at": created_at,
        "run_id": rid,
        "health": health,
    }
    base.update(fields)
    return Run(**base)


def state(**jobs: list[Run] | Run) -> dict[str, JobState]:
    out = {}
    for name, runs in jobs.items():
        runs = runs if isinstance(runs, list) else [runs]
        out[name.replace("_", "-")] = JobState(name.replace("_", "-"), tuple(runs))
    return out
