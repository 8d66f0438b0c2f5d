"""The Hugging Face Jobs provider (DESIGN §10): jobs through the official `huggingface_hub` client.

The provider is the `Provider` protocol's face (`cancel`, `logs`, `owns`, `find` and its
settings); the work is in its neighbours: `http` (`HubCalls`: the client, the namespace, the one
retry layer, token-scrubbed errors), `submit` (`Submitter`: the one create), `observe`
(`Observer`: the active and finished lists, the inspects), `listing` (`Lister`: `status --all`)
and `labels` (the ownership marks
adoption lists by). The namespace comes from `trainops.yaml`.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from trainops.errors import Problem
from trainops.manifest import HF_DEFAULT_TIMEOUT
from trainops.providers.base import Intent, Observation, RunRef
from trainops.providers.huggingface.http import TOKEN_ENV, endpoint, is_job_id
from trainops.providers.huggingface.labels import labels_of, not_owned
from trainops.providers.huggingface.listing import Lister
from trainops.providers.huggingface.observe import LIST_PAGE
from trainops.providers.huggingface.submit import Submitter
from trainops.retry import Budget, Policy

if TYPE_CHECKING:
    from trainops.manifest import HuggingFaceConfig, Job


class HuggingFaceProvider(Submitter, Lister):
    """Jobs on Hugging Face. The token is read from `HF_TOKEN` on first use and never appears in
    an error message."""

    adoption_hint = (
        "the next apply looks for the job by its labels (adoption) instead of submitting again"
    )

    name = "huggingface"
    # No documented bound on how soon a created job shows in the (label-filtered) list: a job
    # whose create answer was lost may still surface later. DESIGN §8's 10 minutes covers the
    # emulator's simulated list lag and leaves the service minutes of margin; a shorter grace
    # risks a second job for one attempt, a longer one only delays a resubmission.
    adoption_grace = 600.0

    def __init__(
        self,
        *,
        namespace: str | None = None,
        environ: Mapping[str, str] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        max_attempts: int = 6,
        max_backoff: float = 8.0,
        budget: Budget | None = None,
        clock_skew: float = 60.0,
        list_page: int = LIST_PAGE,
        default_timeout: int = HF_DEFAULT_TIMEOUT,
    ) -> None:
        self._environ = os.environ if environ is None else environ
        self.endpoint = endpoint(self._environ)
        self.namespace = namespace
        self._sleep = sleep
        self._rng = rng or random.Random()
        self.max_attempts = max_attempts
        self.max_backoff = max_backoff
        # The one retry layer (trainops.retry), honouring the Hub's `RateLimit: ...;t=N` and
        # `Retry-After`; waits are charged to the pass's budget.
        self.retry = Policy(
            budget=budget or Budget(sleep=sleep),
            max_attempts=max_attempts,
            base=0.5,
            cap=max_backoff,
            rng=self._rng,
        )
        self.clock_skew = clock_skew
        self.list_page = list_page
        self.default_timeout = default_timeout
        self._api: Any = None
        self._token = ""
        self.calls = 0  # HTTP requests made through the client (benchmarks)

    @classmethod
    def from_config(cls, config: HuggingFaceConfig, **kw: Any) -> HuggingFaceProvider:
        kw.setdefault("default_timeout", config.default_timeout)
        return cls(namespace=config.namespace, **kw)

    # ---- Provider protocol ------------------------------------------------------------------

    def unavailable(self) -> str:
        if not self._environ.get(TOKEN_ENV):
            return f"{TOKEN_ENV} is not set"
        if not self.namespace:
            return "providers.huggingface.namespace is not set in trainops.yaml"
        return ""

    def check(self, job: Job, lock: Any) -> list[Problem]:
        """Nothing of its own: the flavor (HF_FLAVORS) needs no disk, so `validate/jobs.py` checks
        it for every source, a commit's manifests too (this check runs on the working tree only)."""
        return []

    def cancel(self, run_id: str) -> None:
        """Idempotent: a finished job is left as it is; an unknown one is ignored."""
        if not is_job_id(run_id):
            return
        api, ns = self._client(), self._namespace()
        self._retrying("cancel job", lambda: api.cancel_job(job_id=run_id, namespace=ns))

    def logs(self, run_id: str, tail: int = 50) -> str:
        if not is_job_id(run_id) or tail <= 0:
            return ""
        api, ns = self._client(), self._namespace()

        def fetch() -> list[str]:
            return list(api.fetch_job_logs(job_id=run_id, namespace=ns, tail=tail))

        lines = self._retrying("fetch job logs", fetch) or []
        return "\n".join(str(line).rstrip("\n") for line in lines[-tail:])

    def owns(self, intent: Intent, seen: Observation) -> str:
        """`Owned`: the job's labels, as observe read them, are this record's marks."""
        labels = seen.marks.get("labels")
        return not_owned(labels if isinstance(labels, Mapping) else {}, intent)

    def find(self, intent: Intent) -> RunRef | None:
        """Adoption: the job carrying this intent's labels (and this repository's, or none:
        `not_owned`), created at or after the intent (allowing `clock_skew`), not already bound
        to another run. The earliest wins."""
        labels = labels_of(intent.job, intent.revision, intent.attempt, intent.input_hash)
        picks: list[tuple[float, str]] = []
        for item in self._list(labels, None):
            created = item["created"]
            if created is None or item["id"] in intent.taken:
                continue
            if not_owned(item["labels"], intent, adopting=True):
                continue  # a server that ignored the filter, or another repository's job
            if created >= intent.created_at - self.clock_skew:
                picks.append((created, item["id"]))
        if not picks:
            return None
        created, run_id = min(picks)
        return RunRef(run_id, created)


def check_run(job: str, run: Any) -> str:
    """Why a recorded run cannot be an HF job of `job` (empty when it can)."""
    if run.run_id and not is_job_id(run.run_id):
        return f"run id {run.run_id!r} is not a Hugging Face job id"
    for key, value in sorted(run.outputs.items()):
        if "://" in value or value.startswith("/"):
            return f"output {key!r} ({value}) is not a Hub revision"
    return ""
