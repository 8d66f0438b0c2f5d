"""The Hugging Face Jobs provider (DESIGN §10), a package by noun: `provider`
(`HuggingFaceProvider`, the protocol's face: cancel, logs, owns, find), `http` (client,
namespace, the one retry layer, what an error says), `submit` (the one create), `observe` (the
lists and inspects, a job as an `Observation`), `labels` (the ownership marks)."""

from trainops.providers.huggingface.http import endpoint
from trainops.providers.huggingface.labels import intent_id, labels_of, not_owned
from trainops.providers.huggingface.provider import HuggingFaceProvider, check_run
from trainops.providers.huggingface.submit import SubmissionRejected, job_timeout

__all__ = [
    "HuggingFaceProvider",
    "SubmissionRejected",
    "check_run",
    "endpoint",
    "intent_id",
    "job_timeout",
    "labels_of",
    "not_owned",
]
