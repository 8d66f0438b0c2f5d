"""What went stale in a saved plan (DESIGN §20), pure: every way a file no longer holds
against the pass about to act, one line each — the binding (`the plan is of another
repository`, `commit moved`, `trainops.lock changed`, `price of X changed ...`), the state
(`state moved: ...`) and each action that differs (`stale_lines`), and every way the report
`show` prints claims other than that pass (`report_lines`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from trainops.savedplan.digest import prices_digest
from trainops.savedplan.model import AppliedPlan, Binding, PlannedAction, SavedPlanDoc


def action_key(action: PlannedAction) -> tuple[Any, ...]:
    """What makes two planned actions the same action: never the reason (a cancel's reason
    may quote a cost that grows by the second) nor the worst case (compared on its own)."""
    return (
        action.op,
        action.job,
        action.revision,
        action.attempt,
        action.run_id,
        action.target,
        action.candidate,
    )


def describe(action: PlannedAction) -> str:
    """One planned action in words, as `trainops.plan.describe` says an action."""
    if action.op in ("submit", "adopt"):
        return f"{action.op} {action.job} revision {action.revision} attempt {action.attempt}"
    if action.op == "cancel":
        return f"cancel {action.job} run {action.run_id}"
    if action.op == "promote":
        to = f"run {action.run_id}" if action.run_id else "nothing (held)"
        return f"promote {action.job} {action.target} to {to}"
    return f"deliver {action.job} run {action.run_id} to {action.target}"


def stale_lines(
    saved: SavedPlanDoc | AppliedPlan,
    binding: Binding,
    state_version: str,
    now_actions: Iterable[PlannedAction],
    now_jobs: Mapping[str, tuple[str | None, str]],
) -> list[str]:
    """Every way `saved` no longer holds against the pass about to act: the repository, the
    commit, the lock, each price, the state version and what moved in it (`now_jobs`: each
    job's run id and health), and each action that differs. Empty: apply may carry it out."""
    lines: list[str] = []
    if saved.repository != binding.repository:
        lines.append(
            f"the plan is of another repository: {saved.repository}, this is {binding.repository}"
        )
    if saved.commit != binding.commit:
        lines.append(
            f"commit moved: the plan is of {saved.commit[:12]}, apply is of {binding.commit[:12]}"
        )
    if saved.lock_digest != binding.lock_digest:
        lines.append(
            f"trainops.lock changed: {_short(saved.lock_digest)} -> {_short(binding.lock_digest)}"
        )
    lines += _price_lines(saved.prices_usd_per_second, binding.prices)
    if saved.prices_digest != prices_digest(saved.prices_usd_per_second):
        lines.append("the plan's price table does not match its own digest")
    actions = _action_lines(saved.actions, list(now_actions))
    if saved.state_version != state_version:
        lines.append(
            f"state moved: trainops/state is at {_short(state_version)}, the plan read "
            f"{_short(saved.state_version)}"
        )
        lines += _state_lines(saved, now_jobs, "state moved: ")
    elif actions:  # same state, other actions: what the providers said since
        lines += _state_lines(saved, now_jobs, "since the plan: ")
    return lines + actions


def _short(version: str) -> str:
    if not version:
        return "nothing"
    return version.removeprefix("sha256:")[:12]


def price_text(value: float) -> str:
    """`$0.0015/s`; more digits only where four would hide the figure."""
    text = f"{value:.4f}"
    return f"${text if float(text) == value else f'{value:.8g}'}/s"


def _price_lines(before: Mapping[str, float], after: Mapping[str, float]) -> list[str]:
    lines = []
    for hw in sorted(before.keys() | after.keys()):
        old, new = before.get(hw), after.get(hw)
        if old == new:
            continue
        if old is None:
            lines.append(f"price of {hw} added: {price_text(float(new or 0))}")
        elif new is None:
            lines.append(f"price of {hw} removed (was {price_text(old)})")
        else:
            lines.append(f"price of {hw} changed: {price_text(old)} -> {price_text(new)}")
    return lines


def _state_lines(
    saved: SavedPlanDoc | AppliedPlan, now_jobs: Mapping[str, tuple[str | None, str]], prefix: str
) -> list[str]:
    then = _jobs_seen(
        saved.report if isinstance(saved.report, dict) else saved.report.model_dump(mode="json")
    )
    lines = []
    for job in sorted(then.keys() | now_jobs.keys()):
        old, new = then.get(job), now_jobs.get(job)
        if old == new:
            continue
        if new is None:
            lines.append(f"{prefix}job {job} is no longer in the plan")
        elif old is None:
            lines.append(f"{prefix}job {job} is new since the plan")
        elif old[0] != new[0]:
            seen = f"run {old[0]} ({old[1]})" if old[0] else "no run"
            has = f"run {new[0]} ({new[1]})" if new[0] else "no run"
            lines.append(f"{prefix}job {job} now has {has}; the plan saw {seen}")
        else:
            lines.append(f"{prefix}job {job} run {new[0]} is now {new[1]} (the plan saw {old[1]})")
    return lines


def _jobs_seen(report: Mapping[str, Any]) -> dict[str, tuple[str | None, str]]:
    """Each job's run id and health as the saved report showed them (unmodelled: taken only
    where they have the expected types; anything else was not seen)."""
    jobs = report.get("jobs")
    seen: dict[str, tuple[str | None, str]] = {}
    for j in jobs if isinstance(jobs, list) else ():
        if not isinstance(j, dict) or not isinstance(j.get("job"), str):
            continue
        run_id, health = j.get("run_id"), j.get("health")
        if isinstance(health, str) and (run_id is None or isinstance(run_id, str)):
            seen[j["job"]] = (run_id, health)
    return seen


def _action_lines(then: Sequence[PlannedAction], now: Sequence[PlannedAction]) -> list[str]:
    before = {action_key(a): a for a in then}
    after = {action_key(a): a for a in now}
    lines = []
    if len(before) != len(then):
        lines.append("the plan lists one action twice")
    for key, action in before.items():
        if key not in after:
            instead = [describe(a) for a in now if a.job == action.job]
            also = f" (it has {', '.join(instead)})" if instead else ""
            lines.append(f"not in the current plan: {describe(action)}{also}")
        elif after[key].worst_case_usd != action.worst_case_usd:
            lines.append(
                f"worst case of {describe(action)} changed: {_usd(action.worst_case_usd)} -> "
                f"{_usd(after[key].worst_case_usd)}"
            )
        if key in after and after[key].timeout_seconds != action.timeout_seconds:
            # `show` prints it beside the attempt: what stops the run must be what was read.
            lines.append(
                f"timeout of {describe(action)} changed: {_seconds_text(action.timeout_seconds)}"
                f" -> {_seconds_text(after[key].timeout_seconds)}"
            )
    for key, action in after.items():
        if key not in before:
            lines.append(f"not in the saved plan: {describe(action)}")
    return lines


def report_lines(
    saved: SavedPlanDoc | AppliedPlan,
    now_jobs: Mapping[str, tuple[str, float | None]],
    now_new_usd: float | None,
) -> list[str]:
    """Every way the saved report (what `show` prints) claims other than the pass about to act:
    each job's revision and worst case (`now_jobs`, rounded as the report rounds them), the
    money line's new runs, and its actions against the file's. A file whose report shows $0.01
    while its actions cost $10.80 is refused: what a reviewer read is what apply carries out."""
    report = saved.report if isinstance(saved.report, dict) else saved.report.model_dump()
    lines: list[str] = []
    jobs = report.get("jobs")
    shown: dict[str, tuple[Any, Any]] = {}
    for j in jobs if isinstance(jobs, list) else ():
        if isinstance(j, dict) and isinstance(j.get("job"), str):
            shown[j["job"]] = (j.get("revision"), j.get("estimate_usd"))
    for job in sorted(shown.keys() | now_jobs.keys()):
        if job not in shown:
            lines.append(f"the plan's report leaves out job {job}")
            continue
        if job not in now_jobs:
            lines.append(f"the plan's report shows job {job}, which the current plan has not")
            continue
        (revision, worst), (now_revision, now_worst) = shown[job], now_jobs[job]
        if revision != now_revision:
            lines.append(
                f"the plan's report shows job {job} revision {revision}; the current plan: "
                f"{now_revision}"
            )
        if worst != now_worst:
            lines.append(
                f"the plan's report shows job {job} at worst case {_shown_usd(worst)}; the "
                f"current plan: {_usd(now_worst)}"
            )
    money = report.get("money")
    new_usd = money.get("new_usd") if isinstance(money, dict) else None
    if new_usd != now_new_usd:
        lines.append(
            f"the plan's report shows new runs up to {_shown_usd(new_usd)}; the current plan: "
            f"{_usd(now_new_usd)}"
        )
    actions = report.get("actions")
    quoted = [
        tuple(a.get(k) for k in ("op", "job", "revision", "attempt", "run_id", "target"))
        if isinstance(a, dict)
        else None
        for a in (actions if isinstance(actions, list) else [None])
    ]
    if quoted != [action_key(a)[:6] for a in saved.actions]:
        lines.append("the plan's report lists other actions than the plan's")
    return lines


def _shown_usd(value: Any) -> str:
    if value is None or (isinstance(value, int | float) and not isinstance(value, bool)):
        return _usd(value)
    return "(not a figure)"


def _seconds_text(value: int | None) -> str:
    return "none" if value is None else f"{value}s"


def _usd(value: float | None) -> str:
    from trainops.cost import usd

    return usd(value)
