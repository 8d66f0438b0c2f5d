"""What the state records are: per job, the runs trainops started and what became of them.

`state/<xx>/<job>.json` (`trainops.state.layout`) holds a `JobState`: plain frozen values with a
JSON writer (`to_text`), so the planner can read them without I/O and apply can write them back as
text. Reading one back is `trainops.state.schema` (strict: the state branch is input, DESIGN §9);
the cross-file checks of the whole branch are `trainops.state.trust`.

A run's `Health` (DESIGN §6) and `month_of` live here, below providers and `cost`, which read
them: a record carries its health and its month's totals.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

FORMAT = 1  # the state file's format, written as its "format" (checked by `schema`)


class Health(StrEnum):
    """DESIGN §6 health of a job's run."""

    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    CANCELED = "Canceled"
    MISSING = "Missing"
    # A run this reconciler cannot see (a local run of another machine or clone): never a
    # reason to resubmit it, declare it lost or cancel it from here. Never recorded in state.
    UNKNOWN = "Unknown"
    SUSPENDED = "Suspended"  # the job is suspended and has no run of its current revision

    @property
    def terminal(self) -> bool:
        return self in (Health.SUCCEEDED, Health.FAILED, Health.CANCELED)

    @property
    def active(self) -> bool:
        return self in ACTIVE_HEALTH


ACTIVE_HEALTH = frozenset({Health.PENDING, Health.RUNNING})  # `Health.active`


def month_of(timestamp: float) -> str:
    """`YYYY-MM` of a time (UTC). Months begin at a UTC midnight, so the day decides: a plan
    asks this of every run of every job, and a run's day has usually been seen before."""
    return _month_of_day(int(timestamp // 86400))


@functools.lru_cache(maxsize=4096)
def _month_of_day(day: int) -> str:
    return datetime.fromtimestamp(day * 86400, UTC).strftime("%Y-%m")


@dataclass(frozen=True, slots=True)
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
    # Where the run lives, for providers whose runs belong to one place (Located: a local run's
    # machine and clone). Empty: wherever its provider is.
    location: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)  # the job's labels at submission
    snapshot: str = ""
    metrics: Mapping[str, float] = field(default_factory=dict)  # final metrics (DESIGN §19)
    # sha256 of each file a delivery copied (its name in the delivery manifest), for trace
    # and checkout
    digests: Mapping[str, str] = field(default_factory=dict)
    # Where each delivery put the run's outputs (target key -> the Hub commit, the S3 prefix):
    # what a promotion points an alias at, and what `trace repo@revision` matches
    delivered: Mapping[str, str] = field(default_factory=dict)
    # spec.promote (DESIGN §19), alias key -> "done" (the alias points here), "held: why",
    # "superseded by run X" or "failed: why" (promotion.gate)
    promotions: Mapping[str, str] = field(default_factory=dict)
    # What stood behind each remote URL of its input just before the submit (DESIGN §18), by
    # input key: `fingerprints.record` text, compared by `plan` to show input drift.
    fingerprints: Mapping[str, str] = field(default_factory=dict)
    # Instances the run bills at once (SageMaker's instance_count), for the cost so far of a
    # running run; written only when more than one.
    instances: int = 1
    # The provider's word for what a running run is doing now (Observation.detail: SageMaker's
    # Downloading, Training), shown as its reason. Live, never recorded: not written to the state
    # file and not compared, so a change of it is no change of the run (no state commit).
    detail: str = field(default="", compare=False)
    # The metrics a running run reported so far (Observation.progress), for a sweep's early stop
    # (DESIGN §21). Live like `detail`: not written, not compared, and only ever set from an
    # observation of this pass (`plan.refresh`), never from the state branch.
    progress: Mapping[str, float] = field(default_factory=dict, compare=False)

    @property
    def is_intent(self) -> bool:
        return self.run_id is None and not self.lost

    @property
    def where(self) -> str:
        """The human part of `location`: `host:/path/to/clone` (the clone id after `#` is not)."""
        return self.location.rsplit("#", 1)[0] or "another clone"

    @property
    def active(self) -> bool:
        """Might be using (or about to use) the provider's resources."""
        if self.run_id is None:
            return not self.lost  # an intent
        return self.health in ACTIVE_HEALTH

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["health"] = self.health.value
        data["outputs"] = dict(self.outputs)
        data["deliveries"] = dict(self.deliveries)
        data["labels"] = dict(self.labels)
        data["metrics"] = dict(self.metrics)
        data["digests"] = dict(self.digests)
        # Written only when set: the records of jobs without promotion, or without remote
        # inputs, stay as they were.
        for name in ("delivered", "promotions", "fingerprints"):
            data[name] = dict(getattr(self, name))
            if not data[name]:
                del data[name]
        if self.instances == 1:
            del data["instances"]
        del data["detail"]
        del data["progress"]
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Run:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        known["health"] = Health(known.get("health", Health.PENDING.value))
        return cls(**known)


@dataclass(frozen=True, slots=True)
class MonthTotal:
    """What retired runs (dropped from the tip by retention, DESIGN §9) of one job cost in one
    month, per provider, hardware and label set: `cost` prices `billed_seconds` with today's
    prices as it prices a kept run, and adds `usd` (the cost of runs billed in dollars)."""

    month: str
    runs: int
    provider: str = ""
    hardware: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    billed_seconds: float = 0.0
    usd: float = 0.0

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["labels"] = dict(self.labels)
        return data


@dataclass(frozen=True, slots=True)
class JobState:
    job: str
    runs: tuple[Run, ...] = ()
    # The state commit whose copy of this file still holds the runs retention last dropped
    # from it (DESIGN §9); that copy's own `archive` leads further back. `history` follows it.
    archive: str = ""
    totals: tuple[MonthTotal, ...] = ()
    # Why state/<job>.json could not be read. Such a job is left alone (no submit, cancel or
    # delivery) and its file is never rewritten by trainops.
    problem: str = ""
    # The file the problem is in (a legacy flat `state/<job>.json` or the fanned-out path).
    path: str = field(default="", compare=False)
    # Removed from git, its last run ended and was reported: no longer shown by plan and
    # status. The file stays (cost and history read it); the job is shown again if re-added.
    pruned: bool = False

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
        data: dict[str, Any] = {
            "format": FORMAT,
            "job": self.job,
            "runs": [r.to_json() for r in self.runs],
        }
        if self.pruned:
            data["pruned"] = True
        if self.archive:
            data["archive"] = self.archive
        if self.totals:
            data["totals"] = [t.to_json() for t in self.totals]
        return json.dumps(data, indent=1, sort_keys=True) + "\n"
