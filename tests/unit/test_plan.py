"""The rule table of DESIGN §7, one row per case, whole-value assertions on the actions."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.support.factories import desired, run, state, target
from trainops.manifest import Policy
from trainops.plan import (
    Adopt,
    Cancel,
    Deliver,
    Limits,
    Submit,
    Sync,
    plan,
)
from trainops.state.model import Health

NOW = 10_000.0
A = target("a")
A2 = target("a", input={"lr": 0.1})  # a spec edit: a new revision of job a
B = target("b")
B_AFTER_A = target("b", after=["a"])
B_REF_A = target("b", input={"w": "${{ jobs.a.output.weights }}"})
C = target("c")
PRICY = target("a", hardware="gpu-h100", budget={"max_cost_usd": 1})  # $1.525 per 1000 s


@dataclass
class Case:
    id: str
    desired: Any
    state: Any
    actions: list[Any]
    sync: dict[str, Sync] = field(default_factory=dict)
    policy: Policy = field(default_factory=Policy)


CASES = [
    Case(
        "new job is submitted",
        desired(A),
        {},
        [Submit("a", A.revision, 1, "new revision")],
        {"a": Sync.OUT_OF_SYNC},
    ),
    Case("running current revision: nothing", desired(A), state(a=run(A)), [], {"a": Sync.SYNCED}),
    Case(
        "succeeded current revision: never resubmitted",
        desired(A),
        state(a=run(A, Health.SUCCEEDED)),
        [],
        {"a": Sync.SYNCED},
    ),
    Case(
        "invalid manifest: its running run is left alone",
        desired(invalid=("a",)),
        state(a=run(A)),
        [],
        {"a": Sync.INVALID},
    ),
    Case(
        "invalid manifest is never pruned even when others parse",
        desired(B, invalid=("a",)),
        state(a=run(A), b=run(B)),
        [],
        {"a": Sync.INVALID, "b": Sync.SYNCED},
    ),
    Case(
        "spec edit, replace: cancel old then submit new",
        desired(A2),
        state(a=run(A)),
        [
            Cancel(
                "a", f"r-{A.revision[:4]}-1", A.revision, 1, f"replaced by revision {A2.revision}"
            ),
            Submit("a", A2.revision, 1, "new revision"),
        ],
        {"a": Sync.OUT_OF_SYNC},
    ),
    Case(
        "spec edit, queue: wait for the old run",
        desired(A2),
        state(a=run(A)),
        [],
        {"a": Sync.OUT_OF_SYNC},
        Policy(on_change="queue"),
    ),
    Case(
        "spec edit, queue: old run ended, submit new",
        desired(A2),
        state(a=run(A, Health.SUCCEEDED)),
        [Submit("a", A2.revision, 1, "new revision")],
        {"a": Sync.OUT_OF_SYNC},
        Policy(on_change="queue"),
    ),
    Case(
        "suspend cancels the active run",
        desired(target("a", suspend=True)),
        state(a=run(A)),
        [Cancel("a", f"r-{A.revision[:4]}-1", A.revision, 1, "suspended")],
        {"a": Sync.OUT_OF_SYNC},
    ),
    Case(
        "suspended and idle: nothing, not submitted",
        desired(target("a", suspend=True)),
        {},
        [],
        {"a": Sync.SYNCED},
    ),
    Case(
        "unsuspended after a suspend-cancel: submitted again",
        desired(A),
        state(a=run(A, Health.CANCELED, reason="suspended")),
        [Submit("a", A.revision, 2, "resubmitted")],
        {"a": Sync.OUT_OF_SYNC},
    ),
    Case(
        "removed from git, prune: cancel",
        desired(),
        state(a=run(A)),
        [Cancel("a", f"r-{A.revision[:4]}-1", A.revision, 1, "removed from git")],
        {"a": Sync.OUT_OF_SYNC},
    ),
    Case(
        "removed from git, prune off: left alone",
        desired(),
        state(a=run(A)),
        [],
        {"a": Sync.OUT_OF_SYNC},
        Policy(prune=False),
    ),
    Case(
        "removed while some manifest did not parse: not pruned",
        desired(complete=False),
        state(a=run(A)),
        [],
        {"a": Sync.OUT_OF_SYNC},
    ),
    Case(
        "removed and already ended: nothing",
        desired(),
        state(a=run(A, Health.SUCCEEDED)),
        [],
        {"a": Sync.SYNCED},
    ),
    Case(
        "past max_duration: cancel with that reason",
        desired(target("a", budget={"max_duration": "1h"})),
        state(a=run(target("a", budget={"max_duration": "1h"}), started_at=NOW - 3601)),
        [Cancel("a", f"r-{A.revision[:4]}-1", A.revision, 1, "max_duration exceeded")],
        {"a": Sync.OUT_OF_SYNC},
    ),
    Case(
        "within max_duration: nothing",
        desired(target("a", budget={"max_duration": "1h"})),
        state(a=run(A, started_at=NOW - 3599)),
        [],
        {"a": Sync.SYNCED},
    ),
    Case(
        "past max_cost_usd: cancel",
        desired(PRICY),
        state(a=run(PRICY, started_at=NOW - 1000, hardware="gpu-h100")),
        [Cancel("a", f"r-{PRICY.revision[:4]}-1", PRICY.revision, 1, "max_cost_usd exceeded")],
        {"a": Sync.OUT_OF_SYNC},
    ),
    Case(
        "canceled for budget: not resubmitted",
        desired(A),
        state(a=run(A, Health.CANCELED, reason="max_duration exceeded")),
        [],
        {"a": Sync.SYNCED},
    ),
    Case(
        "canceled outside trainops: not resubmitted",
        desired(A),
        state(a=run(A, Health.CANCELED)),
        [],
        {"a": Sync.SYNCED},
    ),
    Case(
        "failed, retries left: new attempt",
        desired(target("a", retries=1)),
        state(a=run(A, Health.FAILED)),
        [Submit("a", A.revision, 2, "retry 1 of 1 after failure")],
        {"a": Sync.OUT_OF_SYNC},
    ),
    Case(
        "failed, retries spent: nothing",
        desired(target("a", retries=1)),
        state(a=[run(A, Health.FAILED), run(A, Health.FAILED, 2)]),
        [],
        {"a": Sync.SYNCED},
    ),
    Case(
        "failed, not retryable: nothing",
        desired(target("a", retries=3)),
        state(a=run(A, Health.FAILED, retryable=False)),
        [],
        {"a": Sync.SYNCED},
    ),
    Case(
        "failed, no retries: nothing",
        desired(A),
        state(a=run(A, Health.FAILED)),
        [],
        {"a": Sync.SYNCED},
    ),
    Case(
        "after not satisfied: blocked",
        desired(A, B_AFTER_A),
        {},
        [Submit("a", A.revision, 1, "new revision")],
        {"a": Sync.OUT_OF_SYNC, "b": Sync.BLOCKED},
    ),
    Case(
        "after satisfied: submitted",
        desired(A, B_AFTER_A),
        state(a=run(A, Health.SUCCEEDED)),
        [Submit("b", B_AFTER_A.revision, 1, "new revision")],
        {"b": Sync.OUT_OF_SYNC},
    ),
    Case(
        "after: upstream succeeded an old revision only: blocked",
        desired(A2, B_AFTER_A),
        state(a=run(A, Health.SUCCEEDED)),
        [Submit("a", A2.revision, 1, "new revision")],
        {"b": Sync.BLOCKED},
    ),
    Case(
        "output reference implies after",
        desired(A, B_REF_A),
        state(a=run(A)),
        [],
        {"b": Sync.BLOCKED},
    ),
    Case(
        "after an invalid upstream: blocked",
        desired(B_AFTER_A, invalid=("a",)),
        {},
        [],
        {"b": Sync.BLOCKED},
    ),
    Case(
        "rerun bump: a new revision is submitted",
        desired(target("a", rerun=1)),
        state(a=run(A, Health.SUCCEEDED)),
        [Submit("a", target("a", rerun=1).revision, 1, "new revision")],
        {"a": Sync.OUT_OF_SYNC},
    ),
    Case(
        "succeeded with deliver targets: deliver each",
        desired(target("a", deliver=[{"s3": {"uri": "s3://bucket/x/"}}])),
        state(a=run(A, Health.SUCCEEDED)),
        [Deliver("a", f"r-{A.revision[:4]}-1", "s3:s3://bucket/x/")],
        {"a": Sync.OUT_OF_SYNC},
    ),
    Case(
        "delivered already: nothing",
        desired(target("a", deliver=[{"s3": {"uri": "s3://bucket/x/"}}])),
        state(a=run(A, Health.SUCCEEDED, deliveries={"s3:s3://bucket/x/": "done"})),
        [],
        {"a": Sync.SYNCED},
    ),
    Case(
        "intent without run id: adopt, nothing else",
        desired(A2),
        state(a=run(A, run_id=None)),
        [Adopt("a", A.revision, 1)],
        {"a": Sync.OUT_OF_SYNC},
    ),
    Case(
        "lost intent: submitted again as the next attempt",
        desired(A),
        state(a=run(A, run_id=None, lost=True)),
        [Submit("a", A.revision, 2, "new revision")],
        {"a": Sync.OUT_OF_SYNC},
    ),
    Case(
        "allowed_hardware refuses: blocked",
        desired(target("a", hardware="gpu-t4")),
        {},
        [],
        {"a": Sync.BLOCKED},
        Policy(allowed_hardware=["gpu-h100"]),
    ),
    Case(
        "allowed_providers refuses: blocked",
        desired(A),
        {},
        [],
        {"a": Sync.BLOCKED},
        Policy(allowed_providers=["replicate"]),
    ),
    Case(
        "max_concurrent_runs: the rest wait",
        desired(A, B, C),
        state(c=run(C)),
        [Submit("a", A.revision, 1, "new revision")],
        {"a": Sync.OUT_OF_SYNC, "b": Sync.BLOCKED},
        Policy(max_concurrent_runs=2),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_rule_table(case: Case) -> None:
    result = plan(case.desired, case.state, Limits(case.policy), NOW)
    assert list(result.actions) == case.actions
    for name, sync in case.sync.items():
        assert result.jobs[name].sync is sync, result.jobs[name].reason


def test_cancels_come_before_submits_across_jobs() -> None:
    result = plan(desired(A2, target("z")), state(a=run(A)), Limits(), NOW)
    ops = [a.op.value for a in result.actions]
    assert ops == ["cancel", "submit", "submit"]


def test_blocked_reason_names_the_upstream() -> None:
    result = plan(desired(A, B_AFTER_A), {}, Limits(), NOW)
    assert result.jobs["b"].reason == f"waiting for a (revision {A.revision}) to succeed"


def test_a_failed_delivery_is_retried_and_its_reason_shown() -> None:
    t = target("a", deliver=[{"s3": {"uri": "s3://bucket/x/"}}])
    failed = run(t, Health.SUCCEEDED, deliveries={"s3:s3://bucket/x/": "failed: access denied"})
    result = plan(desired(t), state(a=failed), Limits(), NOW)
    assert list(result.actions) == [Deliver("a", failed.run_id or "", "s3:s3://bucket/x/")]
    assert result.jobs["a"].reason == "delivery to s3:s3://bucket/x/ failed: access denied"


def test_waiting_jobs_are_admitted_oldest_change_first() -> None:
    want = desired(A, B)
    want = type(want)(want.targets, changed_at={"a": 2000.0, "b": 1000.0})
    result = plan(want, {}, Limits(Policy(max_concurrent_runs=1)), NOW)
    assert [a.job for a in result.actions] == ["b"]
    assert result.jobs["a"].reason == "max_concurrent_runs (1) reached; waiting for a slot"


def test_a_held_job_is_refused_and_takes_no_slot_or_money() -> None:
    """DESIGN §20: a submission no reviewed plan showed (`Limits.held`) is Blocked with its
    reason, as a refusal; its cancel goes ahead (no new spending), and the slot and the money
    it would have taken go to the next job."""
    why = "not in the reviewed plan of #12 (cost $5.49 -> $11.02)"
    limits = Limits(Policy(max_concurrent_runs=1), held={"a": why})
    result = plan(desired(A, B), {}, limits, NOW)
    assert list(result.actions) == [Submit("b", B.revision, 1, "new revision")]
    view = result.jobs["a"]
    assert (view.sync, view.reason, view.refused) == (Sync.BLOCKED, why, True)
    assert result.money is not None and result.money.new_usd == 0.0  # local: free, not None
    replaced = plan(desired(A2), state(a=run(A)), Limits(held={"a": why}), NOW)
    assert [a.op.value for a in replaced.actions] == ["cancel"]
    assert plan(desired(A2, B), state(a=run(A)), Limits(), NOW).jobs["a"].sync is Sync.OUT_OF_SYNC


# ---- runs that live elsewhere (another clone or machine: DESIGN §6 Unknown, §10 local) -------

HERE = {"local": "box:/home/me/repo#aaaa"}
THERE = "lab:/srv/repo#bbbb"
DELIVERED = target("a", deliver=[{"s3": {"uri": "s3://bucket/x/"}}])


@pytest.mark.parametrize(
    ("desired_", "state_", "health", "reason"),
    [
        (desired(A), state(a=run(A, location=THERE)), Health.UNKNOWN, "runs on lab:/srv/repo"),
        (
            desired(A),
            state(a=run(A, run_id=None, location=THERE)),
            Health.UNKNOWN,
            "submitted from lab:/srv/repo",
        ),
        (
            desired(A2),
            state(a=run(A, location=THERE)),
            Health.MISSING,
            f"replacing revision {A.revision}: the cancel is waiting for lab:/srv/repo",
        ),
        (
            desired(target("a", suspend=True)),
            state(a=run(target("a", suspend=True), location=THERE)),
            Health.UNKNOWN,
            "suspended; the cancel is waiting for lab:/srv/repo",
        ),
        (
            desired(B),
            state(a=run(A, location=THERE), b=run(B, Health.SUCCEEDED)),
            None,
            "removed from git; the cancel is waiting for lab:/srv/repo",
        ),
        (
            desired(DELIVERED),
            state(a=run(DELIVERED, Health.SUCCEEDED, location=THERE)),
            Health.SUCCEEDED,
            "delivery waiting for lab:/srv/repo, where the outputs are",
        ),
        (
            desired(target("a", budget={"max_duration": "1s"})),
            state(a=run(target("a", budget={"max_duration": "1s"}), location=THERE)),
            Health.UNKNOWN,
            "runs on lab:/srv/repo",
        ),
    ],
    ids=["running", "intent", "replace", "suspend", "prune", "deliver", "over-budget"],
)
def test_a_run_elsewhere_is_never_adopted_canceled_resubmitted_or_delivered_here(
    desired_: Any, state_: Any, health: Health | None, reason: str
) -> None:
    result = plan(desired_, state_, Limits(), NOW, HERE)
    assert result.actions == ()
    view = result.jobs["a"]
    assert view.reason.startswith(reason), view.reason
    if health is not None:
        assert view.health is health


def test_the_same_runs_are_acted_on_from_their_own_clone() -> None:
    mine = state(a=run(A, location=HERE["local"]))
    assert plan(desired(A), mine, Limits(), NOW, HERE).jobs["a"].health is Health.RUNNING
    replaced = plan(desired(A2), mine, Limits(), NOW, HERE).actions
    assert [a.op.value for a in replaced] == ["cancel", "submit"]
    intent = state(a=run(A, run_id=None, location=HERE["local"]))
    assert plan(desired(A), intent, Limits(), NOW, HERE).actions == (Adopt("a", A.revision, 1),)


# ---- provider availability (DESIGN §12: plan shows what a provider call would meet) ----------

NO_TOKEN = {"replicate": "REPLICATE_API_TOKEN is not set"}
R = target("r", provider="replicate")
R2 = target("r", provider="replicate", input={"steps": 2})
R_RETRY = target("r", provider="replicate", retries=1)


@pytest.mark.parametrize(
    ("state_", "target_"),
    [
        pytest.param({}, R, id="new-job"),
        pytest.param(
            state(r=run(R_RETRY, Health.FAILED, provider="replicate")), R_RETRY, id="retry"
        ),
        pytest.param(state(r=run(R, provider="replicate")), R2, id="replace"),
    ],
)
def test_a_provider_that_cannot_be_used_blocks_its_calls_without_refusing(
    state_: Any, target_: Any
) -> None:
    result = plan(desired(target_, A), state_, Limits(unavailable=NO_TOKEN), NOW)
    assert result.actions == (Submit("a", A.revision, 1, "new revision"),)
    view = result.jobs["r"]
    assert (view.sync, view.reason, view.refused) == (
        Sync.BLOCKED,
        "REPLICATE_API_TOKEN is not set",
        False,
    )


def test_an_unavailable_provider_takes_no_concurrency_slot() -> None:
    limits = Limits(Policy(max_concurrent_runs=1), unavailable=NO_TOKEN)
    result = plan(desired(R, A), {}, limits, NOW)
    assert result.actions == (Submit("a", A.revision, 1, "new revision"),)


def test_a_suspended_job_on_an_unavailable_provider_is_just_suspended() -> None:
    suspended = target("r", provider="replicate", suspend=True)
    view = plan(desired(suspended), {}, Limits(unavailable=NO_TOKEN), NOW).jobs["r"]
    assert (view.sync, view.reason) == (Sync.SYNCED, "suspended")


# ---- health Suspended (DESIGN §6) ------------------------------------------------------------

SUSPENDED_A = target("a", suspend=True)


@pytest.mark.parametrize(
    ("state_", "health"),
    [
        pytest.param({}, Health.SUSPENDED, id="never-ran"),
        pytest.param(
            state(a=run(SUSPENDED_A, run_id=None, lost=True)), Health.SUSPENDED, id="lost-intent"
        ),
        pytest.param(
            state(a=run(SUSPENDED_A, Health.CANCELED, reason="suspended")),
            Health.CANCELED,
            id="canceled-by-suspend",
        ),
    ],
)
def test_a_suspended_job_without_a_run_is_suspended_not_missing(state_: Any, health: Any) -> None:
    view = plan(desired(SUSPENDED_A), state_, Limits(), NOW).jobs["a"]
    assert (view.sync, view.health) == (Sync.SYNCED, health)
    if health is Health.SUSPENDED:
        assert view.run is None  # no run, so no age and no run id
