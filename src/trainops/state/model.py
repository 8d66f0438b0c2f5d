"""What the state files mean: per job, the runs trainops started and what became of them.

`state/<job>.json` holds a `JobState`; these are plain frozen values with a JSON round trip, so the
planner can read them without I/O and apply can write them back as text.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from trainops.providers.base import Health

STATE_DIR = "state"
SNAPSHOT_DIR = "snapshots"
FORMAT = 1


@dataclass(frozen=True)
class Run:
    """One submission of one revision, from its intent (DESIGN §8) to its end."""

    revision: str
    attempt: int
    provider: str
    input_hash: str
    created_at: float  # when the intent was recorded
    source_commit: str = ""
    run_id: str | None = None  # None: an intent whose provider call is not yet recorded
    health: Health = Health.PENDING
    lost: bool = False  # an intent that adoption found no run for: it never started
    trainer: str = ""
    destination: str = ""
    hardware: str = ""
    started_at: float | None = None
    completed_at: float | None = None
    billed_seconds: float | None = None
    cost_usd: float | None = None
    outputs: Mapping[str, str] = field(default_factory=dict)
    error: str = ""
    reason: str = ""  # why trainops canceled it (replaced, suspended, max_duration, ...)
    retryable: bool = True
    deliveries: Mapping[str, str] = field(default_factory=dict)  # target key -> "done" | error
    reported: str = ""  # the health last reported (DESIGN §11)
    owner: str = ""  # host:pid of the reconciler that recorded the intent
    labels: Mapping[str, str] = field(default_factory=dict)  # the job's labels at submission
    snapshot: str = ""

    @property
    def is_intent(self) -> bool:
        return self.run_id is None and not self.lost

    @property
    def active(self) -> bool:
        """Might be using (or about to use) the provider's resources."""
        return self.is_intent or (self.run_id is not None and self.health.active)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["health"] = self.health.value
        data["outputs"] = dict(self.outputs)
        data["deliveries"] = dict(self.deliveries)
        data["labels"] = dict(self.labels)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Run:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        known["health"] = Health(known.get("health", Health.PENDING.value))
        return cls(**known)


@dataclass(frozen=True)
class JobState:
    job: str
    runs: tuple[Run, ...] = ()

    def of_revision(self, revision: str) -> list[Run]:
        return [r for r in self.runs if r.revision == revision]

    def with_run(self, run: Run) -> JobState:
        """Replace the run with the same (revision, attempt), or append it."""
        runs = list(self.runs)
        for i, existing in enumerate(runs):
            if (existing.revision, existing.attempt) == (run.revision, run.attempt):
                runs[i] = run
                return replace(self, runs=tuple(runs))
        return replace(self, runs=(*runs, run))

    def to_text(self) -> str:
        data = {"format": FORMAT, "job": self.job, "runs": [r.to_json() for r in self.runs]}
        return json.dumps(data, indent=1, sort_keys=True) + "\n"

    @classmethod
    def from_text(cls, text: str) -> JobState:
        data = json.loads(text)
        return cls(job=data["job"], runs=tuple(Run.from_json(r) for r in data.get("runs", [])))


def state_path(job: str) -> str:
    return f"{STATE_DIR}/{job}.json"


def snapshot_path(job: str, revision: str) -> str:
    return f"{SNAPSHOT_DIR}/{job}/{revision}.yaml"


def parse_state(files: Mapping[str, str]) -> dict[str, JobState]:
    jobs: dict[str, JobState] = {}
    for path, text in files.items():
        if path.startswith(f"{STATE_DIR}/") and path.endswith(".json"):
            state = JobState.from_text(text)
            jobs[state.job] = state
    return jobs
