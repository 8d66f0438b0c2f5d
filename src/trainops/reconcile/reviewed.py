"""Review phase (DESIGN §20, plan binding on merge): each Submit of a pass's plan against what
the reviewed plan(s) of the commit being applied showed for its job.

Inputs: the `Context` (its `reviews`, where the reviewed plans of a commit are read, set by
`apply --github` and `serve --github`; `policy.require_reviewed_plan`), the pass's plan, and a
way to make it again with some jobs held. Outputs: the pass with `Pass.unreviewed` naming each
submit no reviewed plan showed and how it differs (`not in the reviewed plan of #12 (cost $5.49
-> $11.02)`); under `block` those jobs held (`Limits.held`: Blocked with that reason) and the
plan made again, until it submits nothing unreviewed; after acting, what was found told to
GitHub (`report_unreviewed`). Without `reviews` (no `--github`) nothing changes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from trainops import cost
from trainops.reconcile.context import Context
from trainops.reconcile.result import Pass

if TYPE_CHECKING:
    from trainops.github.reviewed import ReviewedAction, ReviewedPlan

__all__ = ["differences", "report_unreviewed", "review", "unreviewed"]

PUSHED_DIRECTLY = "no reviewed plan: pushed directly"


def review(ctx: Context, result: Pass, replan: Callable[[Mapping[str, str]], Pass]) -> Pass:
    """`result` with its unreviewed submits named (`Pass.unreviewed`); under `block`, the pass
    `replan(held)` makes with them held, repeated while a freed slot or budget lets another
    unreviewed submit in (each round holds at least one more job, so it ends)."""
    source = ctx.reviews
    if source is None:
        return result
    # Loaded only with --github: `trainops.reconcile` stays light (tests/unit/test_startup.py).
    from trainops.github.reviewed import reviewed_actions
    from trainops.savedplan.write import planned

    block = ctx.ws.config.policy.require_reviewed_plan == "block"
    credentials = ctx.ws.config.credential_names()
    found: dict[str, str] = {}
    answer: tuple[Sequence[ReviewedPlan], str] | None = None
    while True:
        submits = reviewed_actions(planned(result.plan), ctx.desired, credentials)
        todo = {job: a for job, a in submits.items() if job not in found}
        if not todo:
            break
        if answer is None:  # GitHub is asked only when the plan submits something
            answer = source.plans(ctx.ws.commit)
        new = unreviewed(todo, *answer)
        found.update(new)
        if not block or not new:
            break
        result = replan(dict(found))
    result.unreviewed = dict(sorted(found.items()))
    result.held_unreviewed = block
    if answer is not None and answer[0] and answer[1]:  # with no plan, each reason says why
        result.notes.append(f"reviewed plans: {answer[1]}")
    verb = "held" if block else "submitted"
    result.notes += [f"not reviewed, {verb}: {job}: {why}" for job, why in found.items()]
    return result


def report_unreviewed(ctx: Context, result: Pass) -> None:
    """After acting: tell GitHub what this pass found unreviewed (nothing when all was)."""
    if ctx.reviews is not None and result.unreviewed:
        ctx.reviews.report(ctx.ws.commit, result.unreviewed, result.held_unreviewed)


def unreviewed(
    submits: Mapping[str, ReviewedAction], plans: Sequence[ReviewedPlan], note: str = ""
) -> dict[str, str]:
    """Each of `submits` that no plan of `plans` showed exactly, with why (pure). A plan of the
    commit itself (`workflow_dispatch`) is the latest review, so it is the one compared first."""
    from trainops.github.reviewed import DISPATCH

    ordered = sorted(plans, key=lambda p: (p.pull != DISPATCH, p.pull))
    out: dict[str, str] = {}
    for job, action in sorted(submits.items()):
        if any(p.actions.get(job) == action for p in ordered):
            continue
        if not ordered:
            out[job] = f"no reviewed plan: {note}" if note else PUSHED_DIRECTLY
            continue
        shown = next((p for p in ordered if job in p.actions), ordered[0])
        was = shown.actions.get(job)
        why = "no submit of it shown" if was is None else ", ".join(differences(was, action))
        out[job] = f"not in the reviewed plan of {_name(shown)} ({why})"
    return out


def differences(was: ReviewedAction, now: ReviewedAction) -> list[str]:
    """What changed from the submit a plan showed (`was`) to the one about to go (`now`), in
    the words a reviewer checks: revision, attempt, worst case, credentials handed over."""
    out = []
    if was.revision != now.revision:
        out.append(f"revision {was.revision[:12] or '-'} -> {now.revision[:12] or '-'}")
    if was.attempt != now.attempt:
        out.append(f"attempt {was.attempt} -> {now.attempt}")
    if was.worst_case_usd != now.worst_case_usd:
        before, after = _usd(was.worst_case_usd), _usd(now.worst_case_usd)
        if before == after:  # a cent apart or less: show what differs
            before, after = _usd(was.worst_case_usd, 6), _usd(now.worst_case_usd, 6)
        out.append(f"cost {before} -> {after}")
    added = sorted(set(now.credentials) - set(was.credentials))
    removed = sorted(set(was.credentials) - set(now.credentials))
    if added or removed:
        out.append(
            "credentials " + " ".join([*(f"+{n}" for n in added), *(f"-{n}" for n in removed)])
        )
    return out or ["differs"]


def _usd(value: float | None, digits: int = 2) -> str:
    if value is None:
        return "no worst case"
    return cost.usd(value) if digits == 2 else f"${value:,.{digits}f}"


def _name(plan: ReviewedPlan) -> str:
    from trainops.github.reviewed import DISPATCH

    return f"#{plan.pull}" if plan.pull != DISPATCH else f"commit {plan.head_sha[:12]}"
