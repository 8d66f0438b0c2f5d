"""The one JSON document `plan`, `apply` and `status` print with `--output json`.

The pydantic models below are the shape; `schemas/output.v1.json` is generated from them by
`trainops schema`, and a test validates real command output against the committed file. Numbers
are JSON numbers (money always as a float, counts as integers), times are ISO 8601 in UTC with a
seconds figure beside them, and every action carries its outcome once apply has carried it out.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_serializer

from trainops.errors import Problem
from trainops.manifest import set_of
from trainops.plan import Action, Adopt, Cancel, Deliver, Plan, Promote, Submit, Sync
from trainops.state.model import Health

SCHEMA_FILE = "output.v1.json"


class _Shape(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OutcomeDoc(_Shape):
    ok: bool
    detail: str


class ActionDoc(_Shape):
    """One action: planned (`outcome` null) or carried out by apply (`outcome` set)."""

    op: Literal["adopt", "cancel", "submit", "deliver", "promote"]
    job: str
    revision: str | None = None
    attempt: int | None = None
    run_id: str | None = None
    target: str | None = None
    reason: str | None = None
    outcome: OutcomeDoc | None = None


class JobDoc(_Shape):
    """One job: DESIGN §6 sync and health, its current run, money, and why."""

    job: str
    sync: Sync
    health: Health
    revision: str
    action: str = Field(description="the job's actions as the table shows them; '-' for none")
    run_id: str | None
    created_at: str | None = Field(description="when the run was submitted, ISO 8601 UTC")
    started_at: str | None
    completed_at: str | None
    age_seconds: int | None = Field(description="seconds since created_at")
    cost_usd: float = Field(description="what the job's runs cost so far, all months")
    estimate_usd: float | None = Field(description="worst case of the current revision")
    reason: str
    outputs: dict[str, str]
    deliveries: dict[str, str]
    promotions: dict[str, str] = Field(
        default_factory=dict,
        description="spec.promote: alias -> done, held (the failed conditions), superseded, "
        "failed (§19), as the job's latest run records it",
    )
    metrics: dict[str, float] = Field(
        default_factory=dict, description="the final metrics of the job's latest run (§19)"
    )
    spec_changes: list[str] = Field(
        default_factory=list,
        description="plan: spec fields changed since the last submitted run "
        "(`input.steps: 500 -> 600`)",
    )
    set: str | None = Field(
        default=None, description="the sweep set this job is a member of (§21); null: none"
    )


class SetDoc(_Shape):
    """One sweep set (DESIGN §21): its members are jobs of the report's `jobs`."""

    set: str
    members: list[str] = Field(description="the member jobs, in the set's order")
    sync: dict[str, int] = Field(description="how many members have each sync")
    health: dict[str, int] = Field(description="how many members have each health")
    cost_usd: float = Field(description="what the members' runs cost so far, all months")
    estimate_usd: float | None = Field(
        description="the sum of the members' worst cases; null: one of them is unbounded"
    )
    max_cost_usd_total: float | None = Field(description="spec.budget.max_cost_usd_total")
    max_parallel: int | None = Field(description="spec.sweep.max_parallel")
    active: int = Field(description="runs of its members active when the plan was made")
    refused: str = Field(description="why the set's new submissions are refused; '' if not")
    metric: str | None = Field(default=None, description="spec.sweep.select.metric; null: none")
    best: str | None = Field(
        default=None, description="the member with the best metric so far (select)"
    )
    best_value: float | None = Field(default=None, description="that member's metric")
    winner: str | None = Field(
        default=None, description="the member select picks, once every member is settled"
    )
    settled: int = Field(default=0, description="members with no attempt still to come")


class MoneyDoc(_Shape):
    month: str
    spent_usd: float
    running_usd: float | None = Field(description="worst case still to come; null: unbounded")
    new_usd: float | None = Field(description="worst case of this plan's runs; null: unbounded")
    budget_usd: float | None


class ProblemDoc(_Shape):
    file: str
    line: int
    col: int
    message: str
    hint: str


class StrayDoc(_Shape):
    """A run nobody declared (`status --all`, DESIGN §20)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    provider: str
    kind: Literal["orphaned", "foreign"] = Field(
        description="orphaned: carries this repository's marks, no state file knows it; "
        "foreign: goes to one of its destinations without them"
    )
    job: str
    run_id: str
    health: str
    age_seconds: float
    cost_usd: float


class CensusDoc(_Shape):
    """What `status --all` found on the providers that can list their runs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    runs: list[StrayDoc]
    not_listable: list[str]
    list_calls: dict[str, int]
    incomplete: list[str]
    notes: list[str] = Field(
        default_factory=list,
        description="per listed provider, what it skipped or cannot tell (`<provider>: ...`)",
    )


class ReportDoc(_Shape):
    """What `trainops plan|apply|status --output json` prints."""

    model_config = ConfigDict(title="trainops output", extra="forbid", frozen=True)

    command: Literal["plan", "apply", "status"]
    changes: bool = Field(description="the plan has actions (after apply: what is still to do)")
    summary: str
    money: MoneyDoc | None
    actions: list[ActionDoc]
    sets: list[SetDoc] = Field(
        default_factory=list, description="the sweep sets (§21), each a group of `jobs`"
    )
    jobs: list[JobDoc]
    problems: list[ProblemDoc]
    notes: list[str]
    undeclared: CensusDoc | None = Field(
        default=None, description="`status --all` only: runs nobody declared"
    )

    @model_serializer(mode="wrap")
    def _without_census(self, handler: Any) -> Any:
        # Without --all a report is as it always was: no `undeclared` key (nor in saved plans).
        data = handler(self)
        if self.undeclared is None and isinstance(data, dict):
            data.pop("undeclared", None)
        return data


def census_doc(census: Any, now: float) -> CensusDoc:
    return CensusDoc(
        runs=[
            StrayDoc(
                provider=s.provider,
                kind=s.kind,
                job=s.job,
                run_id=s.run_id,
                health=s.health.value,
                age_seconds=round(s.age(now), 3),
                cost_usd=round(s.cost_usd, 4),
            )
            for s in census.strays
        ],
        not_listable=list(census.not_listable),
        list_calls=dict(census.calls),
        incomplete=list(census.incomplete),
        notes=list(census.notes),
    )


def output_schemas() -> dict[str, str]:
    """`schemas/output.v1.json`, as `trainops schema` writes it (the saved plan's
    `schemas/plan.v1.json` is `savedplan.model.saved_plan_schemas`, which builds on this module)."""
    schema = ReportDoc.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return {SCHEMA_FILE: json.dumps(schema, indent=2, sort_keys=True) + "\n"}


def report_parts(
    command: Literal["plan", "apply", "status"],
    plan: Plan,
    now: float,
    problems: Iterable[Problem] = (),
    outcomes: Iterable[Any] | None = None,
    notes: Iterable[str] = (),
    diffs: Mapping[str, Sequence[str]] | None = None,
    jobs_per_part: int = 200,
    undeclared: CensusDoc | None = None,
) -> Iterator[str]:
    """The JSON report's text in parts, made as they are read, each ending between two JSON
    values (never inside a string): the CLI prints each as it comes, so a 30,000-job report is
    never held whole, nor beside its encoded bytes; joined, they are the document. `outcomes`
    (apply's, of every pass) replace the plan's actions; without them the plan's actions are
    listed, not yet carried out."""
    from trainops import render

    if outcomes is None:
        actions = [_action(a, None) for a in plan.actions]
    else:
        actions = [_action(o.action, OutcomeDoc(ok=o.ok, detail=o.detail)) for o in outcomes]
    cells = render.action_cells(plan)
    doc = ReportDoc(
        command=command,
        changes=plan.changes,
        summary=render.summary_line(plan),
        money=_money(plan),
        actions=actions,
        sets=set_docs(plan),
        jobs=[],
        problems=[ProblemDoc(**render.problem_dict(p)) for p in problems],
        notes=list(notes),
        undeclared=undeclared,
    )
    # The jobs are checked and printed one at a time and spliced in: the same text as dumping
    # the whole document (a test holds them equal), without a model of every job of a 30,000-job
    # repository alive at once beside the text.
    text = doc.model_dump_json(indent=2)
    if not plan.jobs:
        yield text + "\n"
        return
    head, empty, tail = text.partition(_NO_JOBS)
    assert empty, "a report always has its jobs key"
    part = [head, '\n  "jobs": [\n']
    for i, (n, view) in enumerate(sorted(plan.jobs.items())):
        if i:
            part.append(",\n")
            if i % jobs_per_part == 0:
                yield "".join(part)
                part = []
        job = _job(n, view, cells.get(n, "-"), now, (diffs or {}).get(n, ()))
        # one level deeper: JSON text holds no raw newline but between its lines
        part += ("    ", job.model_dump_json(indent=2).replace("\n", "\n    "))
    yield "".join([*part, "\n  ]", tail, "\n"])


# The top-level jobs key of an indented report without jobs: a string in the document cannot
# hold a raw newline, so only the key itself matches.
_NO_JOBS = '\n  "jobs": []'


def _action(action: Action, outcome: OutcomeDoc | None) -> ActionDoc:
    fields: dict[str, Any] = {"op": action.op.value, "job": action.job, "outcome": outcome}
    if isinstance(action, (Submit, Adopt, Cancel)):
        fields.update(revision=action.revision, attempt=action.attempt)
    if isinstance(action, (Cancel, Deliver, Promote)):
        fields["run_id"] = action.run_id or None
    if isinstance(action, (Submit, Cancel)):
        fields["reason"] = action.reason
    if isinstance(action, (Deliver, Promote)):
        fields["target"] = action.target
    if isinstance(action, Promote):
        fields["reason"] = action.verdict
    return ActionDoc(**fields)


def set_docs(plan: Plan) -> list[SetDoc]:
    """Each sweep set of the plan, with its members' counts (`render.set_members`: the members
    in the set's order, then those of the set no longer in git)."""
    from trainops import render

    docs = []
    for name, members in sorted(render.set_members(plan).items()):
        view = plan.sets[name]
        views = [plan.jobs[m] for m in members]
        docs.append(
            SetDoc(
                set=name,
                members=list(members),
                sync=_tally(v.sync.value for v in views),
                health=_tally(v.health.value for v in views),
                cost_usd=round(float(sum(v.spent_usd for v in views)), 4),
                estimate_usd=None if view.worst_usd is None else round(view.worst_usd, 2),
                max_cost_usd_total=_usd(view.max_cost_usd_total),
                max_parallel=view.max_parallel,
                active=view.active,
                refused=view.refused,
                metric=view.metric or None,
                best=view.best or None,
                best_value=view.best_value,
                winner=view.winner or None,
                settled=view.settled,
            )
        )
    return docs


def _tally(values: Iterable[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for value in values:
        out[value] = out.get(value, 0) + 1
    return dict(sorted(out.items()))


def _job(name: str, view: Any, action: str, now: float, changes: Sequence[str]) -> JobDoc:
    run = view.run
    created = run.created_at if run is not None else None
    return JobDoc(
        job=name,
        sync=view.sync,
        health=view.health,
        revision=view.revision,
        action=action,
        run_id=(run.run_id or None) if run is not None else None,
        created_at=iso(created),
        started_at=iso(run.started_at if run is not None else None),
        completed_at=iso(run.completed_at if run is not None else None),
        age_seconds=None if created is None else max(0, int(now - created)),
        cost_usd=round(float(view.spent_usd), 4),
        estimate_usd=None
        if view.estimate is None or view.estimate.worst_usd is None
        else round(float(view.estimate.worst_usd), 2),
        reason=view.reason,
        outputs=dict(run.outputs) if run is not None else {},
        deliveries=dict(run.deliveries) if run is not None else {},
        promotions=dict(run.promotions) if run is not None else {},
        metrics=dict(run.metrics) if run is not None else {},
        spec_changes=list(changes),
        set=set_of(name) or None,
    )


def _money(plan: Plan) -> MoneyDoc | None:
    m = plan.money
    if m is None:
        return None
    return MoneyDoc(
        month=m.month,
        spent_usd=round(float(m.spent_usd), 6),
        running_usd=_usd(m.running_usd),
        new_usd=_usd(m.new_usd),
        budget_usd=_usd(m.budget_usd),
    )


def _usd(value: float | None) -> float | None:
    return None if value is None else round(float(value), 6)


def iso(timestamp: float | None) -> str | None:
    """Unix seconds as ISO 8601 UTC to the second (`2026-12-01T18:00:00Z`)."""
    if timestamp is None:
        return None
    # isoformat ends in "+00:00" for UTC; it takes half strftime's time, three times per job
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds")[:-6] + "Z"


__all__ = ["ReportDoc", "iso", "output_schemas", "report_parts"]
