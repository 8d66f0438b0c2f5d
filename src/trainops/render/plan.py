"""A plan and status for a terminal: each job's row (`job_row`, `iter_plan_rows`), its actions
as one cell, the summary and cost lines, and the sections above the table (spec diffs, data
and workdir packages, SageMaker input, input drift)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from trainops import escape, metrics
from trainops.render.cells import age, worst


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


def by_job(actions: Any) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for a in actions:
        out.setdefault(a.job, []).append(a)
    return out


def action_cells(plan: Any) -> dict[str, str]:
    """Each job's actions as one table cell (`submit (attempt 1)`), by job."""
    return {job: _action_cell(actions) for job, actions in by_job(plan.actions).items()}


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
    actions = by_job(plan.actions)
    for name, view in sorted(plan.jobs.items()):
        yield job_row(name, view, actions, now)


def job_row(name: str, view: Any, actions: Mapping[str, list[Any]], now: float) -> dict[str, Any]:
    run = view.run
    return {
        "job": name,
        "sync": view.sync.value,
        "health": view.health.value,
        "revision": view.revision,
        "action": _action_cell(actions.get(name, []), view.timeout),
        "run_id": (run.run_id or "") if run else "",
        "age": age(now - run.created_at) if run else "",
        "cost_usd": round(view.spent_usd, 4),
        "cost": f"${view.spent_usd:,.2f}",
        "worst_case": worst(view.estimate),
        "estimate_usd": None
        if view.estimate is None or view.estimate.worst_usd is None
        else round(view.estimate.worst_usd, 2),
        "reason": view.reason,
        "outputs": dict(run.outputs) if run else {},
        "deliveries": dict(run.deliveries) if run else {},
        "promotions": dict(run.promotions) if run else {},
        "metrics": metrics.headline(run.metrics) if run else "",
    }
