"""The actions a plan asks for (DESIGN §7, §8): small immutable values with an enum op, so a test
compares whole values (`assert plan(...).actions == (Submit("a", "3f2c…", 1),)`).

Inputs: none (values only). Outputs: `Adopt`, `Cancel`, `Submit`, `Deliver`, `Promote`, the
order apply carries them out in (`PHASE`), and `describe` (one line of an action, for events and
state commit messages).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

# Why trainops cancels a run (`Cancel.reason`). Runs canceled for the first three are started
# again once the reason is gone (the job is unsuspended, re-added, or its revision comes back); a
# run canceled for a budget limit, an early stop (DESIGN §21), or by someone outside trainops, is
# not: resubmitting would spend the same money again.
SUSPENDED = "suspended"
REMOVED = "removed from git"
REPLACED = "replaced by revision "
MAX_DURATION = "max_duration exceeded"
MAX_COST = "max_cost_usd exceeded"
STOPPED_EARLY = "stopped early: "  # a sweep's stop_when (DESIGN §21), then why


class Op(StrEnum):
    ADOPT = "adopt"
    CANCEL = "cancel"
    SUBMIT = "submit"
    DELIVER = "deliver"
    PROMOTE = "promote"


@dataclass(frozen=True)
class Adopt:
    """Find the run an intent created (DESIGN §8), or declare it lost after the grace period."""

    job: str
    revision: str
    attempt: int
    op: Op = field(default=Op.ADOPT, compare=False)


@dataclass(frozen=True)
class Cancel:
    job: str
    run_id: str
    revision: str
    attempt: int
    reason: str
    op: Op = field(default=Op.CANCEL, compare=False)


@dataclass(frozen=True)
class Submit:
    job: str
    revision: str
    attempt: int
    reason: str = "new revision"
    op: Op = field(default=Op.SUBMIT, compare=False)


@dataclass(frozen=True)
class Deliver:
    job: str
    run_id: str
    target: str
    op: Op = field(default=Op.DELIVER, compare=False)


@dataclass(frozen=True)
class Promote:
    """Point one alias of `spec.promote` at run `run_id` ("": leave it where it is) and record
    the gate's verdict on `candidate`, the current revision's succeeded run (DESIGN §19). Apply
    carries it out after the deliveries, and only once the candidate's are done."""

    job: str
    target: str
    run_id: str
    candidate: str
    verdict: str = ""
    op: Op = field(default=Op.PROMOTE, compare=False)


Action = Adopt | Cancel | Submit | Deliver | Promote
# The order apply carries actions out in (DESIGN §8): adoption settles first, intents are
# recorded for cancels and submits together, deliveries precede the aliases that need them.
PHASE = {Op.ADOPT: 0, Op.CANCEL: 1, Op.SUBMIT: 2, Op.DELIVER: 3, Op.PROMOTE: 4}


def describe(action: Action) -> str:
    """One action in words: `submit a revision 3f2c… attempt 1 (new revision)`."""
    if isinstance(action, Submit):
        return (
            f"submit {action.job} revision {action.revision} attempt {action.attempt} "
            f"({action.reason})"
        )
    if isinstance(action, Cancel):
        return f"cancel {action.job} run {action.run_id} ({action.reason})"
    if isinstance(action, Adopt):
        return f"adopt {action.job} revision {action.revision} attempt {action.attempt}"
    if isinstance(action, Promote):
        to = f"run {action.run_id}" if action.run_id else "nothing (held)"
        return f"promote {action.job} {action.target} to {to}"
    return f"deliver {action.job} run {action.run_id} to {action.target}"
