"""The planner of DESIGN §7: `plan(desired, state, limits, now, here) -> Plan`, every job in git
or in state walked through the rule table (`plan.rules`) and admission (`plan.admission`) in
order of its last change (a sweep set's members together, in the set's order).

Inputs: `Desired`, the refreshed `JobState`s (`plan.refresh`), `Limits`, `now` (an argument: the
planner reads no clock), `here`. Outputs: a `Plan` — the actions in the order apply carries them
out, one `JobView` per job, the money summary, one `SetView` per sweep set. Pure: values in,
values out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from trainops import cost
from trainops.plan.actions import PHASE, Action, Submit
from trainops.plan.admission import Admission
from trainops.plan.desired import Desired, Limits
from trainops.plan.rules import available, elsewhere, present, removed
from trainops.plan.select import selection
from trainops.plan.views import JobView, Plan, SetView, Sync, job_view
from trainops.plan.winner import crown
from trainops.state.model import Health, JobState


def plan(
    desired: Desired,
    state: Mapping[str, JobState],
    limits: Limits,
    now: float,
    here: Mapping[str, str] | None = None,
) -> Plan:
    """DESIGN §7, in order, for every job in git or in state. `state` is already refreshed.
    `here` is this reconciler's location per provider whose runs belong to one place (a local
    run's clone): a run recorded elsewhere is Unknown here, and only its own clone adopts,
    cancels or delivers it; here it is never lost, resubmitted or canceled."""
    here = here or {}
    actions: list[Action] = []
    views: dict[str, JobView] = {}
    admission = Admission(desired, state, limits, now)
    names = set(desired.targets) | set(state) | set(desired.invalid)
    # Oldest change first; a sweep set's members together, in the set's order (DESIGN §21).
    place = {m: (s.name, i) for s in desired.sets.values() for i, m in enumerate(s.members)}

    def order(n: str) -> tuple[float, str, int, str]:
        group, index = place.get(n, (n, -1))
        return desired.changed_at.get(n, float("inf")), group, index, n

    for name in sorted(names, key=order):
        job_state = state.get(name, JobState(name))
        if job_state.problem:
            # Its state file does not validate (DESIGN §9): whatever it says, act on nothing.
            views[name] = job_view(
                name, Sync.INVALID, job_state, None, f"state file invalid: {job_state.problem}"
            )
            continue
        if desired.is_invalid(name):
            views[name] = job_view(
                name,
                Sync.INVALID,
                job_state,
                None,
                "manifest does not validate: its runs are left alone",
            )
            continue
        target = desired.targets.get(name)
        if target is None and job_state.pruned and not any(r.active for r in job_state.runs):
            continue  # removed from git and its end was reported: gone from plan and status
        if target is None:
            job_actions, view = removed(job_state, desired.complete, limits, here)
        else:
            job_actions, view = present(target, job_state, desired, state, limits, now, here)
            job_actions, why = available(target, job_state, job_actions, limits)
            refused = False
            if not why:
                why, refused = admission.admit(target, job_actions)
            if why:
                job_actions = [a for a in job_actions if not isinstance(a, Submit)]
                view = replace(view, sync=Sync.BLOCKED, reason=why, refused=refused)
        spent = sum(cost.run_cost(r, limits.prices, now) for r in job_state.runs if r.run_id)
        if target is None:
            view = replace(view, spent_usd=spent)
        else:
            spec = target.job.spec
            view = replace(
                view, estimate=limits.estimate(spec), timeout=limits.timeout(spec), spent_usd=spent
            )
        if view.run is not None and view.run.active and elsewhere(view.run, here):
            view = replace(view, health=Health.UNKNOWN)
        actions.extend(job_actions)
        views[name] = view
    for sweep_set in desired.sets.values():  # a set's winner and its aliases (DESIGN §21)
        promotes, winner = crown(sweep_set, desired, state, views)
        actions.extend(promotes)
        if winner is not None:
            views[winner.job] = winner
    actions.sort(key=lambda a: PHASE[a.op])  # stable: per-job order kept within a phase
    return Plan(
        tuple(actions), views, admission.money(), _with_selection(desired, state, admission)
    )


def _with_selection(
    desired: Desired, state: Mapping[str, JobState], admission: Admission
) -> dict[str, SetView]:
    """Each set's view, with its `select` standing (plan.select) when it has one."""
    out = {}
    for name, view in admission.set_views().items():
        chosen = desired.sets[name].sweep.select
        if chosen is not None:
            ranked = selection(view.members, chosen.metric, chosen.goal, desired, state)
            best = ranked.best
            view = replace(
                view,
                metric=chosen.metric,
                best=best.member if best else "",
                best_value=best.value if best else None,
                settled=ranked.settled,
            )
        out[name] = view
    return out
