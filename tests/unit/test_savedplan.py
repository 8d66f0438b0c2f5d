"""The saved plan file (DESIGN §20, `trainops.savedplan`): what a file a user hands over is refused
as (located at its line and column), what goes stale and how it is said, and `show`'s plan.
The CLI, the pass and the emulator are in tests/e2e/test_saved_plan.py."""

from __future__ import annotations

import json
from typing import Any

import pytest

from trainops import cost, render
from trainops.errors import InvalidInput
from trainops.output import report_parts
from trainops.plan import Cancel, JobView, Money, Plan, Submit, Sync
from trainops.savedplan.digest import sign
from trainops.savedplan.model import Binding, PlannedAction
from trainops.savedplan.read import load, load_to_apply
from trainops.savedplan.show import to_plan
from trainops.savedplan.stale import price_text, stale_lines
from trainops.savedplan.write import dump, make
from trainops.state.model import Health, Run

NOW = 1_796_000_000.0
COMMIT = "c" * 40
BOUND = Binding("github.com/acme/models", COMMIT, "sha256:" + "1" * 64, {"gpu-h100": 0.0015})
RUN = Run("r0", 1, "replicate", "h", NOW - 60, run_id="t-1", health=Health.RUNNING)
PLAN = Plan(
    (Cancel("b", "t-1", "r0", 1, "replaced"), Submit("a", "r1", 1)),
    {
        "a": JobView(
            "a", Sync.OUT_OF_SYNC, Health.MISSING, "", "r1", None, cost.Estimate(0.0015, 5.4, 10.8)
        ),
        "b": JobView("b", Sync.OUT_OF_SYNC, Health.RUNNING, "", "r2", RUN),
    },
    Money("2026-12", 1.0, 2.0, 5.4, None),
)


def saved(**binding: Any) -> tuple[str, Any]:
    bound = Binding(**{**BOUND.__dict__, **binding})
    report = "".join(report_parts("plan", PLAN, NOW, []))
    doc = make(bound, "s" * 40, PLAN, report, "2026-12-01T00:00:00Z")
    return dump(doc), doc


def problem(text: str | bytes) -> str:
    """The one problem `load` (show) finds, which `load_to_apply` (apply) says the same."""
    raw = text.encode() if isinstance(text, str) else text
    said = []
    for loader in (load, load_to_apply):
        with pytest.raises(InvalidInput) as caught:
            loader(raw, "plan.json")
        [p] = caught.value.problems
        said.append(str(p))
    assert said[0] == said[1]
    return said[0]


def test_a_written_plan_loads_back_as_itself() -> None:
    text, doc = saved()
    assert load(text.encode(), "plan.json") == doc
    applied = load_to_apply(text.encode(), "plan.json")
    assert applied.model_dump(exclude={"report"}) == doc.model_dump(exclude={"report"})
    assert applied.report == doc.report.model_dump(mode="json")
    assert [(a.op, a.job, a.worst_case_usd) for a in doc.actions] == [
        ("cancel", "b", None),
        ("submit", "a", 5.4),  # the attempt's worst case, not the job's
    ]


def line_of(text: str, needle: str) -> int:
    return text[: text.index(needle)].count("\n") + 1


def resigned(data: dict[str, Any]) -> str:
    return sign(json.dumps(data, indent=2))


def test_a_hostile_file_is_refused_at_its_line_and_column() -> None:
    text, _doc = saved()
    cut = text[: len(text) // 2]
    assert problem(cut).startswith(f"plan.json:{cut.count(chr(10)) + 1}:")
    assert "not a plan file" in problem(cut)

    edited = text.replace('"attempt": 1', '"attempt": 3', 1)
    digest_line = line_of(edited, '"digest"')
    assert problem(edited).startswith(f"plan.json:{digest_line}:")
    assert "changed after trainops wrote it" in problem(edited)

    data = json.loads(text)
    data["actions"][1]["attempt"] = "one"
    wrong = resigned(data)
    at = line_of(wrong, '"attempt": "one"')
    assert problem(wrong).startswith(f"plan.json:{at}:")
    assert "actions.1.attempt: " in problem(wrong)

    assert problem('{"format": "terraform"}').startswith("plan.json:1:12: not a trainops plan")
    assert problem("[1, 2]").startswith("plan.json:1:1: not a trainops plan")
    assert problem(b'{"format": "\xff"}').startswith("plan.json:1:")
    assert "nested too deeply" in problem("[" * 100_000)


def planned(job: str, attempt: int = 1, worst: float | None = 5.4) -> PlannedAction:
    return PlannedAction(op="submit", job=job, revision="r1", attempt=attempt, worst_case_usd=worst)


@pytest.mark.parametrize(
    ("changed", "now_actions", "expected"),
    [
        pytest.param({}, None, [], id="nothing"),
        pytest.param(
            {"commit": "d" * 40},
            None,
            ["commit moved: the plan is of cccccccccccc, apply is of dddddddddddd"],
            id="commit",
        ),
        pytest.param(
            {"lock_digest": ""}, None, ["trainops.lock changed: 111111111111 -> nothing"], id="lock"
        ),
        pytest.param(
            {"prices": {"gpu-h100": 0.002, "gpu-t4": 0.000225}},
            None,
            [
                "price of gpu-h100 changed: $0.0015/s -> $0.0020/s",
                "price of gpu-t4 added: $0.000225/s",
            ],
            id="price",
        ),
        pytest.param(
            {"repository": "github.com/evil/fork"},
            None,
            [
                "the plan is of another repository: github.com/acme/models, this is "
                "github.com/evil/fork"
            ],
            id="repository",
        ),
        pytest.param(
            {},
            [planned("a", attempt=2)],
            [
                "since the plan: job b run t-1 is now Failed (the plan saw Running)",
                "not in the current plan: cancel b run t-1",
                "not in the current plan: submit a revision r1 attempt 1 (it has submit a "
                "revision r1 attempt 2)",
                "not in the saved plan: submit a revision r1 attempt 2",
            ],
            id="attempt",
        ),
        pytest.param(
            {},
            [
                PlannedAction(op="cancel", job="b", revision="r0", attempt=1, run_id="t-1"),
                planned("a", worst=7.2),
            ],
            ["worst case of submit a revision r1 attempt 1 changed: $5.40 -> $7.20"],
            id="worst case",
        ),
    ],
)
def test_what_went_stale_is_said_line_by_line(
    changed: dict[str, Any], now_actions: list[PlannedAction] | None, expected: list[str]
) -> None:
    _text, doc = saved()
    bound = Binding(**{**BOUND.__dict__, **changed})
    actions = doc.actions if now_actions is None else now_actions
    retried = any(a.attempt == 2 for a in actions)  # b's run failed since the plan
    jobs = {"a": (None, "Missing"), "b": ("t-1", "Failed" if retried else "Running")}
    assert stale_lines(doc, bound, "s" * 40, actions, jobs) == expected


def test_state_that_moved_is_said_per_job() -> None:
    _text, doc = saved()
    jobs = {"a": ("t-9", "Pending"), "b": ("t-1", "Running")}
    assert stale_lines(doc, BOUND, "n" * 40, doc.actions, jobs) == [
        "state moved: trainops/state is at nnnnnnnnnnnn, the plan read ssssssssssss",
        "state moved: job a now has run t-9 (Pending); the plan saw no run",
    ]


def test_prices_keep_the_digits_that_matter() -> None:
    assert [price_text(p) for p in (0.0015, 0.002, 0.001525, 1.0)] == [
        "$0.0015/s",
        "$0.0020/s",
        "$0.001525/s",
        "$1.0000/s",
    ]


def test_show_renders_the_plan_as_plan_rendered_it() -> None:
    _text, doc = saved()
    shown, made = to_plan(doc)
    columns = ["job", "action", "sync", "health", "revision", "worst_case", "reason"]
    assert render.table(render.iter_plan_rows(shown, made), columns) == render.table(
        render.iter_plan_rows(PLAN, NOW), columns
    )
    assert (render.summary_line(shown), render.money_line(shown)) == (
        render.summary_line(PLAN),
        render.money_line(PLAN),
    )


def test_no_credential_reaches_the_file() -> None:
    token = "r8_" + "Q7x" * 10  # token-shaped: masked whatever the environment holds
    leaky = Plan(
        (Cancel("b", "t-1", "r0", 1, f"replaced (error: bad token {token})"),),
        {"b": JobView("b", Sync.OUT_OF_SYNC, Health.RUNNING, f"401 for {token}", "r2", RUN)},
    )
    report = "".join(report_parts("plan", leaky, NOW, []))
    text = dump(make(BOUND, "s" * 40, leaky, report, "2026-12-01T00:00:00Z"))
    assert (token in text, text.count("***")) == (
        False,
        3,
    )  # saved action, report action, job reason
    assert load(text.encode(), "plan.json").actions[0].reason == "replaced (error: bad token ***)"
