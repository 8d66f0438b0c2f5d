"""The SageMaker provider (DESIGN §10): training jobs through boto3 (`create_training_job`,
`describe_training_job`, `list_training_jobs`, `stop_training_job`; logs from CloudWatch Logs).

The `TrainingJobName` is a function of (repository id, job, revision, attempt): the service
refuses a second job with one name (`ResourceInUse`), so a crashed or racing submit never starts
a second copy and adoption is one `DescribeTrainingJob`. Tags carry the ownership marks (§9);
list answers carry only names, so a run seen in a list is judged by its name (which holds the
repository's scope), one described (every terminal run, and every adoption) by its tags too.
Region, credentials and endpoints come from the standard AWS environment (boto3's own chain,
`AWS_ENDPOINT_URL_SAGEMAKER`, `AWS_ENDPOINT_URL_CLOUDWATCH_LOGS`); botocore's own retries are
off so that the one retry layer (`trainops.retry`) waits on `ThrottlingException`.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable, Collection, Mapping
from typing import Any

from trainops.errors import OutcomeUnknown, Problem, ProviderError
from trainops.hyperparameters import convert
from trainops.manifest import SageMakerConfig, SageMakerSpec
from trainops.providers.base import (
    Health,
    Intent,
    Observation,
    RunRef,
    Submission,
    marks_mismatch,
)
from trainops.repoid import scope
from trainops.retry import Budget, Policy

LOG_GROUP = "/aws/sagemaker/TrainingJobs"
LIST_PAGE = 100  # ListTrainingJobs MaxResults: at most 100
_ROOM = 35  # characters of the name the job's own name may take (63 less the rest)
_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,34}-[0-9a-f]{12}-[1-9][0-9]{0,3}-[0-9a-f]{10}\Z")
_THROTTLED = frozenset({"ThrottlingException", "Throttling", "ThrottledException"})
_NEVER_SENT = ("NoCredentialsError", "NoRegionError", "ParamValidationError")
TAGS = ("trainops-job", "trainops-revision", "trainops-attempt")
ACTIVE = ("InProgress", "Stopping")

__all__ = ["SageMakerProvider", "check_run", "tags_name", "training_job_name"]


def training_job_name(job: str, revision: str, attempt: int, repository: str = "") -> str:
    """`<job>-<revision>-<attempt>-<repository scope>`, at most 63 of `[a-zA-Z0-9-]`. A job name
    of `_ROOM` characters or more is cut and followed by 8 hex of its sha256 (names shorter than
    `_ROOM` stay whole: the two forms never meet)."""
    return _name(job, revision, attempt, scope(repository))


def _name(job: str, revision: str, attempt: int | str, scoped: str) -> str:
    part = job
    if len(job) >= _ROOM:
        part = f"{job[: _ROOM - 9]}-{hashlib.sha256(job.encode()).hexdigest()[:8]}"
    return f"{part}-{revision}-{attempt}-{scoped}"


def tags_name(tags: Mapping[str, str]) -> str:
    """The training job name the ownership tags describe ("" when they are not trainops'):
    the name a job must have for its tags to be the marks of that name's run."""
    marks = [tags.get(k) for k in (*TAGS, "trainops-repository")]
    if not all(isinstance(m, str) and m for m in marks):
        return ""
    job, revision, attempt, scoped = (str(m) for m in marks)
    return _name(job, revision, attempt, scoped)


def check_run(job: str, run: Any) -> str:
    """Why a recorded run cannot be a SageMaker run of `job` ("" when it can): its name is the
    one of this job's (revision, attempt) for some repository (which one, only the tags tell),
    and its outputs lie under `<run-id>/output/`."""
    expected = training_job_name(job, run.revision, run.attempt)[:-10]
    if run.run_id and not (run.run_id.startswith(expected) and _NAME.match(run.run_id)):
        return f"run id {run.run_id!r} is not a SageMaker job name of {job}"
    for key, value in sorted(run.outputs.items()):
        parts = value.removeprefix("s3://").split("/")
        if not value.startswith("s3://") or ".." in parts or f"/{run.run_id}/output/" not in value:
            return f"output {key!r} ({value}) is not in the run's own output folder"
    return ""


def not_owned(name: str, tags: Mapping[str, str] | None, intent: Intent) -> str:
    """Why the training job `name` with `tags` (None: not read) is not `intent`'s run."""
    ours = training_job_name(intent.job, intent.revision, intent.attempt, intent.repository)
    if name != ours:
        return f"its name is not this repository's ({intent.repository!r}) name for the attempt"
    if tags is None:
        # Seen in a list (no tags there): the name, a function of the repository, is all it
        # shows. Enough to follow a running job; every act on one reads its tags first
        # (`cancel`; adoption, `find`), and a finished job is always described (`owns`).
        return ""
    wanted = {
        "trainops-job": intent.job,
        "trainops-revision": intent.revision,
        "trainops-attempt": str(intent.attempt),
        "trainops-repository": scope(intent.repository),
    }
    return marks_mismatch(wanted, tags, "tag", input_hash=intent.input_hash)


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
        self._clients: dict[str, Any] = {}
        self.calls: dict[str, int] = {}  # API calls by operation (benchmarks)

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
            self._call("sagemaker", "create_training_job", what, **self._request(name, submission))
        except _Answer as answer:
            if answer.code != "ResourceInUse":
                raise _refused(f"{what}: {answer.code}: {answer.message}") from None
            # Already submitted (a lost answer, a racing reconciler): ours if its tags say so.
            found = self._describe(name, what)
            intent = _intent_of(submission)
            if found is None or not_owned(name, found["tags"], intent):
                raise _refused(f"{what}: the account holds another job with this name") from None
            return RunRef(name, found["created"] or self._clock())
        except _Transport as exc:
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
        wanted = {r for r in run_ids if _NAME.match(r)}
        found: dict[str, Observation] = {}
        if not wanted:
            return found
        since = _oldest(run_ids, wanted)
        for suffix in sorted({r.rsplit("-", 1)[1] for r in wanted}):
            for status in ACTIVE:
                for summary in self._list(status, suffix, since):
                    run_id = summary.get("TrainingJobName")
                    if run_id in wanted and run_id not in found:
                        found[run_id] = self._observation(summary, None)
        for run_id in sorted(wanted - found.keys()):
            one = self._describe(run_id, f"describing SageMaker training job {run_id}")
            if one is not None:
                found[run_id] = self._observation(one["job"], one["tags"])
        return found

    def cancel(self, run_id: str) -> None:
        """`StopTrainingJob`, only of a job whose tags are the marks of its name (DESIGN §9:
        never on the word of a state file, nor of a list that shows no tags). Idempotent: a
        job already stopping or ended, or unknown, is left."""
        if not _NAME.match(run_id):
            return
        what = f"stopping SageMaker training job {run_id}"
        one = self._describe(run_id, what)
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
            self._call("sagemaker", "stop_training_job", what, TrainingJobName=run_id)
        except _Answer as answer:
            one = self._describe(run_id, what)
            if one is None or one["job"].get("TrainingJobStatus") not in ("InProgress",):
                return
            raise ProviderError(f"{what}: {answer.code}") from None
        except _Transport as exc:
            raise ProviderError(f"{what}: {exc}", "run again: a stop is idempotent") from None

    def logs(self, run_id: str, tail: int = 50) -> str:
        """The job's CloudWatch streams (`<name>/algo-N-...`), each read from its end."""
        if not _NAME.match(run_id) or tail <= 0:
            return ""
        what = f"reading the log of SageMaker training job {run_id}"
        try:
            streams = self._call(
                "logs",
                "describe_log_streams",
                what,
                logGroupName=LOG_GROUP,
                logStreamNamePrefix=f"{run_id}/",
            ).get("logStreams", [])
            events: list[tuple[int, int, str]] = []
            for n, stream in enumerate(streams[:50]):
                answer = self._call(
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
        except _Answer as answer:
            if answer.code == "ResourceNotFoundException":
                return ""
            raise ProviderError(f"{what}: {answer.code}") from None
        except _Transport as exc:
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
        one = self._describe(name, f"looking up SageMaker training job {name}")
        if one is None or not_owned(name, one["tags"], intent):
            return None
        return RunRef(name, one["created"] or intent.created_at)

    def output_prefix(self, run_id: str) -> str | None:
        """`OutputPrefix`: `<output_uri>/<name>/output/`, where SageMaker writes model.tar.gz."""
        if not self.config.output_uri or not _NAME.match(run_id):
            return None
        return f"{self.config.output_uri}/{run_id}/output/"

    # ---- internals --------------------------------------------------------------------------

    def _request(self, name: str, submission: Submission) -> dict[str, Any]:
        spec = submission.job.spec
        assert isinstance(spec, SageMakerSpec)
        params, channels = convert(submission.input)
        algorithm: dict[str, Any] = {"TrainingInputMode": "File"}
        if spec.image:
            algorithm["TrainingImage"] = spec.image
        else:
            algorithm["AlgorithmName"] = spec.algorithm
        runtime = spec.budget.max_duration or self.config.default_timeout
        stopping: dict[str, Any] = {"MaxRuntimeInSeconds": runtime}
        request: dict[str, Any] = {
            "TrainingJobName": name,
            "AlgorithmSpecification": algorithm,
            "RoleArn": self.config.role_arn,
            "HyperParameters": params,
            "OutputDataConfig": {"S3OutputPath": self.config.output_uri},
            "ResourceConfig": {
                "InstanceType": spec.hardware,
                "InstanceCount": spec.instance_count,
                "VolumeSizeInGB": self.config.volume_gb,
            },
            "StoppingCondition": stopping,
            "Tags": [{"Key": k, "Value": v} for k, v in _tags(submission).items()],
        }
        if channels:
            request["InputDataConfig"] = [
                {
                    "ChannelName": key,
                    "DataSource": {
                        "S3DataSource": {
                            "S3DataType": "S3Prefix",
                            "S3Uri": uri,
                            "S3DataDistributionType": "FullyReplicated",
                        }
                    },
                }
                for key, uri in channels.items()
            ]
        if self.config.vpc is not None:
            request["VpcConfig"] = {
                "Subnets": list(self.config.vpc.subnets),
                "SecurityGroupIds": list(self.config.vpc.security_group_ids),
            }
        if self.config.spot is not None:
            request["EnableManagedSpotTraining"] = True
            stopping["MaxWaitTimeInSeconds"] = max(self.config.spot.max_wait, runtime)
        return request

    def _observation(self, job: Mapping[str, Any], tags: Mapping[str, str] | None) -> Observation:
        status = str(job.get("TrainingJobStatus", ""))
        secondary = str(job.get("SecondaryStatus", ""))
        health = _health(status, secondary)
        error, retryable = "", True
        if health is Health.FAILED:
            reason = str(job.get("FailureReason") or "").strip().splitlines()
            error = (reason[0] if reason else f"the training job ended {secondary or status}")[:500]
            if secondary == "MaxRuntimeExceeded":
                error, retryable = "stopped by SageMaker at MaxRuntimeInSeconds", False
        elif health is Health.CANCELED:
            error, retryable = f"stopped ({secondary or status})", False
        billable = job.get("BillableTimeInSeconds")
        count = (job.get("ResourceConfig") or {}).get("InstanceCount") or 1
        billed = float(billable) * count if isinstance(billable, int | float) else None
        outputs: dict[str, str] = {}
        artifacts = (job.get("ModelArtifacts") or {}).get("S3ModelArtifacts")
        if health is Health.SUCCEEDED and isinstance(artifacts, str):
            outputs["weights"] = artifacts
        found_metrics = {
            str(m["MetricName"]): float(m["Value"])
            for m in job.get("FinalMetricDataList") or []
            if isinstance(m.get("Value"), int | float) and m.get("MetricName")
        }
        return Observation(
            run_id=str(job["TrainingJobName"]),
            health=health,
            # A list summary has no TrainingStartTime: a running job's creation stands in (the
            # cost so far counts from it, never less than billed).
            started_at=_ts(job.get("TrainingStartTime"))
            or (_ts(job.get("CreationTime")) if health is Health.RUNNING else None),
            completed_at=_ts(job.get("TrainingEndTime")) if health.terminal else None,
            billed_seconds=billed if health.terminal else None,
            outputs=outputs,
            metrics=found_metrics,
            error=error,
            retryable=retryable,
            detail=secondary if health.active else "",
            marks={"tags": dict(tags)} if tags is not None else {},
        )

    def _list(self, status: str, suffix: str, since: float | None) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {
            "StatusEquals": status,
            "NameContains": suffix,
            "MaxResults": LIST_PAGE,
        }
        if since is not None:
            kwargs["CreationTimeAfter"] = since
        for _page in range(10_000):
            try:
                answer = self._call("sagemaker", "list_training_jobs", "listing jobs", **kwargs)
            except (_Answer, _Transport) as exc:
                raise ProviderError(f"SageMaker: listing training jobs: {exc}") from None
            out += answer.get("TrainingJobSummaries", [])
            token = answer.get("NextToken")
            if not token:
                break
            kwargs["NextToken"] = token
        return out

    def _describe(self, name: str, what: str) -> dict[str, Any] | None:
        """The job and its tags, or None when the service has no job of that name."""
        try:
            job = self._call("sagemaker", "describe_training_job", what, TrainingJobName=name)
            answer = self._call("sagemaker", "list_tags", what, ResourceArn=job["TrainingJobArn"])
        except _Answer as answer:
            # An unknown name answers ValidationException "Requested resource not found."
            if answer.code in ("ResourceNotFound", "ValidationException"):
                return None
            raise ProviderError(f"{what}: {answer.code}") from None
        except _Transport as exc:
            raise ProviderError(f"{what}: {exc}") from None
        tags = {t["Key"]: t["Value"] for t in answer.get("Tags", [])}
        return {"job": job, "tags": tags, "created": _ts(job.get("CreationTime"))}

    def _client(self, service: str) -> Any:
        if service not in self._clients:
            import boto3
            from botocore.config import Config

            config = Config(
                retries={"mode": "standard", "total_max_attempts": 1},
                connect_timeout=10,
                read_timeout=60,
            )
            try:
                self._clients[service] = boto3.session.Session().client(service, config=config)
            except Exception as exc:
                raise ProviderError(
                    f"cannot set up a {service} client: {type(exc).__name__}",
                    "region and credentials come from the AWS environment (AWS_REGION, ...)",
                ) from None
        return self._clients[service]

    def _call(self, service: str, operation: str, what: str, **kwargs: Any) -> Any:
        """One API call, throttling retried by `trainops.retry`. An error answer raises
        `_Answer`; transport trouble (the request may have arrived) `_Transport`."""
        from botocore.exceptions import BotoCoreError, ClientError

        client = self._client(service)
        for attempt in range(1, 100):
            self.calls[operation] = self.calls.get(operation, 0) + 1
            try:
                return getattr(client, operation)(**kwargs)
            except ClientError as exc:
                error = exc.response.get("Error", {})
                code = str(error.get("Code", ""))
                if code in _THROTTLED and self.retry.pause(attempt, None):
                    continue
                raise _Answer(code, str(error.get("Message", ""))[:200]) from None
            except BotoCoreError as exc:
                if type(exc).__name__ in (
                    "NoCredentialsError",
                    "NoRegionError",
                    "ParamValidationError",
                ):
                    raise ProviderError(f"{what}: {exc}") from None
                raise _Transport(type(exc).__name__) from None
        raise ProviderError(f"{what}: still throttled")  # pragma: no cover


class _Answer(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code, self.message = code, message


class _Transport(Exception):
    pass


def _health(status: str, secondary: str) -> Health:
    if status == "InProgress":
        early = ("Starting", "Pending", "LaunchingMLInstances", "PreparingTrainingStack")
        return Health.PENDING if secondary in early or not secondary else Health.RUNNING
    if status == "Stopping":
        return Health.RUNNING
    if status == "Completed":
        return Health.SUCCEEDED
    if status == "Failed":
        return Health.FAILED
    if status == "Stopped":
        return (
            Health.FAILED
            if secondary in ("MaxRuntimeExceeded", "MaxWaitTimeExceeded")
            else (Health.CANCELED)
        )
    if status == "Deleting":
        return Health.CANCELED
    return Health.PENDING  # a status this client does not know: not finished


def _tags(submission: Submission) -> dict[str, str]:
    return {
        "trainops-job": submission.job.name,
        "trainops-revision": submission.revision,
        "trainops-attempt": str(submission.attempt),
        "trainops-input-hash": submission.input_hash,
        "trainops-repository": scope(submission.repository),
        **(
            {"trainops-source-commit": submission.source_commit} if submission.source_commit else {}
        ),
    }


def _intent_of(submission: Submission) -> Intent:
    return Intent(
        submission.job.name,
        submission.revision,
        submission.attempt,
        submission.input_hash,
        0.0,
        "sagemaker",
        repository=submission.repository,
    )


def _refused(message: str, hint: str = "") -> ProviderError:
    error = ProviderError(message, hint)
    error.retryable = False  # type: ignore[attr-defined]
    return error


def _ts(value: Any) -> float | None:
    stamp = getattr(value, "timestamp", None)
    return float(stamp()) if callable(stamp) else None


def _oldest(run_ids: Collection[str], wanted: Collection[str]) -> float | None:
    if not isinstance(run_ids, Mapping):
        return None
    times = [run_ids.get(r) for r in wanted]
    if not times or not all(isinstance(t, int | float) for t in times):
        return None
    return min(float(t) for t in times if t is not None) - 300.0
