"""The SageMaker provider (DESIGN §10): training jobs through boto3 (`create_training_job`,
`describe_training_job`, `list_training_jobs`, `stop_training_job`; logs from CloudWatch Logs).

The `TrainingJobName` is a function of (repository id, job, revision, attempt): the service
refuses a second job with one name (`ResourceInUse`), so a crashed or racing submit never starts
a second copy and adoption is one `DescribeTrainingJob`. Tags carry the ownership marks (§9);
list answers carry only names, so a run seen in a list is judged by its name (which holds the
repository's scope), one described (every terminal run, and every adoption) by its tags too.
botocore's own retries are off so that the one retry layer (`trainops.retry`) waits on
`ThrottlingException`.

The provider is the `Provider` protocol's face; the work is in its neighbours: `names` (job
names, tags, `check_run`, `not_owned`), `api` (clients, the one call, describe and list),
`request` (the create request) and `observe` (a job as an `Observation`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

from trainops.errors import OutcomeUnknown, Problem, ProviderError
from trainops.manifest import SageMakerConfig, SageMakerSpec
from trainops.providers import marks
from trainops.providers.base import Intent, Listing, Observation, RunRef, Submission
from trainops.providers.sagemaker import listing
from trainops.providers.sagemaker.api import Answer, Api, Transport
from trainops.providers.sagemaker.names import (
    NAME,
    intent_of,
    not_owned,
    tags_name,
    training_job_name,
)
from trainops.providers.sagemaker.observe import ACTIVE, observation, oldest
from trainops.providers.sagemaker.request import training_request
from trainops.retry import Budget, Policy

LOG_GROUP = "/aws/sagemaker/TrainingJobs"


class SageMakerProvider:
    """Training jobs in one AWS account and region. Every method is safe to repeat."""

    name = "sagemaker"
    # The name is the claim: a job the service does not know a while after its intent was
    # never created (a create is answered in seconds).
    adoption_grace = 120.0

    def __init__(
        self,
        config: SageMakerConfig | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
        budget: Budget | None = None,
        clock: Callable[[], float] = time.time,
        clock_skew: float = 300.0,
    ) -> None:
        self.config = config or SageMakerConfig()
        self.retry = Policy(budget=budget or Budget(sleep=sleep), max_attempts=6, base=0.5, cap=8)
        self._clock = clock
        self.clock_skew = clock_skew
        self.calls: dict[str, int] = {}  # API calls by operation (benchmarks)
        self.api = Api(self.retry, self.calls)

    @classmethod
    def from_config(cls, config: SageMakerConfig, **kw: Any) -> SageMakerProvider:
        return cls(config, **kw)

    # ---- Availability, checks ---------------------------------------------------------------

    def unavailable(self) -> str:
        if not self.config.role_arn:
            return "providers.sagemaker.role_arn is not set in trainops.yaml"
        if not self.config.output_uri:
            return "providers.sagemaker.output_uri is not set in trainops.yaml"
        return ""

    def check(self, job: Any, lock: Any) -> list[Problem]:
        return []  # the input's conversion is checked by validate (trainops.hyperparameters)

    # ---- Provider protocol ------------------------------------------------------------------

    def submit(self, submission: Submission) -> RunRef:
        job = submission.job
        spec = job.spec
        if not isinstance(spec, SageMakerSpec):
            raise ProviderError(f"job {job.name!r} is not a SageMaker job")
        if self.unavailable():
            raise _refused(self.unavailable())
        name = training_job_name(
            job.name, submission.revision, submission.attempt, submission.repository
        )
        what = f"creating SageMaker training job {name}"
        try:
            self.api.call(
                "sagemaker",
                "create_training_job",
                what,
                **training_request(self.config, name, submission),
            )
        except Answer as answer:
            if answer.code != "ResourceInUse":
                raise _refused(f"{what}: {answer.code}: {answer.message}") from None
            # Already submitted (a lost answer, a racing reconciler): ours if its tags say so.
            found = self.api.describe(name, what)
            intent = intent_of(submission)
            if found is None or not_owned(name, found["tags"], intent):
                raise _refused(f"{what}: the account holds another job with this name") from None
            return RunRef(name, found["created"] or self._clock())
        except Transport as exc:
            raise OutcomeUnknown(
                f"{what}: outcome unknown ({exc})",
                "the next apply describes the job by its name (adoption)",
            ) from None
        return RunRef(name, self._clock())

    def observe(self, run_ids: Collection[str]) -> dict[str, Observation]:
        """`ListTrainingJobs` of the active statuses (paged by 100, filtered by the asked names'
        repository scope and, when `run_ids` maps ids to creation times, created after the
        oldest), then one `DescribeTrainingJob` (with its tags) for each asked job the lists
        did not show: terminal ones, whose metrics, artifacts and billable time only a describe
        carries; a terminal run is not observed again."""
        wanted = {r for r in run_ids if NAME.match(r)}
        found: dict[str, Observation] = {}
        if not wanted:
            return found
        since = oldest(run_ids, wanted)
        for suffix in sorted({r.rsplit("-", 1)[1] for r in wanted}):
            for status in ACTIVE:
                for summary in self.api.list_jobs(status, suffix, since):
                    run_id = summary.get("TrainingJobName")
                    if run_id in wanted and run_id not in found:
                        found[run_id] = observation(summary, None)
        for run_id in sorted(wanted - found.keys()):
            one = self.api.describe(run_id, f"describing SageMaker training job {run_id}")
            if one is not None:
                found[run_id] = observation(one["job"], one["tags"])
        return found

    def cancel(self, run_id: str) -> None:
        """`StopTrainingJob`, only of a job whose tags are the marks of its name (DESIGN §9:
        never on the word of a state file, nor of a list that shows no tags). Idempotent: a
        job already stopping or ended, or unknown, is left."""
        if not NAME.match(run_id):
            return
        what = f"stopping SageMaker training job {run_id}"
        one = self.api.describe(run_id, what)
        if one is None:
            return
        if tags_name(one["tags"]) != run_id:
            raise _refused(
                f"{what}: its tags are not trainops' marks of this run: left alone (DESIGN §9)",
                "a job of this name that trainops did not submit is never stopped by trainops",
            )
        if one["job"].get("TrainingJobStatus") != "InProgress":
            return
        try:
            self.api.call("sagemaker", "stop_training_job", what, TrainingJobName=run_id)
        except Answer as answer:
            one = self.api.describe(run_id, what)
            if one is None or one["job"].get("TrainingJobStatus") not in ("InProgress",):
                return
            raise ProviderError(f"{what}: {answer.code}") from None
        except Transport as exc:
            raise ProviderError(f"{what}: {exc}", "run again: a stop is idempotent") from None

    def logs(self, run_id: str, tail: int = 50) -> str:
        """The job's CloudWatch streams (`<name>/algo-N-...`), each read from its end."""
        if not NAME.match(run_id) or tail <= 0:
            return ""
        what = f"reading the log of SageMaker training job {run_id}"
        try:
            streams = self.api.call(
                "logs",
                "describe_log_streams",
                what,
                logGroupName=LOG_GROUP,
                logStreamNamePrefix=f"{run_id}/",
            ).get("logStreams", [])
            events: list[tuple[int, int, str]] = []
            for n, stream in enumerate(streams[:50]):
                answer = self.api.call(
                    "logs",
                    "get_log_events",
                    what,
                    logGroupName=LOG_GROUP,
                    logStreamName=stream["logStreamName"],
                    startFromHead=False,
                    limit=min(tail, 10_000),
                )
                events += [
                    (e.get("timestamp", 0), n, e.get("message", "")) for e in answer["events"]
                ]
        except Answer as answer:
            if answer.code == "ResourceNotFoundException":
                return ""
            raise ProviderError(f"{what}: {answer.code}") from None
        except Transport as exc:
            raise ProviderError(f"{what}: {exc}") from None
        lines = [m.rstrip("\n") for _t, _n, m in sorted(events)]
        return "\n".join(lines[-tail:])

    def owns(self, intent: Intent, seen: Observation) -> str:
        tags = seen.marks.get("tags")
        if not isinstance(tags, Mapping):
            if seen.health.terminal:  # what delivery and promotion act on: tags, always
                return "its tags were not read"
            tags = None
        return not_owned(seen.run_id, tags, intent)

    def find(self, intent: Intent) -> RunRef | None:
        """Adoption: one describe of the intent's name; ours when its tags say so."""
        name = training_job_name(intent.job, intent.revision, intent.attempt, intent.repository)
        if name in intent.taken:
            return None
        one = self.api.describe(name, f"looking up SageMaker training job {name}")
        if one is None or not_owned(name, one["tags"], intent):
            return None
        return RunRef(name, one["created"] or intent.created_at)

    # ---- Runs nobody declared (DESIGN §20) ---------------------------------------------------

    def list_runs(self, probes: Sequence[Intent], max_calls: int) -> Listing:
        """`Listable`: `Search` pages of this repository's jobs and of those writing under
        `output_uri`, judged against `probes` (`listing`)."""
        return listing.list_runs(self.api, self.config.output_uri, probes, max_calls)

    def claims(self, probe: Intent, seen: Observation) -> str:
        """`Listable`, for `adopt`: the job's tags name `probe`'s job, revision and input at
        their attempt and this repository, and its name is the one they make. A running job
        observed from a list (no tags there) has its tags read first (one describe)."""
        tags = listing.seen_tags(seen)
        if tags is None:
            one = self.api.describe(seen.run_id, f"reading the tags of {seen.run_id}")
            if one is None:
                return "the service has no training job of that name"
            tags = one["tags"]
        return listing.claims(probe, seen.run_id, tags)

    def attempt_of(self, seen: Observation) -> int | None:
        """`Attempted`: the attempt its tags name, or (a list summary: no tags) its name."""
        tags = listing.seen_tags(seen)
        if tags is not None:
            return marks.attempt_named(tags)
        named = seen.run_id.split("-")[-2] if NAME.match(seen.run_id) else ""
        return marks.attempt_named({marks.ATTEMPT: named})

    def output_prefix(self, run_id: str) -> str | None:
        """`OutputPrefix`: `<output_uri>/<name>/output/`, where SageMaker writes model.tar.gz."""
        if not self.config.output_uri or not NAME.match(run_id):
            return None
        return f"{self.config.output_uri}/{run_id}/output/"


def _refused(message: str, hint: str = "") -> ProviderError:
    error = ProviderError(message, hint)
    error.retryable = False  # type: ignore[attr-defined]
    return error
