"""Rendering of problems, plans and status for terminals, JSON and GitHub workflow commands.

Pure text in, text out: the CLI decides where it goes. Every field that came from a file, a job
or a provider is escaped for its medium here (`trainops.escape`), never at the call sites.
"""

from __future__ import annotations

import json
from collections.abc import Container, Iterable, Iterator, Mapping, Sequence
from typing import Any

from trainops import escape, metrics
from trainops.errors import Problem, TrainopsError


def problems_text(problems: Iterable[Problem]) -> str:
    return "\n".join(problem_text(p) for p in problems)


def problem_text(p: Problem) -> str:
    """`file:line:col: message` and the hint, each one terminal line (a file name can hold a
    newline followed by `::error …`)."""
    text = f"{escape.line(p.location())}: {escape.line(p.message)}"
    return text + (f"\n  hint: {escape.line(p.hint)}" if p.hint else "")


def error_text(exc: TrainopsError) -> str:
    """An error and its hint for a terminal: the message may quote a file or a provider."""
    text = escape.line(exc.message)
    return text + (f"\n  hint: {escape.line(exc.hint)}" if exc.hint else "")


def problem_dict(p: Problem) -> dict[str, Any]:
    return {"file": p.file, "line": p.line, "col": p.col, "message": p.message, "hint": p.hint}


# GitHub shows at most 10 error annotations per step (and 50 per job): actions/toolkit
# `docs/problem-matchers.md`, shared/ref/README.md "Checked against the real clients".
ANNOTATION_LIMIT = 10


def github_annotations(problems: Iterable[Problem]) -> str:
    """Workflow commands (`::error file=…,line=…,col=…::…`) that GitHub shows on the diff: the
    first `ANNOTATION_LIMIT`, then one warning (a separate limit) counting the rest, which the
    log lists in full. An 11th error would be dropped by GitHub without a word."""
    problems = list(problems)
    lines = []
    for p in problems[:ANNOTATION_LIMIT]:
        props = [f"file={escape.workflow_property(p.file)}"]
        if p.line:
            props.append(f"line={p.line}")
        if p.col:
            props.append(f"col={p.col}")
        text = p.message + (f" (hint: {p.hint})" if p.hint else "")
        lines.append(f"::error {','.join(props)}::{escape.workflow_data(text)}")
    rest = len(problems) - ANNOTATION_LIMIT
    if rest > 0:
        lines.append(
            f"::warning title=trainops::{rest} more problem(s) not annotated (GitHub shows "
            f"{ANNOTATION_LIMIT} per step): the step's log lists all {len(problems)}"
        )
    return "\n".join(lines)


def to_json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=False, default=str)


# ---- plans and status ----------------------------------------------------------------------


def _action_cell(actions: list[Any], timeout: int | None = None) -> str:
    """`timeout`: what the provider stops the run at, shown with a submission."""
    from trainops.manifest import format_duration
    from trainops.plan import Adopt, Cancel, Deliver, Promote, Submit

    cells = []
    for a in actions:
        if isinstance(a, Submit) and timeout:
            cells.append(f"submit (attempt {a.attempt}, timeout {format_duration(timeout)})")
        elif isinstance(a, Submit):
            cells.append(f"submit (attempt {a.attempt})")
        elif isinstance(a, Cancel):
            cells.append(f"cancel {a.run_id}")
        elif isinstance(a, Adopt):
            cells.append("adopt")
        elif isinstance(a, Deliver):
            cells.append(f"deliver {a.target}")
        elif isinstance(a, Promote):
            cells.append(f"promote {a.target}" if a.run_id else f"hold {a.target}")
    return ", ".join(cells) or "-"


def _by_job(actions: Any) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for a in actions:
        out.setdefault(a.job, []).append(a)
    return out


def action_cells(plan: Any) -> dict[str, str]:
    """Each job's actions as one table cell (`submit (attempt 1)`), by job."""
    return {job: _action_cell(actions) for job, actions in _by_job(plan.actions).items()}


def summary_line(plan: Any) -> str:
    counts: dict[str, int] = {}
    for a in plan.actions:
        counts[a.op.value] = counts.get(a.op.value, 0) + 1
    if not counts:
        return "No changes: the providers match git."
    order = ["submit", "cancel", "adopt", "deliver", "promote"]
    return "Plan: " + ", ".join(f"{counts[k]} to {k}" for k in order if k in counts) + "."


def spec_diffs_text(diffs: Mapping[str, Sequence[str]]) -> str:
    """Each changed job's spec fields against the snapshot it last submitted, for a terminal
    (`github.specdiff` computes them, as for the pull request comment); the members of a sweep
    set that changed alike once."""
    if not diffs:
        return ""
    from trainops.github.specdiff import CREDENTIAL_NOTE, grouped_diffs, members_text

    lines = ["Changed spec fields (since the last submitted revision):"]
    for heading, names, changes in grouped_diffs(diffs):
        # a sweep set's members that changed alike: once, under the set (DESIGN §21)
        many = f" (set, {members_text(names)})" if len(names) > 1 else ""
        lines.append(f"  {escape.line(heading + many)}")
        # `!`: the change hands a credential to the job (or takes one away): look twice
        lines += [
            f"    {'!' if CREDENTIAL_NOTE in c else '~'} {c}" for c in map(escape.line, changes)
        ]
    return "\n".join(lines)


def data_lines(packages: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Each job's `spec.data` packages (DESIGN §18): file count, size and what was left out."""
    return [
        f"{job}: {pkg.summary()}"
        for job, by_key in sorted(packages.items())
        for _key, pkg in sorted(by_key.items())
    ]


def data_text(packages: Mapping[str, Mapping[str, Any]]) -> str:
    lines = data_lines(packages)
    if not lines:
        return ""
    return "Data packages:\n" + "\n".join(f"  {escape.line(line)}" for line in lines)


def workdir_lines(workdirs: Mapping[str, Any]) -> list[str]:
    """Each shipped workdir that leaves files out (DESIGN §13b): what stays on the machine."""
    return [f"{job}: {wd.summary()}" for job, wd in sorted(workdirs.items())]


def workdir_text(workdirs: Mapping[str, Any]) -> str:
    lines = workdir_lines(workdirs)
    if not lines:
        return ""
    return "Workdir packages:\n" + "\n".join(f"  {escape.line(line)}" for line in lines)


def hyperparameter_lines(jobs: Mapping[str, Any]) -> list[str]:
    """What each SageMaker job's input becomes (issue 31): HyperParameters are strings, so the
    conversion is shown before anything is submitted; `s3://` values are channels."""
    from trainops.hyperparameters import preview
    from trainops.manifest import SageMakerSpec

    lines = []
    for name, job in sorted(jobs.items()):
        if isinstance(job.spec, SageMakerSpec):
            lines += [f"{name}: {line}" for line in preview(job.spec.input)]
    return lines


def hyperparameter_text(jobs: Mapping[str, Any]) -> str:
    lines = hyperparameter_lines(jobs)
    if not lines:
        return ""
    return "SageMaker input:\n" + "\n".join(f"  {escape.line(line)}" for line in lines)


def drift_lines(drift: Mapping[str, Sequence[str]]) -> list[str]:
    """Each job's input drift (DESIGN §18): an object that changed behind its unchanged URL."""
    return [f"{job}: {line}" for job, lines in sorted(drift.items()) for line in lines]


def drift_text(drift: Mapping[str, Sequence[str]]) -> str:
    lines = drift_lines(drift)
    if not lines:
        return ""
    hint = "  (nothing retrains by itself: bump spec.rerun, or pin it with spec.digests)"
    return "Input drift:\n" + "\n".join(f"  {escape.line(line)}" for line in lines) + "\n" + hint


def money_line(plan: Any) -> str:
    """Cost before it is spent: worst case of what starts, what runs, what was spent."""
    from trainops.cost import usd

    m = plan.money
    if m is None:
        return ""
    text = (
        f"Cost: new runs up to {usd(m.new_usd)}, running up to {usd(m.running_usd)} more, "
        f"spent in {m.month} {usd(m.spent_usd)}"
    )
    if m.budget_usd is not None:
        text += f" of the {usd(m.budget_usd)} monthly budget"
    return text + "."


def iter_plan_rows(plan: Any, now: float) -> Iterator[dict[str, Any]]:
    """Each job's row, made as it is read: a table over 30,000 jobs keeps only its cells, not
    30,000 rows of seventeen fields (about 30 MB at once)."""
    actions = _by_job(plan.actions)
    for name, view in sorted(plan.jobs.items()):
        yield _job_row(name, view, actions, now)


def iter_grouped_rows(plan: Any, now: float) -> Iterator[dict[str, Any]]:
    """The rows of `iter_plan_rows`, a sweep set's members under one row of the set (DESIGN
    §21: its counts by sync and health, its total worst case and bounds), indented, in the
    set's order; members no longer in the set (removed from git) after them."""
    actions = _by_job(plan.actions)
    members = set_members(plan)
    grouped = {m for shown in members.values() for m in shown}
    top = [(n, False) for n in plan.jobs if n not in grouped] + [(s, True) for s in members]
    for name, is_set in sorted(top):
        if not is_set:
            yield _job_row(name, plan.jobs[name], actions, now)
            continue
        yield set_row(plan, name, members[name], actions)
        for member in members[name]:
            row = _job_row(member, plan.jobs[member], actions, now)
            yield {**row, "job": "  " + member}


def _job_row(name: str, view: Any, actions: Mapping[str, list[Any]], now: float) -> dict[str, Any]:
    run = view.run
    return {
        "job": name,
        "sync": view.sync.value,
        "health": view.health.value,
        "revision": view.revision,
        "action": _action_cell(actions.get(name, []), view.timeout),
        "run_id": (run.run_id or "") if run else "",
        "age": _age(now - run.created_at) if run else "",
        "cost_usd": round(view.spent_usd, 4),
        "cost": f"${view.spent_usd:,.2f}",
        "worst_case": _worst(view.estimate),
        "estimate_usd": None
        if view.estimate is None or view.estimate.worst_usd is None
        else round(view.estimate.worst_usd, 2),
        "reason": view.reason,
        "outputs": dict(run.outputs) if run else {},
        "deliveries": dict(run.deliveries) if run else {},
        "promotions": dict(run.promotions) if run else {},
        "metrics": metrics.headline(run.metrics) if run else "",
    }


# ---- sweep sets (DESIGN §21) ------------------------------------------------------------------


def _set_of(name: str) -> str:
    from trainops.manifest import set_of

    return set_of(name)


def set_members(plan: Any) -> dict[str, list[str]]:
    """Each set of the plan and the jobs shown under it: its members in the set's order, then
    the jobs of that set no longer in it (`<set>.<suffix>` removed from git), by name."""
    sets = plan.sets
    if not sets:
        return {}  # no sweep: nothing to group, and no walk over every job
    out: dict[str, list[str]] = {}
    for name, view in sets.items():
        out[name] = [m for m in view.members if m in plan.jobs]
    known = {m for members in out.values() for m in members}
    for job in sorted(plan.jobs):
        group = _set_of(job)
        if group in out and job not in known:
            out[group].append(job)
    return out


def counts(values: Iterable[str], order: Sequence[str]) -> str:
    """`2 Running, 1 Succeeded`: how many of each value, in `order` (then any other, by name)."""
    tally: dict[str, int] = {}
    for value in values:
        tally[value] = tally.get(value, 0) + 1
    known = [v for v in order if v in tally] + sorted(v for v in tally if v not in order)
    return ", ".join(f"{tally[v]} {v}" for v in known)


SYNC_ORDER = ("OutOfSync", "Blocked", "Invalid", "Synced")
HEALTH_ORDER = (
    "Running",
    "Pending",
    "Failed",
    "Canceled",
    "Missing",
    "Unknown",
    "Suspended",
    "Succeeded",
)


def set_total(view: Any) -> str:
    """The set's worst case together, and its `max_cost_usd_total`: `$6.10 of $20.00`."""
    text = _usd(view.worst_usd)
    return text if view.max_cost_usd_total is None else f"{text} of {_usd(view.max_cost_usd_total)}"


def set_reason(view: Any) -> str:
    """Why the set's submissions are refused, else the bound it runs under and where its
    `select` stands: `max_parallel 2; best so far lora.b (eval_loss 0.31), 3 of 4 settled`."""
    if view.refused:
        return str(view.refused)
    parts = [f"max_parallel {view.max_parallel}"] if view.max_parallel is not None else []
    if view.metric:
        parts.append(standing(view))
    return "; ".join(parts)


def standing(view: Any) -> str:
    """Where a set's `select` stands: its winner, or its best member so far and how many of
    its members are settled."""
    if not view.best:
        return f"no member has reported {view.metric} yet"
    value = f"{view.metric} {view.best_value:g}"
    if view.winner:
        return f"winner {view.best} ({value})"
    return f"best so far {view.best} ({value}), {view.settled} of {len(view.members)} settled"


def set_row(
    plan: Any, name: str, members: Sequence[str], actions: Mapping[str, list[Any]] | None = None
) -> dict[str, Any]:
    """The row of a sweep set: how many members, what this plan does to them, their counts by
    sync and health, what they cost so far and may cost at worst."""
    actions = _by_job(plan.actions) if actions is None else actions
    view = plan.sets[name]
    views = [plan.jobs[m] for m in members]
    ops: dict[str, int] = {}
    for member in members:
        for a in actions.get(member, []):
            ops[a.op.value] = ops.get(a.op.value, 0) + 1
    action = f"set of {len(view.members)}"
    if ops:
        action += ": " + ", ".join(f"{n} {op}" for op, n in ops.items())
    spent = sum(v.spent_usd for v in views)
    return {
        "job": name,
        "sync": counts((v.sync.value for v in views), SYNC_ORDER),
        "health": counts((v.health.value for v in views), HEALTH_ORDER),
        "revision": "",
        "action": action,
        "run_id": "",
        "age": "",
        "cost_usd": round(spent, 4),
        "cost": f"${spent:,.2f}",
        "worst_case": set_total(view),
        "estimate_usd": None if view.worst_usd is None else round(view.worst_usd, 2),
        "reason": set_reason(view),
        "outputs": {},
        "deliveries": {},
        "promotions": {},
        "metrics": "",
    }


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
                "age": _age(s.age(now)),
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
            f"{_age(s.age(now))} | ${s.cost_usd:,.2f} |"
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


def _worst(estimate: Any) -> str:
    if estimate is None:
        return ""
    if estimate.unpriced:
        return f"no price for {estimate.unpriced}"
    return _usd(estimate.worst_usd)


def _usd(value: float | None) -> str:
    from trainops.cost import usd

    return usd(value)


def _age(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    if seconds < 172800:
        return f"{seconds // 3600}h{(seconds % 3600) // 60:02d}m"
    return f"{seconds // 86400}d"


def table(rows: Iterable[Mapping[str, Any]], columns: list[str]) -> str:
    """A plain, aligned text table: upper-case headers, columns two spaces apart, long cells
    never folded. Formatted here rather than with rich's Table, whose layout cost about 6 ms a
    row: most of a no-op `apply` over 10,000 jobs."""
    header = [c.upper().replace("_", " ") for c in columns]
    lines = [header] + [
        ["" if r.get(c) is None else escape.line(str(r.get(c))) for c in columns] for r in rows
    ]
    widths = [max(_width(line[i]) for line in lines) for i in range(len(columns))]
    return "\n".join(
        "  ".join(
            cell + " " * (width - _width(cell)) for cell, width in zip(line, widths, strict=True)
        ).rstrip()
        for line in lines
    )


def _width(cell: str) -> int:
    """Display width of an escaped cell: its length when ASCII (no control characters are left
    in it), else rich's count, where wide characters take two cells and combining ones none."""
    if cell.isascii():
        return len(cell)
    from rich.cells import cell_len

    return cell_len(cell)


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
    actions = _by_job(plan.actions)
    members = set_members(plan)
    grouped = {m for shown in members.values() for m in shown}
    rows = [_job_row(n, v, actions, now) for n, v in sorted(plan.jobs.items()) if n not in grouped]
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
        worst = f"worst case {_usd(view.worst_usd)}"
        if view.max_cost_usd_total is not None:
            worst += f" of max_cost_usd_total {_usd(view.max_cost_usd_total)}"
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
            row = _md_row(_job_row(member, plan.jobs[member], actions, now))
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
