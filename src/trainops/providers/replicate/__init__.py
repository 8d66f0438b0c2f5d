"""The Replicate provider (DESIGN §10), a package by noun: `provider` (the `Provider` protocol's
face), `http` (client, pacing, the one retry layer), `submit`, `observe`, `adopt`, `files`
(`spec.data`), `deploy`, `trainings` (a training's JSON as values)."""

from trainops.providers.replicate.http import LIMITS, Pacer, endpoint
from trainops.providers.replicate.provider import ReplicateProvider
from trainops.providers.replicate.submit import SubmissionRejected, webhook_params
from trainops.providers.replicate.trainings import check_run

__all__ = [
    "LIMITS",
    "Pacer",
    "ReplicateProvider",
    "SubmissionRejected",
    "check_run",
    "endpoint",
    "webhook_params",
]
