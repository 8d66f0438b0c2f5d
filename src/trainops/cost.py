"""Money, computed before and after it is spent (pure functions, no I/O).

Prices are USD per second per hardware (`trainops.yaml` `prices_usd_per_second`). A job's worst
case is price x max_duration (or the `estimate.duration` hint, or the provider's timeout) x
(1 + retries); hardware without a price has no estimate (never a guess). A run's actual
cost is what the provider billed (Replicate: `metrics.predict_time`) x price.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from trainops.manifest import AnySpec as Spec
from trainops.state.model import JobState, Run, month_of


@dataclass(frozen=True)
class Estimate:
    """What one job may cost. `None` figures are unbounded: a priced job with no duration."""

    price_per_second: float
    attempt_usd: float | None
    worst_usd: float | None
    unpriced: str = ""  # the hardware a paid provider runs on that has no price (no estimate)

    @property
    def bounded(self) -> bool:
        return self.worst_usd is not None


def price(prices: Mapping[str, float], hardware: str | None, provider: str) -> float | None:
    """USD per second, 0 for an unpriced local job, None when a paid provider's hardware has no
    price (estimates then say unknown rather than zero)."""
    if hardware and hardware in prices:
        return prices[hardware]
    if provider == "local":
        return 0.0
    return None


def estimate(spec: Spec, prices: Mapping[str, float], timeout: int | None = None) -> Estimate:
    """`timeout`: how long the provider lets a run go when the manifest sets no
    `budget.max_duration` (Hugging Face always sends one), the duration of the worst case then."""
    per_second = price(prices, spec.hardware, spec.provider)
    if per_second is None:
        return Estimate(0.0, None, None, unpriced=spec.hardware or "(default hardware)")
    if per_second == 0:
        return Estimate(0.0, 0.0, 0.0)
    seconds = spec.estimate.duration if spec.estimate else (spec.budget.max_duration or timeout)
    if seconds is None:
        return Estimate(per_second, None, None)
    # Instances a run bills at once (SageMaker's instance_count: BillableTimeInSeconds counts
    # one instance, the bill all of them).
    attempt = per_second * seconds * getattr(spec, "instance_count", 1)
    if spec.budget.max_cost_usd is not None:
        attempt = min(attempt, spec.budget.max_cost_usd)
    return Estimate(per_second, attempt, attempt * (1 + spec.retries))


def run_cost(run: Run, prices: Mapping[str, float], now: float) -> float:
    """Billed cost of a finished run, or cost so far of a running one."""
    per_second = price(prices, run.hardware or None, run.provider) or 0.0
    if run.billed_seconds is not None:
        return run.billed_seconds * per_second
    if run.health.active and run.started_at is not None:
        # Billed per instance (a finished run's billed_seconds already counts them all)
        return max(0.0, now - run.started_at) * per_second * run.instances
    return run.cost_usd or 0.0


def month_spend(
    states: Iterable[JobState], prices: Mapping[str, float], month: str, now: float
) -> float:
    """What runs cost in `month` (by their end, or now for runs still going)."""
    return sum(usd for _runs, usd in spend_by(states, prices, month, "job", now).values())


def usd(value: float | None) -> str:
    if value is None:
        return "unbounded"
    return f"${value:,.2f}"


def spend_by(
    states: Iterable[JobState], prices: Mapping[str, float], month: str, by: str, now: float
) -> dict[str, tuple[int, float]]:
    """Spend in `month` grouped by job (`by="job"`) or by a label's value: group -> (runs, usd).
    Runs without the label fall in the group "(none)"."""
    groups: dict[str, tuple[int, float]] = {}
    for job_state in states:
        for run in job_state.runs:
            if run.run_id is None:
                continue
            when = run.completed_at or (now if run.health.active else run.created_at)
            if month_of(when) != month:
                continue
            key = job_state.job if by == "job" else run.labels.get(by, "(none)")
            count, total = groups.get(key, (0, 0.0))
            groups[key] = (count + 1, total + run_cost(run, prices, now))
        # Runs retention dropped from the tip (DESIGN §9) count through their month's totals.
        for t in job_state.totals:
            if t.month != month:
                continue
            key = job_state.job if by == "job" else t.labels.get(by, "(none)")
            per_second = price(prices, t.hardware or None, t.provider) or 0.0
            count, total = groups.get(key, (0, 0.0))
            groups[key] = (count + t.runs, total + t.billed_seconds * per_second + t.usd)
    return groups
