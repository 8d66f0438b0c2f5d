"""The saved plan file's shape (DESIGN §20): the document `plan --out FILE` writes
(`SavedPlanDoc`; `schemas/plan.v1.json` is generated from it by `saved_plan_schemas`), the
lighter one `apply FILE` reads (`AppliedPlan`), each planned action (`PlannedAction`), the
workspace's side of the check (`Binding`) and the error of a plan that went stale
(`StalePlan`)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from trainops.errors import TrainopsError
from trainops.output import ReportDoc

FORMAT = "trainops-plan/v1"
SCHEMA_FILE = "plan.v1.json"
# A plan of 30,000 jobs is about 20 MB; anything much larger is not a plan trainops wrote.
MAX_BYTES = 256 * 1024 * 1024


class _Shape(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PlannedAction(_Shape):
    """One action as planned: what apply compares (op, job, revision, attempt, run, target)
    and its worst case, which a price change moves."""

    op: Literal["adopt", "cancel", "submit", "deliver", "promote"]
    job: str
    revision: str | None = None
    attempt: int | None = Field(default=None, ge=1)
    run_id: str | None = None
    target: str | None = None
    candidate: str | None = Field(default=None, description="promote: the run the gate judged")
    reason: str | None = None
    worst_case_usd: float | None = Field(
        default=None, description="submit: the attempt's worst case; null: unbounded or none"
    )
    timeout_seconds: int | None = Field(
        default=None, description="submit: what the provider stops the run at, when it does"
    )


class _Bound(_Shape):
    """The fields of a saved plan but its report."""

    format: Literal["trainops-plan/v1"]
    digest: str = Field(
        pattern=r"^sha256:[0-9a-f]{64}$",
        description="sha256 of the file as written, with this value as 64 zeros: a file "
        "edited by hand is refused as such",
    )
    repository: str = Field(description="the repository id the plan was made in (DESIGN §9)")
    commit: str = Field(pattern=r"^[0-9a-f]{40}$|^[0-9a-f]{64}$")
    state_version: str = Field(description="the state branch's commit the plan read; '' none")
    lock_digest: str = Field(description="sha256 of trainops.lock at the commit; '' none")
    prices_digest: str = Field(pattern=r"^sha256:[0-9a-f]{64}$")
    prices_usd_per_second: dict[str, float]
    created_at: str = Field(description="when the plan was made, ISO 8601 UTC")
    actions: list[PlannedAction]


class SavedPlanDoc(_Bound):
    """What `trainops plan --out FILE` writes."""

    model_config = ConfigDict(title="trainops saved plan", extra="forbid", frozen=True)

    report: ReportDoc = Field(description="the plan as `plan --output json` printed it")


class AppliedPlan(_Bound):
    """A saved plan as `apply FILE` reads it: its report (what `show` prints; apply only
    quotes its jobs' runs when the state moved) is not modelled job by job, which would cost
    more than the rest of the check over 10,000 jobs."""

    report: dict[str, Any]


@dataclass(frozen=True)
class Binding:
    """What a plan is made from, besides the state: the workspace's side of the check."""

    repository: str
    commit: str
    lock_digest: str
    prices: Mapping[str, float]


class StalePlan(TrainopsError):
    """A saved plan that does not hold any more (DESIGN §20): nothing was done. `lines` say
    what went stale, one each."""

    def __init__(self, file: str, lines: Sequence[str]) -> None:
        super().__init__(
            f"saved plan {file} is stale: nothing was submitted or canceled",
            "run `trainops plan --out FILE` again, review it, and apply the new file",
        )
        self.lines = list(lines)


def saved_plan_schemas() -> dict[str, str]:
    """`schemas/plan.v1.json`, as `trainops schema` writes it."""
    schema = SavedPlanDoc.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return {SCHEMA_FILE: json.dumps(schema, indent=2, sort_keys=True) + "\n"}
