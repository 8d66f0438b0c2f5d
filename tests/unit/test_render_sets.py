"""A sweep set in what the plan and status show (DESIGN §21): one line of the set with its counts
and totals, its members under it; the pull request comment readable at 50 members (totals
first, members in a collapsed table) and under GitHub's comment limit at 500; the template's
field diff once per set; `-o json` against its committed schema; the status page; `show`."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema

from tests.support.factories import run, target
from tests.support.sweeps import sweep
from trainops import output, render
from trainops.errors import Problem
from trainops.github.client import COMMENT_MAX_CHARS
from trainops.github.plan_report import plan_comment
from trainops.github.specdiff import diffs_markdown
from trainops.plan import Desired, Limits, Plan, plan
from trainops.savedplan.model import Binding
from trainops.savedplan.show import to_plan
from trainops.savedplan.write import make
from trainops.serve.status_page import StatusView
from trainops.serve.status_page import render as page
from trainops.state.model import Health, JobState

NOW = 10_000.0
PAID = {"hardware": "gpu-h100", "budget": {"max_duration": "1000s"}}  # $1.525 a member
SCHEMA = json.loads((Path(__file__).parents[2] / "schemas" / "output.v1.json").read_text())
PLAN_COLUMNS = ["job", "action", "sync", "health", "revision", "worst_case", "reason"]


def _plan(members: int, *, total: float | None = 1000.0, succeeded: int = 1) -> Plan:
    """`base` and a set `lora` of `members` members at $1.525 each, max_parallel 2: the first
    `succeeded` members have succeeded, two are submitted, the rest wait."""
    lora = sweep("lora", [round(i * 1e-4, 6) for i in range(1, members + 1)], max_parallel=2,
                 total=total, **PAID)  # fmt: skip
    base = target("base")
    d = Desired({**lora.targets, "base": base}, sets=lora.sets)
    names = lora.sets["lora"].members
    st = {
        n: JobState(n, (run(d.targets[n], Health.SUCCEEDED, metrics={"eval_loss": 0.5}),))
        for n in names[:succeeded]
    }
    return plan(d, st, Limits(), NOW)


def test_the_table_shows_the_set_line_then_its_members_in_the_sets_order() -> None:
    p = _plan(4, total=20)
    names = p.sets["lora"].members
    lines = render.table(render.iter_grouped_rows(p, NOW), PLAN_COLUMNS).splitlines()
    assert lines[1].startswith("base ")
    cells = re.split(r"\s{2,}", lines[2])
    assert cells == [
        "lora",
        "set of 4: 2 submit",
        "2 OutOfSync, 1 Blocked, 1 Synced",
        "3 Missing, 1 Succeeded",
        "$6.10 of $20.00",
        "max_parallel 2",
    ]
    assert [line.split()[0] for line in lines[3:]] == list(names)
    assert all(line.startswith("  lora.") for line in lines[3:])
    assert "max_parallel 2 of the set lora: waiting for a member" in lines[-1]


def test_status_columns_of_a_set_count_health_and_cost() -> None:
    p = _plan(3)
    [row] = [r for r in render.iter_grouped_rows(p, NOW) if r["job"] == "lora"]
    assert (row["health"], row["cost"], row["run_id"]) == ("2 Missing, 1 Succeeded", "$0.00", "")


def test_a_refused_set_names_its_refusal_on_its_line_and_its_members() -> None:
    p = _plan(4, total=5)
    refusal = "worst case of the set lora $6.10 (4 members) is over max_cost_usd_total $5.00"
    rows = {r["job"].strip(): r for r in render.iter_grouped_rows(p, NOW)}
    assert rows["lora"]["reason"] == refusal
    md = render.plan_markdown(p, NOW, [])
    assert f"- **refused**: {refusal}: 3 member(s), " in md


def _sections(md: str) -> tuple[str, str, str]:
    """The comment around the set's collapsed table: before it, inside it, after it."""
    before, _, rest = md.partition("<details>")
    inside, _, after = rest.partition("</details>")
    return before, inside, after


def test_the_comment_at_50_members_puts_totals_first_and_members_in_a_collapsed_table() -> None:
    p = _plan(50)
    names = p.sets["lora"].members
    md = render.plan_markdown(p, NOW, [Problem("jobs/x.yaml", 1, 1, "bad")])
    before, inside, after = _sections(md)
    # the jobs table has one line for the set, not fifty
    assert before.count("| `lora.") == 0
    assert "| `lora` (set) | set of 50: 2 submit | 2 OutOfSync, 47 Blocked, 1 Synced |" in before
    totals = "**worst case $76.25 of max_cost_usd_total $1,000.00 · spent $0.00 · max_parallel 2"
    assert totals + " · 2 to submit**" in before
    assert "- health: 49 Missing, 1 Succeeded" in before
    assert inside.startswith("<summary>50 members of lora</summary>\n\n| member |")
    assert [n for n in names if f"| `{n}` |" in inside] == list(names)
    assert "more members" not in inside
    assert "#### 1 problem(s)" in after
    assert len(md) < 10_000


def test_the_comment_at_500_members_stays_under_githubs_limit() -> None:
    p = _plan(500)
    problems = [Problem("jobs/x.yaml", 1, 1, "bad")]
    md = render.plan_markdown(p, NOW, problems)
    diffs = {m: ["input.steps: 500 -> 600"] for m in p.sets["lora"].members}
    body = plan_comment(md + diffs_markdown(diffs), "b" * 40)
    assert len(body) <= COMMENT_MAX_CHARS
    assert "truncated" not in body  # cut where it was planned, not by the size limit
    before, inside, after = _sections(body)
    assert "| `lora` (set) | set of 500: 2 submit |" in before
    shown = inside.count("| `lora.")
    assert 300 < shown < 500
    assert f"| … | {500 - shown} more members: run `trainops plan` to see all of them |" in inside
    assert "#### 1 problem(s)" in after
    assert "(set, 500 members: " in after and after.count("input.steps: 500 -> 600") == 1


def test_the_template_diff_is_shown_once_per_set() -> None:
    names = _plan(4).sets["lora"].members
    diffs = {m: ["input.steps: 500 -> 600"] for m in names}
    diffs[names[3]] = ["env: + HF_TOKEN (credential: passes HF_TOKEN to the job)"]
    diffs["base"] = ["input.steps: 500 -> 600"]
    md = diffs_markdown(diffs)
    assert md.count("input.steps: 500 -> 600") == 2  # base, and the set once
    assert f"- `lora` (set, 3 members: `{names[0]}`, `{names[1]}`, `{names[2]}`)" in md
    assert f"- `{names[3]}`\n  - `env: + HF_TOKEN` ⚠️ **credential:" in md
    text = render.spec_diffs_text(diffs)
    assert f"  lora (set, 3 members: {names[0]}, {names[1]}, {names[2]})" in text
    assert text.count("~ input.steps: 500 -> 600") == 2


def test_json_report_carries_the_set_and_validates_against_the_committed_schema() -> None:
    p = _plan(4, total=20)
    doc = json.loads("".join(output.report_parts("status", p, NOW)))
    jsonschema.validate(doc, SCHEMA)
    [s] = doc["sets"]
    assert s == {
        "set": "lora",
        "members": list(p.sets["lora"].members),
        "sync": {"Blocked": 1, "OutOfSync": 2, "Synced": 1},
        "health": {"Missing": 3, "Succeeded": 1},
        "cost_usd": 0.0,
        "estimate_usd": 6.1,
        "max_cost_usd_total": 20.0,
        "max_parallel": 2,
        "active": 0,
        "refused": "",
        "metric": None,
        "best": None,
        "best_value": None,
        "winner": None,
        "settled": 0,
    }
    sets = {j["job"]: j["set"] for j in doc["jobs"]}
    assert sets["base"] is None and {sets[m] for m in s["members"]} == {"lora"}


def test_the_status_page_shows_a_set_line_and_its_members_under_it() -> None:
    p = _plan(3)
    doc = json.loads("".join(output.report_parts("status", p, NOW)))
    html = page(StatusView(doc))
    rows = re.findall(r'<tr class="([^"]+)" data-(?:job|set)="([^"]+)"', html)
    assert rows == [
        ("job", "base"),
        ("set", "lora"),
        *(("job member", m) for m in p.sets["lora"].members),
    ]
    assert "<td>lora (set of 3)</td><td>2 OutOfSync, 1 Synced</td>" in html
    assert "<td>worst case $4.58 of $1000.00; max_parallel 2</td>" in html


def test_show_of_a_saved_plan_groups_its_sets_as_plan_did() -> None:
    p = _plan(4, total=20)
    report = "".join(output.report_parts("plan", p, NOW))
    bound = Binding("github.com/acme/models", "c" * 40, "sha256:" + "1" * 64, {})
    shown, made = to_plan(make(bound, "s" * 40, p, report, "1970-01-01T02:46:40Z"))
    assert render.table(render.iter_grouped_rows(shown, made), PLAN_COLUMNS) == render.table(
        render.iter_grouped_rows(p, NOW), PLAN_COLUMNS
    )


def test_without_sets_the_report_and_table_are_as_before() -> None:
    p = plan(Desired({"base": target("base")}), {}, Limits(), NOW)
    assert p.sets == {}
    rows = list(render.iter_grouped_rows(p, NOW))
    assert rows == list(render.iter_plan_rows(p, NOW))
    assert json.loads("".join(output.report_parts("plan", p, NOW)))["sets"] == []


def _selected(losses: list[float | None]) -> Plan:
    """A set of len(losses) members selecting the lowest eval_loss: a member with a loss has
    succeeded reporting it, one with None is still running."""
    lora = sweep("lora", [i * 1e-4 for i in range(1, len(losses) + 1)],
                 select=("eval_loss", "minimize"))  # fmt: skip
    names = lora.sets["lora"].members
    st = {}
    for name, loss in zip(names, losses, strict=True):
        t = lora.targets[name]
        r = run(t) if loss is None else run(t, Health.SUCCEEDED, metrics={"eval_loss": loss})
        st[name] = JobState(name, (r,))
    return plan(lora, st, Limits(), NOW)


def test_a_set_line_says_where_its_selection_stands() -> None:
    going = _selected([0.5, 0.3, None, 0.4])
    names = going.sets["lora"].members
    [row] = [r for r in render.iter_grouped_rows(going, NOW) if r["job"] == "lora"]
    assert row["reason"] == f"best so far {names[1]} (eval_loss 0.3), 3 of 4 settled"
    done = _selected([0.5, 0.3, 0.2, 0.4])
    [row] = [r for r in render.iter_grouped_rows(done, NOW) if r["job"] == "lora"]
    assert row["reason"] == f"winner {names[2]} (eval_loss 0.2)"
    doc = json.loads("".join(output.report_parts("status", done, NOW)))
    jsonschema.validate(doc, SCHEMA)
    [s] = doc["sets"]
    assert (s["metric"], s["best"], s["best_value"], s["winner"], s["settled"]) == (
        "eval_loss",
        names[2],
        0.2,
        names[2],
        4,
    )


def test_the_status_page_charts_the_members_metric_with_the_winner_apart() -> None:
    done = _selected([0.5, 0.3, 0.2, 0.4])
    names = done.sets["lora"].members
    html = page(StatusView(json.loads("".join(output.report_parts("status", done, NOW)))))
    chart = html[html.index('data-chart="set-lora"') :].split("</figure>")[0]
    assert f"lora: eval_loss of each member (winner: {names[2]})" in chart
    bars = re.findall(r'data-member="([^"]+)"[^>]*fill="(#[0-9a-f]+)"', chart)
    assert bars == [(n, "#2a2" if n == names[2] else "#26c") for n in names]
