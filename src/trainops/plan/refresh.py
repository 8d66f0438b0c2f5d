"""Observations folded into the record (DESIGN §6, §7): what each provider said about an active
run replaces what the state branch recorded, and its cost so far is priced.

Inputs: the recorded `JobState`s and the providers' `Observation`s by run id (the reconciler's
observe phase). Outputs: the refreshed `JobState`s the planner plans on. A pure merge.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from trainops import cost
from trainops.providers.base import Observation
from trainops.state.model import JobState


def refresh(
    state: Mapping[str, JobState],
    observed: Mapping[str, Observation],
    prices: Mapping[str, float] | None = None,
) -> dict[str, JobState]:
    """Fold provider observations into the recorded runs (a pure merge)."""
    out = dict(state)
    for name, job_state in state.items():
        for run in job_state.runs:
            if run.run_id is None or run.run_id not in observed:
                continue
            obs = observed[run.run_id]
            updated = replace(
                run,
                health=obs.health,
                started_at=obs.started_at or run.started_at,
                completed_at=obs.completed_at or run.completed_at,
                billed_seconds=obs.billed_seconds
                if obs.billed_seconds is not None
                else run.billed_seconds,
                outputs=dict(obs.outputs) or run.outputs,
                metrics=dict(obs.metrics) or run.metrics,
                error=obs.error or run.error,
                retryable=obs.retryable,
                detail=obs.detail[:80] if obs.health.active else "",
                progress=dict(obs.progress) if obs.health.active else {},
            )
            if prices is not None and updated.billed_seconds is not None:
                updated = replace(updated, cost_usd=cost.run_cost(updated, prices, 0.0))
            # detail and progress are not compared
            if updated != run or (updated.detail, updated.progress) != (run.detail, run.progress):
                out[name] = out[name].with_run(updated)
    return out
