"""Submitting a Hugging Face job: one `run_job` with its labels, environment, secrets and timeout.
A create that got 429 is retried (the service said no); one whose answer was lost (5xx, dropped
connection) raises `OutcomeUnknown` and is adopted later (`find`)."""

from __future__ import annotations

import json
import time

from trainops.errors import ProviderError
from trainops.manifest import HuggingFaceSpec
from trainops.providers.base import RunRef, Submission
from trainops.providers.huggingface.http import (
    HubCalls,
    detail_of,
    is_job_id,
    never_sent,
    status_of,
)
from trainops.providers.huggingface.labels import labels_of


class SubmissionRejected(ProviderError):
    """The service refused the job for a reason a resubmission cannot fix (400, 403, 422)."""

    retryable = False


class Submitter(HubCalls):
    """`submit`: the one create of a job."""

    default_timeout: int

    def submit(self, submission: Submission) -> RunRef:
        spec = submission.job.spec
        if not isinstance(spec, HuggingFaceSpec):
            raise ProviderError(f"job {submission.job.name!r} is not a Hugging Face job")
        api, namespace = self._client(), self._namespace()
        job, rev, attempt = submission.job.name, submission.revision, submission.attempt
        environment = {
            "TRAINOPS_JOB": job,
            "TRAINOPS_REVISION": rev,
            "TRAINOPS_ATTEMPT": str(attempt),
            "TRAINOPS_INPUT": json.dumps(dict(submission.input), sort_keys=True),
        }
        if spec.output_repo:
            environment["TRAINOPS_OUTPUT_REPO"] = spec.output_repo
        # spec.env values travel as secrets: the service keeps them out of the job's JSON.
        secrets = {n: self._environ[n] for n in spec.env if n in self._environ}
        what = f"creating the HF job of {job} (attempt {attempt})"
        for n in range(1, self.max_attempts + 1):
            try:
                self.calls += 1
                info = api.run_job(
                    image=spec.image,
                    command=list(spec.command),
                    env=environment,
                    secrets=secrets or None,
                    flavor=spec.hardware or "cpu-basic",
                    # Always a timeout: sent none, the service stops the job at 30 minutes.
                    timeout=job_timeout(spec, self.default_timeout),
                    labels=labels_of(
                        job, rev, attempt, submission.input_hash, submission.repository
                    ),
                    namespace=namespace,
                )
            except Exception as exc:
                status = status_of(exc)
                if status == 429 and self._pause(n, exc):
                    continue
                if status == 429:
                    raise self._error(f"{what}: still rate limited after {n} attempts") from None
                if status in (400, 403, 404, 422):
                    raise SubmissionRejected(
                        self._redact(f"{what}: {status} {detail_of(exc)}")
                    ) from None
                if status in (401,):
                    raise self._error(f"{what}: 401 the token was refused") from None
                if never_sent(exc) and self._pause(n, exc):
                    continue  # nothing reached the service: trying again cannot make two jobs
                raise self._unknown(what, f"{status or type(exc).__name__}") from None
            if not is_job_id(getattr(info, "id", None)):
                raise self._unknown(what, "the answer has no valid job id")
            created = info.created_at.timestamp() if info.created_at else time.time()
            return RunRef(str(info.id), created)
        raise self._error(f"{what}: gave up")  # pragma: no cover


def job_timeout(spec: HuggingFaceSpec, default: int) -> int:
    """The seconds a job may run on the service: its `budget.max_duration`, else `default`."""
    return spec.budget.max_duration or default
