"""The pure planner of DESIGN §7: what must happen for the providers to match git.

`plan(desired, state, limits, now, here)` takes values and returns values: no network, no git,
no clock, no environment (tests/unit/test_layering.py holds every module here to it). Apply
performs the actions; everything the plan shows a user (sync, health, reasons) comes from here,
so `plan`, `apply` and `status` can never disagree.

| module | noun |
| --- | --- |
| `actions.py` | the actions (`Submit`, `Cancel`, `Adopt`, `Deliver`, `Promote`) and their order |
| `desired.py` | what the planner is given: `Desired`, `Target`, `Limits` |
| `refresh.py` | provider observations folded into the recorded runs |
| `planner.py` | `plan()`: every job through the rules and admission |
| `rules.py` | the rule table, one job at a time |
| `admission.py` | policy, cost per job, a set's total and `max_parallel`, slots, budget |
| `upstream.py` | job chaining: `after` and output references (a sweep set's winner) |
| `select.py` | the winner of a sweep set: ranking, ties, when a set is settled |
| `winner.py` | what a set does with its winner: its aliases, early stop |
| `views.py` | what a user sees: `JobView`, `SetView`, `Money`, `Plan` |
"""

from trainops.plan.actions import (
    PHASE,
    STOPPED_EARLY,
    Action,
    Adopt,
    Cancel,
    Deliver,
    Op,
    Promote,
    Submit,
    describe,
)
from trainops.plan.desired import Desired, Limits, Target
from trainops.plan.planner import plan
from trainops.plan.refresh import refresh
from trainops.plan.select import MemberOutcome, SetOutcome, set_outcome
from trainops.plan.upstream import upstream_outputs
from trainops.plan.views import JobView, Money, Plan, SetView, Sync
from trainops.plan.winner import left_by, promoting_spec

__all__ = [
    "PHASE",
    "STOPPED_EARLY",
    "Action",
    "Adopt",
    "Cancel",
    "Deliver",
    "Desired",
    "JobView",
    "Limits",
    "MemberOutcome",
    "Money",
    "Op",
    "Plan",
    "Promote",
    "SetOutcome",
    "SetView",
    "Submit",
    "Sync",
    "Target",
    "describe",
    "left_by",
    "plan",
    "promoting_spec",
    "refresh",
    "set_outcome",
    "upstream_outputs",
]
