"""The JSON report: printed job by job (issue 13), the same text as dumping the whole document."""

from __future__ import annotations

import json

import pytest

from trainops import output, render
from trainops.cost import Estimate
from trainops.errors import Problem
from trainops.plan import Cancel, Deliver, JobView, Money, Plan, Submit, Sync
from trainops.state.model import Health, Run

NOW = 1_780_000_000.0


def _run(**extra: object) -> Run:
    fields: dict[str, object] = {
        "revision": "0123456789ab",
        "attempt": 2,
        "provider": "local",
        "input_hash": "0" * 16,
        "created_at": NOW - 600,
        "run_id": "a-0123456789ab-2",
        "health": Health.SUCCEEDED,
        "started_at": NOW - 590,
        "completed_at": NOW - 10,
    }
    return Run(**{**fields, **extra})  # type: ignore[arg-type]


def _plan() -> Plan:
    views = {
        "a": JobView(
            "a",
            Sync.OUT_OF_SYNC,
            Health.SUCCEEDED,
            reason='quoted "reason"\nover two lines, \u00e9 and \u2603',
            revision="ba9876543210",
            run=_run(
                outputs={"weights": "/runs/a/w.bin", 'odd key "x"': "\\path"},
                deliveries={"s3:s3://bucket/a": "done"},
                metrics={"loss": 0.125, "acc": 1e-07},
            ),
            estimate=Estimate(0.001, 1.5, 3.0),
            spent_usd=0.12345678,
        ),
        "b": JobView("b", Sync.SYNCED, Health.SUCCEEDED, revision="0123456789ab", run=_run()),
        "c": JobView("c", Sync.BLOCKED, Health.PENDING, reason="waits for a"),
    }
    actions = (
        Cancel("a", "a-0123456789ab-2", "0123456789ab", 2, "replaced by revision ba9876543210"),
        Submit("a", "ba9876543210", 1),
        Deliver("b", "a-0123456789ab-2", "s3:s3://bucket/b"),
    )
    return Plan(actions, views, Money("2026-06", 1.5, None, 2.25, 100.0))


def _whole(plan: Plan, diffs: dict[str, list[str]], problems: list[Problem]) -> str:
    """The report as one model of the whole document, the way it was printed before."""
    cells = render.action_cells(plan)
    doc = output.ReportDoc(
        command="plan",
        changes=plan.changes,
        summary=render.summary_line(plan),
        money=output._money(plan),
        actions=[output._action(a, None) for a in plan.actions],
        jobs=[
            output._job(n, view, cells.get(n, "-"), NOW, diffs.get(n, ()))
            for n, view in sorted(plan.jobs.items())
        ],
        problems=[output.ProblemDoc(**render.problem_dict(p)) for p in problems],
        notes=["a note"],
    )
    return doc.model_dump_json(indent=2) + "\n"


@pytest.mark.parametrize("jobs", [3, 1, 0])
def test_a_report_printed_job_by_job_is_the_whole_documents_text(jobs: int) -> None:
    full = _plan()
    plan = Plan(full.actions, dict(list(full.jobs.items())[:jobs]), full.money)
    diffs = {"a": ["input.steps: 500 -> 600", 'name: "x" -> "y"']}
    problems = [Problem("jobs/a.yaml", 3, 5, 'unknown key "spec.x"', "did you mean 'input'?")]
    parts = output.report_parts("plan", plan, NOW, problems, notes=["a note"], diffs=diffs)
    text = "".join(parts)
    assert text == _whole(plan, diffs, problems)
    assert [j["job"] for j in json.loads(text)["jobs"]] == sorted(plan.jobs)


@pytest.mark.parametrize("per_part", [1, 2, 200])
def test_a_report_in_parts_breaks_only_between_jobs(per_part: int) -> None:
    """The CLI prints a report part by part (scrubbed part by part): joined they are the whole
    text, and each ends after a whole job, so no string is ever cut in two."""
    plan, diffs = _plan(), {"a": ["input.steps: 500 -> 600"]}
    parts = list(
        output.report_parts(
            "plan", plan, NOW, notes=["a note"], diffs=diffs, jobs_per_part=per_part
        )
    )
    assert "".join(parts) == _whole(plan, diffs, [])
    assert len(parts) == -(-len(plan.jobs) // per_part)
    for part in parts[:-1]:
        assert part.endswith("},\n")


@pytest.mark.parametrize(
    ("timestamp", "text"),
    [
        (0, "1970-01-01T00:00:00Z"),
        (1.9999994, "1970-01-01T00:00:01Z"),  # to the second, never rounded up
        (1795147919.592436, "2026-11-20T04:11:59Z"),
        (253_402_300_799.0, "9999-12-31T23:59:59Z"),  # the latest time a state file may hold
    ],
)
def test_times_are_iso_utc_to_the_second(timestamp: float, text: str) -> None:
    assert output.iso(timestamp) == text
    assert output.iso(None) is None
