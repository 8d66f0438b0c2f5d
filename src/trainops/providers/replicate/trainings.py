"""A Replicate training's JSON as trainops's values (pure): its id, its `Observation`, its
metrics, whether it is the training an intent made, and whether a recorded run could be one.

Reads parse raw JSON because the official client's `Training` model rejects the API's `aborted`
status (DESIGN §10): one aborted training in a page must not break `observe`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from typing import Any

from trainops.errors import ProviderError
from trainops.manifest import canonical_json
from trainops.providers.base import Intent, Observation
from trainops.providers.replicate.http import NotFound, timestamp
from trainops.state.model import Health

HEALTH = {
    "starting": Health.PENDING,
    "processing": Health.RUNNING,
    "succeeded": Health.SUCCEEDED,
    "failed": Health.FAILED,
    "canceled": Health.CANCELED,
    "aborted": Health.FAILED,  # terminated before it started: a resubmission may well work
}
TRAINING_ID = re.compile(r"[A-Za-z0-9_-]+")
# What `owns` reads of a training (the API returns no destination field: see the ref notes).
MARKS = ("model", "version", "input", "created_at", "source", "output")
# Replicate's own timing of a training, not what the training measured: `predict_time` (what it
# bills) and `total_time` (queue included). The API's docs: "a `metrics` object with a
# `predict_time` property ... will also include a `total_time` property" (shared/ref/README.md).
TIMING = frozenset({"predict_time", "total_time"})


def training_path(run_id: str) -> str:
    """The API path of a training; `NotFound` for an id Replicate could not have issued."""
    if not TRAINING_ID.fullmatch(run_id):
        raise NotFound(run_id)
    return f"/v1/trainings/{run_id}"


def is_training_id(value: Any) -> bool:
    return isinstance(value, str) and TRAINING_ID.fullmatch(value) is not None


def check_run(job: str, run: Any) -> str:
    """Why a recorded run cannot be a Replicate training (empty when it can): an id Replicate
    could have issued, and outputs that are URLs or references, never a local file."""
    if run.run_id and not TRAINING_ID.fullmatch(run.run_id):
        return f"run id {run.run_id!r} is not a Replicate training id"
    for key, value in sorted(run.outputs.items()):
        url = "://" in value
        if value.startswith("/") or (url and not value.startswith(("https://", "http://"))):
            return f"output {key!r} ({value}) is not a Replicate output"
    return ""


def observation(item: Mapping[str, Any], asked: str | None = None) -> Observation:
    """A training's JSON as an `Observation`; `ProviderError` when it has no valid id (or not
    the id asked for): nothing is recorded or acted on for an answer that names no run."""
    if not is_training_id(item.get("id")) or (asked is not None and item["id"] != asked):
        got = item.get("id")
        raise ProviderError(
            f"Replicate answered a training without a valid id (asked for {asked or 'a list'}, "
            f"got id {got!r:.80})",
            "the service answered out of shape; run again later",
        )
    status = str(item.get("status", ""))
    # An unknown status is taken as not finished: never resubmit on a word we do not know.
    health = HEALTH.get(status, Health.PENDING)
    output = item.get("output")
    outputs = {}
    if isinstance(output, Mapping):
        outputs = {k: output[k] for k in ("weights", "version") if isinstance(output.get(k), str)}
    metrics = item.get("metrics") if isinstance(item.get("metrics"), Mapping) else {}
    billed = metrics.get("predict_time") if metrics else None
    error = str(item.get("error") or "").strip().splitlines()
    message = error[-1] if error else ""
    if status == "aborted" and not message:
        message = "aborted by Replicate before it started"
    return Observation(
        run_id=str(item["id"]),
        health=health,
        started_at=timestamp(item.get("started_at")),
        completed_at=timestamp(item.get("completed_at")),
        created_at=timestamp(item.get("created_at")),
        billed_seconds=float(billed) if isinstance(billed, int | float) else None,
        outputs=outputs,
        metrics=run_metrics(metrics or {}, output) if health is Health.SUCCEEDED else {},
        error=message[:500],
        retryable=True,
        marks={k: item.get(k) for k in MARKS},
    )


def run_metrics(training: Mapping[str, Any], output: Any) -> dict[str, float]:
    """DESIGN §19: the training's metrics beyond Replicate's own timing (`TIMING`), then any
    under `metrics` in its output; numbers only, bounded (`trainops.metrics`)."""
    from trainops import metrics

    found = {k: v for k, v in training.items() if k not in TIMING}
    if isinstance(output, Mapping) and isinstance(output.get("metrics"), Mapping):
        found.update(output["metrics"])
    return metrics.clean(found)


def matches(
    item: Mapping[str, Any],
    model: str,
    version: str,
    intent: Intent,
    files: Callable[[], Mapping[str, str]] | None = None,
) -> bool:
    """Whether the training is the one `intent` made: same model, version prefix and input hash
    (a data file's URL counts as the package digest `files` maps it to), destination not
    contradicted by the version its output names."""
    if model and item.get("model") != model:
        return False
    if version and not str(item.get("version", "")).startswith(version):
        return False
    if not intent.input_hash or not isinstance(item.get("input"), Mapping):
        return False
    given = item["input"]
    if not same_input(given, intent.input_hash):
        from trainops.data import placeholder_of

        uploaded = files() if files and any(is_url(v) for v in given.values()) else {}
        staged = {
            k: placeholder_of(uploaded[v]) if isinstance(v, str) and v in uploaded else v
            for k, v in given.items()
        }
        if staged == given or not same_input(staged, intent.input_hash):
            return False
    output = item.get("output")
    produced = output.get("version") if isinstance(output, Mapping) else None
    # The API's trainings carry no `destination` field (shared/ref/README.md): where a training
    # went is known from the version its output names, once it has one.
    destination = str(produced).partition(":")[0] if isinstance(produced, str) else None
    return not (intent.destination and destination and destination != intent.destination)


def same_input(given: Mapping[str, Any], input_hash: str) -> bool:
    return hashlib.sha256(canonical_json(given).encode()).hexdigest().startswith(input_hash)


def is_url(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(("https://", "http://"))
