"""A sweep set's commit comment (DESIGN §11, §21): once every member is settled, one comment on
the set's commit holds one table of its members (the axes' values, state, the select metric,
cost), best first and the winner marked, instead of a comment per member. Its marker holds a
digest of the members' runs, so an outcome repeated after a crash is posted once; the table is
cut to GitHub's comment limit, the rest counted in a last row (500 members fit in the room).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from trainops import escape, metrics
from trainops.github.client import COMMENT_MAX_CHARS
from trainops.github.comments import fit, one_line
from trainops.manifest.sweep import scalar_text
from trainops.plan import STOPPED_EARLY, MemberOutcome, SetOutcome
from trainops.state.model import Health

__all__ = ["OPEN_MEMBERS", "set_comment", "set_marker"]

OPEN_MEMBERS = 20  # a table of at most this many members is shown open, a longer one collapsed
_REASON_CHARS = 120  # of a failed or canceled member's reason, in its row
_VALUE_CHARS = 60  # of one axis value in a cell
_ORDER = ("Succeeded", "Failed", "Stopped early", "Canceled", "No run")  # of the totals


def set_marker(outcome: SetOutcome) -> str:
    """The comment's first line: the set and a digest of which run of each member it shows."""
    shown = [
        [m.member, m.run.run_id if m.run else "", m.run.health.value if m.run else ""]
        for m in sorted(outcome.members, key=lambda m: m.member)
    ]
    digest = hashlib.sha256(json.dumps([outcome.name, shown]).encode()).hexdigest()[:16]
    return f"<!-- trainops:set:{outcome.name}:{digest} -->"


def set_comment(outcome: SetOutcome, *, run_url: str = "", limit: int = COMMENT_MAX_CHARS) -> str:
    """The commit comment of a settled set: totals first, the winner's promotions, then the
    members' table (collapsed past OPEN_MEMBERS), at most `limit` characters."""
    members = outcome.members
    head = [set_marker(outcome), f"### trainops: sweep {escape.md_code(outcome.name)} settled", ""]
    head += [_verdict(outcome), "", "**" + escape.md_text(" · ".join(_totals(outcome))) + "**"]
    winner = next((m for m in members if m.member == outcome.winner), None)
    if winner is not None and winner.run is not None and winner.run.promotions:
        head += ["", "**Promotion of the winner**", ""]
        head += [
            f"- {escape.md_code(one_line(k, 200))}: {escape.md_text(_promotion(v))}"
            for k, v in sorted(winner.run.promotions.items())
        ]
    if run_url:
        head += ["", f"Reported by [workflow run]({run_url})."]
    opened = " open" if len(members) <= OPEN_MEMBERS else ""
    summary = f"{len(members)} members of {escape.md_text(outcome.name)}"
    head += ["", f"<details{opened}><summary>{summary}</summary>", ""]
    columns = ["", "member", *outcome.axes, "state", outcome.metric or "metric", "cost"]
    header = "| " + " | ".join(escape.md_text(c) or " " for c in columns) + " |"
    rule = "|" + "---|" * len(columns)
    tail = ["", "</details>", ""]
    used = sum(len(line) + 1 for line in [*head, header, rule, *tail]) + 200  # the last row
    rows = []
    for m in members:
        row = _row(outcome, m)
        if used + len(row) + 1 > limit:
            break
        rows.append(row)
        used += len(row) + 1
    if len(rows) < len(members):
        more = len(members) - len(rows)
        rows.append(
            f"| … | {more} more members: run `trainops status` to see all of them |"
            + " |" * (len(columns) - 2)
        )
    return fit("\n".join([*head, header, rule, *rows, *tail]), limit)


def _verdict(outcome: SetOutcome) -> str:
    if not outcome.metric:
        return "No `select`: the set names no winner."
    best = next((m for m in outcome.members if m.member == outcome.winner), None)
    if best is None or best.value is None:
        return escape.md_text(
            f"No winner: no succeeded member reported {outcome.metric} ({outcome.goal})."
        )
    return (
        f"**Winner: {escape.md_code(best.member)}** "
        + escape.md_text(f"({outcome.metric} {metrics.fmt(best.value)}, {outcome.goal})")
        + (f", with {_values(best.values)}" if best.values else "")
    )


def _totals(outcome: SetOutcome) -> list[str]:
    counts = dict.fromkeys(_ORDER, 0)
    for m in outcome.members:
        state = _state(m)[0]
        counts[state] = counts.get(state, 0) + 1
    parts = [f"{len(outcome.members)} members"]
    parts += [f"{n} {what.lower()}" for what, n in counts.items() if n]
    priced = any(m.cost_usd is not None for m in outcome.members)
    parts.append(f"cost ${outcome.cost_usd:,.2f}" if priced else "cost unknown")
    return parts


def _state(m: MemberOutcome) -> tuple[str, str]:
    """(what the member's row says of it, why)."""
    run = m.run
    if run is None:
        return "No run", "suspended"
    if run.health is Health.CANCELED and run.reason.startswith(STOPPED_EARLY):
        return "Stopped early", run.reason.removeprefix(STOPPED_EARLY)
    reason = run.error if run.health is Health.FAILED else run.reason
    return run.health.value, reason if run.health.terminal else ""


def _row(outcome: SetOutcome, m: MemberOutcome) -> str:
    mark = "**winner**" if m.member == outcome.winner else " "
    values = [_cell(_text(m.values[k])) if k in m.values else "-" for k in outcome.axes]
    state, why = _state(m)
    said = state + (f": {one_line(why, _REASON_CHARS)}" if why else "")
    value = metrics.fmt(m.value) if m.value is not None else "-"
    cost = f"${m.cost_usd:,.2f}" if m.cost_usd is not None else "unknown"
    cells = [mark, escape.md_code(m.member, in_table=True), *values, escape.md_text(said)]
    return "| " + " | ".join([*cells, value, cost]) + " |"


def _cell(text: str) -> str:
    return escape.md_code(one_line(text, _VALUE_CHARS), in_table=True)


def _text(value: Any) -> str:
    try:
        return scalar_text(value)
    except TypeError:  # a list or mapping value
        return json.dumps(value, ensure_ascii=False)


def _values(values: Mapping[str, Any]) -> str:
    return ", ".join(f"{escape.md_text(k)} {_cell(_text(v))}" for k, v in values.items())


def _promotion(status: str) -> str:
    if status == "done":
        return "moved to the winner's run"
    if status.startswith("held: "):
        return "held, the alias did not move: " + one_line(status.removeprefix("held: "))
    return one_line(status)
