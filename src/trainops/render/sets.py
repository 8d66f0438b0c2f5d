"""Sweep sets (DESIGN §21) in a plan and status: one row a set (its members' counts by sync
and health, its total worst case and bounds, where its `select` stands) with its members under
it (`iter_grouped_rows`)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from trainops.render.cells import counts, usd
from trainops.render.plan import by_job, job_row


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
    text = usd(view.worst_usd)
    return text if view.max_cost_usd_total is None else f"{text} of {usd(view.max_cost_usd_total)}"


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
    actions = by_job(plan.actions) if actions is None else actions
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


def iter_grouped_rows(plan: Any, now: float) -> Iterator[dict[str, Any]]:
    """The rows of `iter_plan_rows`, a sweep set's members under one row of the set (DESIGN
    §21: its counts by sync and health, its total worst case and bounds), indented, in the
    set's order; members no longer in the set (removed from git) after them."""
    actions = by_job(plan.actions)
    members = set_members(plan)
    grouped = {m for shown in members.values() for m in shown}
    top = [(n, False) for n in plan.jobs if n not in grouped] + [(s, True) for s in members]
    for name, is_set in sorted(top):
        if not is_set:
            yield job_row(name, plan.jobs[name], actions, now)
            continue
        yield set_row(plan, name, members[name], actions)
        for member in members[name]:
            row = job_row(member, plan.jobs[member], actions, now)
            yield {**row, "job": "  " + member}
