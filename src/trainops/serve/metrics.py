"""Prometheus metrics of the controller (`prometheus_client`, one registry per process):
runs by provider and health, pass duration, provider actions and GitHub calls by outcome,
month-to-date spend, the time of the last successful pass, webhooks by outcome.
"""

from __future__ import annotations

from typing import Any

import httpx
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)


class ControllerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.runs = Gauge(
            "trainops_runs",
            "Jobs' current runs by provider and health",
            ["provider", "health"],
            registry=r,
        )
        self.pass_duration = Histogram(
            "trainops_pass_duration_seconds",
            "Duration of one reconcile pass",
            buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300),
            registry=r,
        )
        self.in_progress = Gauge(
            "trainops_pass_in_progress", "1 while a reconcile pass runs", registry=r
        )
        self.pending = Gauge(
            "trainops_pass_pending", "1 while a pass is scheduled and not yet started", registry=r
        )
        self.passes = Counter(
            "trainops_passes", "Reconcile passes by outcome", ["outcome"], registry=r
        )
        self.provider_calls = Counter(
            "trainops_provider_actions",
            "Provider actions (submit, cancel, adopt, deliver) by provider and outcome",
            ["provider", "op", "outcome"],
            registry=r,
        )
        self.github_calls = Counter(
            "trainops_github_calls",
            "GitHub API calls by outcome (2xx, 4xx, 5xx, error)",
            ["outcome"],
            registry=r,
        )
        self.spend = Gauge("trainops_month_spend_usd", "Spend so far this month (USD)", registry=r)
        self.last_success = Gauge(
            "trainops_last_successful_pass_timestamp_seconds",
            "Unix time when the last pass finished without error",
            registry=r,
        )
        self.orphaned = Gauge(
            "trainops_orphaned_runs",
            "Runs with this repository's marks that no state file knows (DESIGN §20), by "
            "provider, as of the last census (every CENSUS_EVERY passes)",
            ["provider"],
            registry=r,
        )
        self.webhooks = Counter(
            "trainops_webhooks",
            "Webhooks received by source and outcome",
            ["source", "outcome"],
            registry=r,
        )

    def record_pass(self, result: Any, providers: dict[str, str], now: float) -> None:
        """After a successful pass: its plan's runs and money, and its actions' outcomes."""
        self.runs.clear()
        counts: dict[tuple[str, str], int] = {}
        for name, view in result.plan.jobs.items():
            key = (providers.get(name, view.run.provider if view.run else "-"), view.health.value)
            counts[key] = counts.get(key, 0) + 1
        for (provider, health), n in counts.items():
            self.runs.labels(provider, health).set(n)
        money = result.plan.money
        if money is not None:
            self.spend.set(float(money.spent_usd))
        self.last_success.set(now)

    def record_census(self, census: Any) -> None:
        """After a census (`reconcile.orphans.census`): its orphaned runs per listed provider
        (0 where it found none; a provider that cannot list has no sample)."""
        self.orphaned.clear()
        for provider in census.calls:
            self.orphaned.labels(provider).set(0)
        for stray in census.orphaned:
            self.orphaned.labels(stray.provider).inc()

    def record_outcomes(self, outcomes: Any, providers: dict[str, str]) -> None:
        for outcome in outcomes:
            action = outcome.action
            provider = providers.get(action.job, "-")
            self.provider_calls.labels(
                provider, action.op.value, "ok" if outcome.ok else "failed"
            ).inc()

    def exposition(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class CountingTransport(httpx.HTTPTransport):
    """The GitHub client's transport, counting each answer by status class."""

    def __init__(self, counter: Counter) -> None:
        super().__init__()
        self._counter = counter

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        try:
            response = super().handle_request(request)
        except httpx.HTTPError:
            self._counter.labels("error").inc()
            raise
        self._counter.labels(f"{response.status_code // 100}xx").inc()
        return response
