"""Admission gates and runtime limits of DESIGN §4/§7 on a simulated clock (no sleeps)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.support.factories import desired, run, state, target
from trainops import cost
from trainops.manifest import Policy
from trainops.plan import Cancel, Limits, Submit, Sync, plan
from trainops.state.model import Health

NOW = datetime(2026, 11, 15, tzinfo=UTC).timestamp()
LAST_MONTH = datetime(2026, 10, 20, tzinfo=UTC).timestamp()
H100 = 0.001525
# worst case of one job: 1h on an H100 x (1 + 1 retry) = $10.98
PAID = target(
    "p", provider="replicate", hardware="gpu-h100", retries=1, budget={"max_duration": "1h"}
)
OPEN_ENDED = target("o", provider="replicate", hardware="gpu-h100")
HINTED = target("h", provider="replicate", hardware="gpu-h100", estimate={"duration": "40m"})


def test_estimate_is_price_times_duration_times_attempts() -> None:
    est = cost.estimate(PAID.job.spec, {"gpu-h100": H100})
    assert est.attempt_usd == pytest.approx(H100 * 3600)
    assert est.worst_usd == pytest.approx(H100 * 3600 * 2)


@pytest.mark.parametrize(
    ("tgt", "worst"),
    [
        (HINTED, H100 * 2400),
        (OPEN_ENDED, None),
        (target("l"), 0.0),
        (target("l", hardware="gpu-t4", budget={"max_duration": "1h"}), 0.000225 * 3600),
        (
            target(
                "c",
                provider="replicate",
                hardware="gpu-h100",
                budget={"max_duration": "10h", "max_cost_usd": 5},
            ),
            5.0,
        ),
    ],
    ids=["estimate hint", "unbounded", "local is free", "priced local", "capped by max_cost_usd"],
)
def test_estimates(tgt, worst) -> None:
    got = cost.estimate(tgt.job.spec, {"gpu-h100": H100, "gpu-t4": 0.000225}).worst_usd
    assert got == (pytest.approx(worst) if worst is not None else None)


GATES = [
    ("per-job cap allows", Policy(max_cost_usd_per_job=11), desired(PAID), {}, True),
    ("per-job cap refuses", Policy(max_cost_usd_per_job=10), desired(PAID), {}, False),
    (
        "per-job cap refuses unbounded",
        Policy(max_cost_usd_per_job=100),
        desired(OPEN_ENDED),
        {},
        False,
    ),
    ("budget allows", Policy(monthly_budget_usd=11), desired(PAID), {}, True),
    (
        "budget counts this month's spend",
        Policy(monthly_budget_usd=11),
        desired(PAID),
        state(
            x=run(
                "x",
                Health.SUCCEEDED,
                provider="replicate",
                hardware="gpu-h100",
                billed_seconds=600,
                completed_at=NOW - 100,
            )
        ),
        False,
    ),
    (
        "budget ignores last month's spend",
        Policy(monthly_budget_usd=11),
        desired(PAID),
        state(
            x=run(
                "x",
                Health.SUCCEEDED,
                provider="replicate",
                hardware="gpu-h100",
                billed_seconds=600,
                completed_at=LAST_MONTH,
            )
        ),
        True,
    ),
    ("budget refuses unbounded", Policy(monthly_budget_usd=1000), desired(OPEN_ENDED), {}, False),
    ("allowed hardware refuses", Policy(allowed_hardware=["gpu-t4"]), desired(PAID), {}, False),
    ("allowed providers refuses", Policy(allowed_providers=["local"]), desired(PAID), {}, False),
]


@pytest.mark.parametrize(
    ("policy", "want", "have", "admitted"), [g[1:] for g in GATES], ids=[g[0] for g in GATES]
)
def test_admission_gates(policy, want, have, admitted) -> None:
    result = plan(want, have, Limits(policy, {"gpu-h100": H100}), NOW)
    submitted = [a for a in result.actions if isinstance(a, Submit)]
    assert bool(submitted) is admitted
    if not admitted:
        (view,) = [v for n, v in result.jobs.items() if n in want.targets]
        assert view.sync is Sync.BLOCKED and view.reason


def test_budget_refusal_shows_the_figures() -> None:
    result = plan(desired(PAID), {}, Limits(Policy(monthly_budget_usd=5), {"gpu-h100": H100}), NOW)
    assert result.jobs["p"].reason == (
        "monthly budget $5.00 would be exceeded: spent $0.00, "
        "running $0.00, this plan $0.00, this job $10.98"
    )


def test_budget_is_shared_between_jobs_in_one_plan() -> None:
    other = target(
        "q", provider="replicate", hardware="gpu-h100", retries=1, budget={"max_duration": "1h"}
    )
    result = plan(
        desired(PAID, other), {}, Limits(Policy(monthly_budget_usd=15), {"gpu-h100": H100}), NOW
    )
    assert [a.job for a in result.actions] == ["p"]
    assert result.jobs["q"].sync is Sync.BLOCKED


@pytest.mark.parametrize(
    ("elapsed", "billed", "reason"),
    [
        (3601, None, "max_duration exceeded"),
        (3599, 100, None),
        (100, 3000, "max_cost_usd exceeded"),  # 3000 s x H100 = $4.58 > $4
        (100, 2000, None),
    ],
    ids=["past duration", "within duration", "past cost", "within cost"],
)
def test_runtime_limits(elapsed, billed, reason) -> None:
    tgt = target(
        "p",
        provider="replicate",
        hardware="gpu-h100",
        budget={"max_duration": "1h", "max_cost_usd": 4},
    )
    r = run(
        tgt,
        started_at=NOW - elapsed,
        billed_seconds=billed,
        provider="replicate",
        hardware="gpu-h100",
    )
    result = plan(desired(tgt), state(p=r), Limits(Policy(), {"gpu-h100": H100}), NOW)
    cancels = [a for a in result.actions if isinstance(a, Cancel)]
    assert [c.reason for c in cancels] == ([reason] if reason else [])


def test_spend_by_label() -> None:
    runs = state(
        a=run(
            "r1",
            Health.SUCCEEDED,
            provider="replicate",
            hardware="gpu-h100",
            billed_seconds=1000,
            completed_at=NOW,
            labels={"team": "vision"},
        ),
        b=run(
            "r2",
            Health.SUCCEEDED,
            provider="replicate",
            hardware="gpu-h100",
            billed_seconds=2000,
            completed_at=NOW,
        ),
    )
    got = cost.spend_by(runs.values(), {"gpu-h100": H100}, "2026-11", "team", NOW)
    assert got == {"vision": (1, pytest.approx(1.525)), "(none)": (1, pytest.approx(3.05))}


def test_cost_so_far_of_a_running_run_counts_every_instance() -> None:
    """SageMaker bills instance_count instances at once (issue 31): a running run's cost so
    far is multiplied by them, as a finished run's billed seconds are; the field survives the
    state file and is written only when more than one."""
    from dataclasses import replace

    from trainops.state.model import Run

    prices = {"ml.g5.xlarge": 0.01}
    one = Run("0123456789ab", 1, "sagemaker", "0" * 16, 1000.0, run_id="x", hardware="ml.g5.xlarge")
    one = replace(one, health=Health.RUNNING, started_at=1000.0)
    four = replace(one, instances=4)
    assert cost.run_cost(one, prices, 1100.0) == pytest.approx(1.0)
    assert cost.run_cost(four, prices, 1100.0) == pytest.approx(4.0)
    assert "instances" not in one.to_json()
    assert Run.from_json(four.to_json()).instances == 4


def test_a_listed_running_sagemaker_job_has_a_start_for_its_cost_so_far() -> None:
    """ListTrainingJobs summaries carry no TrainingStartTime: the creation time stands in."""
    from trainops.providers.sagemaker.observe import observation

    summary = {
        "TrainingJobName": "a-0123456789ab-1-45baee93d0",
        "TrainingJobStatus": "InProgress",
        "SecondaryStatus": "Training",
        "CreationTime": datetime.fromtimestamp(1000.0, UTC),
    }
    seen = observation(summary, None)
    assert seen.health is Health.RUNNING and seen.started_at == 1000.0


def test_a_running_runs_provider_detail_is_its_reason() -> None:
    """SageMaker's SecondaryStatus (Downloading, Training, Uploading) is the reason status
    shows while the job runs (issue 31); it is cleared once the run ends."""
    from trainops.plan import refresh
    from trainops.providers.base import Observation

    t = target("a")
    recorded = state(a=run(t))
    rid = recorded["a"].runs[0].run_id or ""
    seen = refresh(recorded, {rid: Observation(rid, Health.RUNNING, detail="Training")})
    view = plan(desired(t), seen, Limits(), now=1100.0).jobs["a"]
    assert view.health is Health.RUNNING and view.reason == "Training"
    done = refresh(seen, {rid: Observation(rid, Health.SUCCEEDED, detail="Completed")})
    assert done["a"].runs[0].detail == ""


def test_a_change_of_provider_detail_alone_changes_no_record() -> None:
    """Downloading -> Training is not a change of the run: nothing to write to the state branch
    (reconcile.record.changed is empty) and the state file never carries the live word."""
    from trainops.plan import refresh
    from trainops.providers.base import Observation
    from trainops.reconcile.record import changed

    t = target("a")
    recorded = state(a=run(t))
    rid = recorded["a"].runs[0].run_id or ""
    downloading = refresh(recorded, {rid: Observation(rid, Health.RUNNING, detail="Downloading")})
    training = refresh(downloading, {rid: Observation(rid, Health.RUNNING, detail="Training")})
    assert training["a"].runs[0].detail == "Training"
    assert changed(training, downloading) == {}
    assert "detail" not in training["a"].runs[0].to_json()
