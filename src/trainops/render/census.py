"""`status --all`'s runs nobody declared (DESIGN §20): orphaned and foreign runs, which
providers cannot list and where a listing fell short, as text and as Markdown."""

from __future__ import annotations

from typing import Any

from trainops import escape
from trainops.render.cells import age, table


def census_text(census: Any, now: float) -> str:
    """`status --all`'s runs nobody declared (DESIGN §20): a table of the orphaned and foreign
    runs, then which providers cannot list and where a listing fell short."""
    lines = ["", "runs nobody declared:"]
    if census.strays:
        rows = [
            {
                "provider": s.provider,
                "kind": s.kind,
                "job": s.job,
                "run_id": s.run_id,
                "health": s.health.value,
                "age": age(s.age(now)),
                "cost": f"${s.cost_usd:,.2f}",
            }
            for s in census.strays
        ]
        columns = ["provider", "kind", "job", "run_id", "health", "age", "cost"]
        lines.append(table(rows, columns))
    else:
        lines.append("  none")
    for name in census.not_listable:
        lines.append(f"{name}: not listable (its runs nobody declared cannot be found)")
    for name in census.incomplete:
        lines.append(f"{name}: listed {census.calls[name]} pages only; older runs not seen")
    lines += [escape.line(n) for n in census.notes]
    return "\n".join(lines)


def census_markdown(census: Any, now: float) -> str:
    """`status --all -o markdown`'s runs nobody declared: what `census_text` shows, as a
    Markdown section (every value a provider or a state file supplied is escaped)."""
    from trainops import escape

    lines = ["", "#### Runs nobody declared", ""]
    if census.strays:
        lines += [
            "| provider | kind | job | run_id | health | age | cost |",
            "|---|---|---|---|---|---|---|",
        ]
        lines += [
            f"| {escape.md_text(s.provider)} | {s.kind} | {escape.md_code(s.job, in_table=True)} "
            f"| {escape.md_code(s.run_id, in_table=True)} | {s.health.value} | "
            f"{age(s.age(now))} | ${s.cost_usd:,.2f} |"
            for s in census.strays
        ]
    else:
        lines.append("none")
    notes = [
        f"{escape.md_text(n)}: not listable (its runs nobody declared cannot be found)"
        for n in census.not_listable
    ]
    notes += [
        f"{escape.md_text(n)}: listed {census.calls[n]} pages only; older runs not seen"
        for n in census.incomplete
    ]
    notes += [escape.md_text(n) for n in census.notes]
    if notes:
        lines += ["", *(f"- {n}" for n in notes)]
    return "\n".join(lines)
