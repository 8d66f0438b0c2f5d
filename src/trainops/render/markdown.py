"""A plan as Markdown for a pull request comment or a job summary (`plan_markdown`), kept
under a size limit: the jobs table, each sweep set's section with its members collapsed, the
metrics a change replaces, the problems."""

from __future__ import annotations

from collections.abc import Container, Iterable, Mapping, Sequence
from typing import Any

from trainops import escape
from trainops.errors import Problem
from trainops.render.cells import usd
from trainops.render.plan import (
    by_job,
    data_lines,
    drift_lines,
    job_row,
    money_line,
    summary_line,
    workdir_lines,
)
from trainops.render.sets import set_members, set_row


def plan_markdown(
    plan: Any,
    now: float,
    problems: list[Problem],
    title: str = "trainops plan",
    limit: int = 60_000,
    packages: Mapping[str, Mapping[str, Any]] | None = None,
    drift: Mapping[str, Sequence[str]] | None = None,
    workdirs: Mapping[str, Any] | None = None,
) -> str:
    """Markdown for a PR comment or job summary, kept under `limit` characters. A sweep set is
    one row of the jobs table, then a section of its own: its totals first, its members in a
    collapsed table that is cut (saying so) to what the comment has room for."""
    lines = [f"### {title}", "", f"**{summary_line(plan)}**", "", money_line(plan), ""]
    data = data_lines(packages or {})
    if data:
        lines += ["#### Data packages", "", *(f"- {escape.md_text(d)}" for d in data), ""]
    shipped = workdir_lines(workdirs or {})
    if shipped:
        lines += ["#### Workdir packages", "", *(f"- {escape.md_text(w)}" for w in shipped), ""]
    drifted = drift_lines(drift or {})
    if drifted:
        lines += ["#### Input drift", "", *(f"- {escape.md_text(d)}" for d in drifted), ""]
    actions = by_job(plan.actions)
    members = set_members(plan)
    grouped = {m for shown in members.values() for m in shown}
    rows = [job_row(n, v, actions, now) for n, v in sorted(plan.jobs.items()) if n not in grouped]
    top = sorted(
        [(r["job"], False, r) for r in rows]
        + [(n, True, set_row(plan, n, ms, actions)) for n, ms in members.items()],
        key=lambda t: (t[0], t[1]),
    )
    if top:
        lines += [_MD_HEADER, _MD_RULE]
        for name, is_set, r in top:
            lines.append(
                _md_row(r, label=f"{escape.md_code(name, in_table=True)} (set)" if is_set else "")
            )
    replaced = [r for r in rows if r["action"] != "-" and r["metrics"]]
    tail: list[str] = []
    if replaced:  # reviewers see what a change replaces (DESIGN §19)
        tail += ["", "#### Metrics of the run each changed job last produced", ""]
        tail += [f"- {escape.md_code(r['job'])}: {escape.md_code(r['metrics'])}" for r in replaced]
    if problems:
        tail += ["", f"#### {len(problems)} problem(s)", ""]
        tail += [
            f"- {escape.md_code(p.location())}: {escape.md_text(p.message)}"
            + (f" — {escape.md_text(p.hint)}" if p.hint else "")
            for p in problems
        ]
    if members:
        used = sum(len(line) + 1 for line in lines + tail)
        lines += _set_sections(plan, members, actions, now, max(0, limit - used - 400))
    text = "\n".join(lines + tail) + "\n"
    if len(text) > limit:
        cut = text[: limit - 200].rsplit("\n", 1)[0]
        text = (
            cut + f"\n\n_… truncated: the full plan has {len(plan.jobs)} jobs and "
            f"{len(problems)} problems; run `trainops plan` to see all of it._\n"
        )
    return text


_MD_HEADER = "| job | action | sync | health | revision | worst case | reason |"


_MD_RULE = "|---|---|---|---|---|---|---|"


def _md_row(r: Mapping[str, Any], label: str = "") -> str:
    worst = "-" if r["estimate_usd"] is None else f"${r['estimate_usd']:,.2f}"
    if r["worst_case"].startswith("no price") or label:
        worst = escape.md_text(r["worst_case"]) or "-"
    return (
        f"| {label or escape.md_code(r['job'], in_table=True)} | {escape.md_text(r['action'])} | "
        f"{r['sync']} | {r['health']} | `{r['revision'] or '-'}` | {worst} | "
        f"{escape.md_text(r['reason'])} |"
    )


def _set_sections(
    plan: Any, members: Mapping[str, Sequence[str]], actions: Any, now: float, room: int
) -> list[str]:
    """Each set's section: its totals, the members refused, then its members in a collapsed
    table of at most the set's share of `room` characters (by its number of members), the rest
    counted in a last row."""
    everyone = sum(len(ms) for ms in members.values()) or 1
    lines: list[str] = []
    for name, shown in sorted(members.items()):
        view = plan.sets[name]
        r = set_row(plan, name, shown, actions)
        worst = f"worst case {usd(view.worst_usd)}"
        if view.max_cost_usd_total is not None:
            worst += f" of max_cost_usd_total {usd(view.max_cost_usd_total)}"
        facts = [worst, f"spent {r['cost']}"]
        if view.max_parallel is not None:
            facts.append(f"max_parallel {view.max_parallel}")
        if any(m in actions for m in shown):
            facts.append(summary_line(_Only(plan.actions, set(shown))).removeprefix("Plan: ")[:-1])
        else:
            facts.append("no changes")
        lines += [
            "",
            f"#### Set {escape.md_code(name)}: {len(view.members)} members",
            "",
            "**" + escape.md_text(" · ".join(facts)) + "**",
            "",
            f"- sync: {r['sync'] or '-'}",
            f"- health: {r['health'] or '-'}",
        ]
        refused = [m for m in shown if plan.jobs[m].refused]
        if view.refused and refused:
            names = ", ".join(escape.md_code(m) for m in refused[:10])
            more = f" and {len(refused) - 10} more" if len(refused) > 10 else ""
            lines.append(
                f"- **refused**: {escape.md_text(view.refused)}: {len(refused)} member(s), "
                f"{names}{more}"
            )
        lines += ["", f"<details><summary>{len(shown)} members of {html_text(name)}</summary>", ""]
        share = room * len(shown) // everyone
        table = [_MD_HEADER.replace("| job |", "| member |"), _MD_RULE]
        used = sum(len(t) + 1 for t in table) + 200
        count = 0
        for member in shown:
            row = _md_row(job_row(member, plan.jobs[member], actions, now))
            if used + len(row) + 1 > share:
                break
            table.append(row)
            used += len(row) + 1
            count += 1
        if count < len(shown):
            table.append(
                f"| … | {len(shown) - count} more members: run `trainops plan` to see all "
                "of them | | | | | |"
            )
        lines += [*table, "", "</details>"]
    return lines


class _Only:
    """The actions of some jobs only, for `summary_line`."""

    def __init__(self, actions: Iterable[Any], jobs: Container[str]) -> None:
        self.actions = [a for a in actions if a.job in jobs]


def html_text(text: str) -> str:
    """Text inside an HTML element of a comment (a `<summary>`): escaped for HTML, one line."""
    import html

    return html.escape(escape.line(text))
