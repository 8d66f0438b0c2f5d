"""Amazon SageMaker training jobs and CloudWatch Logs on 127.0.0.1, over the AWS JSON 1.1
protocol (`POST /`, `X-Amz-Target: SageMaker.<Operation>` or `Logs_20140328.<Operation>`,
errors as 400 with `{"__type": ..., "message": ...}`), for boto3 pointed at it through
`AWS_ENDPOINT_URL_SAGEMAKER` and `AWS_ENDPOINT_URL_CLOUDWATCH_LOGS` (botocore
`configprovider.py`, `_get_service_env_var_name`: `AWS_ENDPOINT_URL_<SERVICE ID>`, the Logs
service id "CloudWatch Logs" -> CLOUDWATCH_LOGS).

Behaviours, from the SageMaker API Reference (and shared/ref/README.md, "SageMaker"):
- CreateTrainingJob: a name already used in the account and region answers `ResourceInUse`
  ("Training job names must be unique within an AWS account and region"); requests are checked
  against botocore's service model (required members, name pattern, HyperParameters strings).
- DescribeTrainingJob of an unknown name: `ValidationException` "Requested resource not found."
- Lifecycle (DescribeTrainingJob, TrainingJobStatus / SecondaryStatus): InProgress with
  Starting -> Downloading -> Training -> Uploading, then Completed; Failed with FailureReason;
  StopTrainingJob: Stopping, then Stopped (SecondaryStatus Stopped); MaxRuntimeInSeconds
  exceeded: Stopped / MaxRuntimeExceeded. StopTrainingJob of a job not InProgress:
  ValidationException.
- BillableTimeInSeconds and TrainingTimeInSeconds once ended; FinalMetricDataList and
  ModelArtifacts.S3ModelArtifacts (`<S3OutputPath>/<name>/output/model.tar.gz`) on Completed.
- ListTrainingJobs: StatusEquals, NameContains, CreationTimeAfter, MaxResults (<= 100), NextToken;
  summaries carry name, arn, times and statuses only (no tags). ListTags(ResourceArn).
- Search (Resource TrainingJob): Filters on tags and text properties, And/Or, NextToken pages of
  at most 100, each record the whole job with its Tags (`op_Search`).
- Logs: group /aws/sagemaker/TrainingJobs, one stream per instance `<name>/algo-<n>-<epoch>`;
  GetLogEvents with startFromHead false returns the last `limit` events.
- `ThrottlingException` injected on demand.
Time is simulated: `advance(seconds)`.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.emulators._loopback import LoopbackEmulator

ACCOUNT, REGION = "123456789012", "us-east-1"
QUEUE, RUN, UPLOAD = 30.0, 300.0, 20.0  # seconds in Starting/Downloading, Training, Uploading


def _model(service: str) -> Any:
    import botocore.session

    return botocore.session.get_session().get_service_model(service)


@dataclass
class Job:
    name: str
    request: dict[str, Any]
    created: float
    fail: bool = False
    stop_at: float | None = None
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def arn(self) -> str:
        return f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:training-job/{self.name.lower()}"


class SageMakerEmulator(LoopbackEmulator):
    host, port, thread_name = "127.0.0.1", 0, "sagemaker-emulator"

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now
        self.jobs: dict[str, Job] = {}
        self.failing: set[str] = set()  # trainops job names whose runs fail
        self.calls: dict[str, int] = {}
        self.errors: list[str] = []
        self._faults: list[tuple[str, str]] = []  # (operation, kind)
        self._lock = threading.Lock()
        self._sm = _model("sagemaker")

    def env(self) -> dict[str, str]:
        return {
            "AWS_ENDPOINT_URL_SAGEMAKER": self.url,
            "AWS_ENDPOINT_URL_CLOUDWATCH_LOGS": self.url,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
        }

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds

    def inject(self, operation: str, kind: str) -> None:
        """`kind`: "throttle" (400 ThrottlingException, nothing done) or "lost" (done, then the
        connection is dropped without an answer)."""
        self._faults.append((operation, kind))

    # ---- the lifecycle ----------------------------------------------------------------------

    def _state(self, job: Job) -> tuple[str, str, float | None]:
        """(status, secondary status, end time)."""
        t = self.now - job.created
        limit = job.request["StoppingCondition"]["MaxRuntimeInSeconds"]
        end_ok = QUEUE + RUN + UPLOAD
        if job.stop_at is not None and job.stop_at - job.created < end_ok:
            if self.now < job.stop_at + 5:
                return "Stopping", "Stopping", None
            return "Stopped", "Stopped", job.stop_at + 5
        if job.fail and t >= QUEUE + 10:
            return "Failed", "Failed", job.created + QUEUE + 10
        if limit < QUEUE + RUN and t >= limit:
            return "Stopped", "MaxRuntimeExceeded", job.created + limit
        if t < QUEUE / 2:
            return "InProgress", "Starting", None
        if t < QUEUE:
            return "InProgress", "Downloading", None
        if t < QUEUE + RUN:
            return "InProgress", "Training", None
        if t < end_ok:
            return "InProgress", "Uploading", None
        return "Completed", "Completed", job.created + end_ok

    def describe(self, job: Job) -> dict[str, Any]:
        status, secondary, end = self._state(job)
        out: dict[str, Any] = {
            "TrainingJobName": job.name,
            "TrainingJobArn": job.arn,
            "TrainingJobStatus": status,
            "SecondaryStatus": secondary,
            "CreationTime": job.created,
            "LastModifiedTime": end or self.now,
            "AlgorithmSpecification": job.request["AlgorithmSpecification"],
            "RoleArn": job.request["RoleArn"],
            "HyperParameters": job.request.get("HyperParameters", {}),
            "OutputDataConfig": job.request["OutputDataConfig"],
            "ResourceConfig": job.request["ResourceConfig"],
            "StoppingCondition": job.request["StoppingCondition"],
            "ModelArtifacts": {"S3ModelArtifacts": ""},
        }
        if self.now - job.created >= QUEUE:
            out["TrainingStartTime"] = job.created + QUEUE
        if end is not None:
            out["TrainingEndTime"] = end
            billable = max(1, int(end - job.created - QUEUE / 2))
            out["TrainingTimeInSeconds"] = billable
            out["BillableTimeInSeconds"] = billable
        if status == "Failed":
            out["FailureReason"] = "AlgorithmError: exit code 3\nTraceback (most recent call last)"
        if status == "Completed":
            base = job.request["OutputDataConfig"]["S3OutputPath"].rstrip("/")
            out["ModelArtifacts"] = {"S3ModelArtifacts": f"{base}/{job.name}/output/model.tar.gz"}
            out["FinalMetricDataList"] = [
                {"MetricName": "train:loss", "Value": 0.25, "Timestamp": end}
            ]
        return out

    def log_events(self, job: Job) -> list[dict[str, Any]]:
        status, _secondary, end = self._state(job)
        last = end if end is not None else self.now
        lines = [(job.created + QUEUE, "Invoking script with the following command:")]
        lines += [(job.created + QUEUE + s, f"step {s} loss={1 / s:.3f}") for s in range(1, 6)]
        if status == "Failed":
            lines.append((job.created + QUEUE + 9, "ExecuteUserScriptError: exit code 3"))
        if status == "Completed":
            lines.append((job.created + QUEUE + RUN, "Training complete."))
        return [{"timestamp": int(t * 1000), "message": m} for t, m in lines if t <= last]

    # ---- operations -------------------------------------------------------------------------

    def handle(self, target: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        op = target.split(".", 1)[-1]
        self.calls[op] = self.calls.get(op, 0) + 1
        with self._lock:
            method = getattr(self, f"op_{op}", None)
            if method is None:
                return _error("UnknownOperationException", op)
            return method(body)

    def op_CreateTrainingJob(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        shape = self._sm.operation_model("CreateTrainingJob").input_shape
        missing = [m for m in shape.required_members if m not in body]
        if missing:
            return _error("ValidationException", f"missing {missing}")
        import re

        name = body["TrainingJobName"]
        if not re.fullmatch(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}", name):
            return _error("ValidationException", f"bad TrainingJobName {name!r}")
        if not all(isinstance(v, str) for v in body.get("HyperParameters", {}).values()):
            return _error("ValidationException", "HyperParameters values are strings")
        if name in self.jobs:
            # Names are unique per account and region (CreateTrainingJob, TrainingJobName).
            return _error("ResourceInUse", f"Training job names must be unique: {name}")
        tags = {t["Key"]: t["Value"] for t in body.get("Tags", [])}
        job = Job(name, body, self.now, tags=tags)
        job.fail = tags.get("trainops-job") in self.failing
        self.jobs[name] = job
        return 200, {"TrainingJobArn": job.arn}

    def op_DescribeTrainingJob(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        job = self.jobs.get(body.get("TrainingJobName", ""))
        if job is None:
            return _error("ValidationException", "Requested resource not found.")
        return 200, self.describe(job)

    def op_ListTags(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        job = next((j for j in self.jobs.values() if j.arn == body.get("ResourceArn")), None)
        if job is None:
            return _error("ValidationException", "Requested resource not found.")
        return 200, {"Tags": [{"Key": k, "Value": v} for k, v in job.tags.items()]}

    def op_StopTrainingJob(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        job = self.jobs.get(body.get("TrainingJobName", ""))
        if job is None:
            return _error("ValidationException", "Requested resource not found.")
        if self._state(job)[0] != "InProgress":
            return _error("ValidationException", "The job is not in progress.")
        job.stop_at = self.now
        return 200, {}

    def op_ListTrainingJobs(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        size = int(body.get("MaxResults", 10))
        if not 1 <= size <= 100:
            return _error("ValidationException", "MaxResults is 1-100")
        rows = sorted(self.jobs.values(), key=lambda j: (-j.created, j.name))
        out = []
        for job in rows:
            status, secondary, end = self._state(job)
            if body.get("StatusEquals") and status != body["StatusEquals"]:
                continue
            if body.get("NameContains") and body["NameContains"] not in job.name:
                continue
            if "CreationTimeAfter" in body and job.created <= float(body["CreationTimeAfter"]):
                continue
            out.append(
                {
                    "TrainingJobName": job.name,
                    "TrainingJobArn": job.arn,
                    "CreationTime": job.created,
                    "LastModifiedTime": end or self.now,
                    "TrainingJobStatus": status,
                    "SecondaryStatus": secondary,
                    **({"TrainingEndTime": end} if end else {}),
                }
            )
        start = int(body.get("NextToken") or 0)
        page = out[start : start + size]
        answer: dict[str, Any] = {"TrainingJobSummaries": page}
        if start + size < len(out):
            answer["NextToken"] = str(start + size)
        return 200, answer

    def op_Search(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """Search of TrainingJob records (botocore's model: `Resource` required, `MaxResults`
        1-100, `SearchExpression` of `Filters` joined by `Operator` And (the default) or Or;
        a `Filter` without `Operator` is Equals; `Tags.<key>` names a tag, a dotted name a
        property; one `Contains` per expression outside experiments; `SortBy` defaults to
        LastModifiedTime, `SortOrder` to Descending). Each record is the whole TrainingJob,
        its Tags among its properties. NestedFilters, SubExpressions, the numeric operators
        and other resources are not emulated: asked for, they are an emulator error."""
        if body.get("Resource") != "TrainingJob":
            raise NotImplementedError(f"Search of {body.get('Resource')!r}")
        size = int(body.get("MaxResults", 10))
        if not 1 <= size <= 100:
            return _error("ValidationException", "MaxResults is 1-100")
        expression = body.get("SearchExpression") or {}
        if set(expression) - {"Filters", "Operator"}:
            raise NotImplementedError(f"SearchExpression {sorted(expression)}")
        filters = expression.get("Filters") or []
        if not 1 <= len(filters) <= 20:
            return _error("ValidationException", "A SearchExpression needs 1-20 filters")
        if sum(1 for f in filters if f.get("Operator") == "Contains") > 1:
            return _error("ValidationException", "A SearchExpression can include one Contains")
        join = {"And": all, "Or": any}[expression.get("Operator", "And")]
        records = []
        for job in self.jobs.values():
            record = {
                **self.describe(job),
                "Tags": [{"Key": k, "Value": v} for k, v in job.tags.items()],
            }
            if join(_matches(record, f) for f in filters):
                records.append(record)
        by = body.get("SortBy", "LastModifiedTime")
        if by not in ("CreationTime", "LastModifiedTime", "TrainingJobName"):
            raise NotImplementedError(f"SortBy {by}")
        records.sort(key=lambda r: (r[by], r["TrainingJobName"]))
        if body.get("SortOrder", "Descending") == "Descending":
            records.reverse()
        start = int(body.get("NextToken") or 0)
        answer: dict[str, Any] = {
            "Results": [{"TrainingJob": r} for r in records[start : start + size]]
        }
        if start + size < len(records):
            answer["NextToken"] = str(start + size)
        return 200, answer

    def op_DescribeLogStreams(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        prefix = body.get("logStreamNamePrefix", "")
        streams = []
        for job in self.jobs.values():
            count = job.request["ResourceConfig"]["InstanceCount"]
            for n in range(1, count + 1):
                name = f"{job.name}/algo-{n}-{int(job.created)}"
                if name.startswith(prefix) and self.now - job.created >= QUEUE:
                    streams.append({"logStreamName": name})
        return 200, {"logStreams": streams}

    def op_GetLogEvents(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        name = body.get("logStreamName", "").split("/")[0]
        job = self.jobs.get(name)
        if job is None:
            return _error("ResourceNotFoundException", "The specified log stream does not exist.")
        events = self.log_events(job)
        limit = int(body.get("limit", 10000))
        chosen = events[:limit] if body.get("startFromHead") else events[-limit:]
        return 200, {"events": chosen, "nextForwardToken": "f/0", "nextBackwardToken": "b/0"}


def _matches(record: dict[str, Any], rule: dict[str, Any]) -> bool:
    """One Search `Filter` on one TrainingJob record (text properties and tags)."""
    name, operator = str(rule["Name"]), rule.get("Operator", "Equals")
    if name.startswith("Tags."):
        tags = {t["Key"]: t["Value"] for t in record["Tags"]}
        value = tags.get(name.removeprefix("Tags."))
    else:
        value = record
        for part in name.split("."):
            value = value.get(part) if isinstance(value, dict) else None
    if operator == "Exists":
        return value is not None
    if operator == "NotExists":
        return value is None
    if operator not in ("Equals", "NotEquals", "Contains"):
        raise NotImplementedError(f"Search operator {operator}")
    if value is None:
        return False  # a property a job does not have satisfies no comparison
    if operator == "Contains":
        return str(rule["Value"]) in str(value)
    return (str(value) == str(rule["Value"])) == (operator == "Equals")


def _error(kind: str, message: str) -> tuple[int, dict[str, Any]]:
    return 400, {"__type": kind, "message": message}


class _Handler(BaseHTTPRequestHandler):
    emu: SageMakerEmulator
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b"{}"
        target = self.headers.get("X-Amz-Target", "")
        try:
            body = json.loads(raw or b"{}")
            op = target.split(".", 1)[-1]
            fault = next((f for f in self.emu._faults if f[0] == op), None)
            if fault is not None:
                self.emu._faults.remove(fault)
                if fault[1] == "throttle":
                    self._send(400, {"__type": "ThrottlingException", "message": "Rate exceeded"})
                    return
            status, answer = self.emu.handle(target, body)
            if fault is not None and fault[1] == "lost":
                self.close_connection = True
                self.connection.shutdown(2)
                return
        except Exception as exc:  # an emulator bug: recorded, the test fails at teardown
            self.emu.errors.append(f"{target}: {exc!r}")
            status, answer = 500, {"__type": "InternalFailure", "message": "emulator error"}
        self._send(status, answer)

    def _send(self, status: int, answer: dict[str, Any]) -> None:
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/x-amz-json-1.1")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-amzn-RequestId", "emulated")
        self.end_headers()
        self.wfile.write(data)


SageMakerEmulator.handler = _Handler
