"""SageMaker's API as trainops calls it: boto3 clients made on first use (botocore's own retries
off), one call with throttling retried by the one retry layer (`trainops.retry`), error answers
and transport trouble told apart, and the two reads the provider builds on: a job described
with its tags, and the paged list of one status.

Region, credentials and endpoints come from the standard AWS environment (boto3's own chain,
`AWS_ENDPOINT_URL_SAGEMAKER`, `AWS_ENDPOINT_URL_CLOUDWATCH_LOGS`).
"""

from __future__ import annotations

from typing import Any

from trainops.errors import ProviderError
from trainops.retry import Policy

LIST_PAGE = 100  # ListTrainingJobs MaxResults: at most 100
_THROTTLED = frozenset({"ThrottlingException", "Throttling", "ThrottledException"})
_NEVER_SENT = ("NoCredentialsError", "NoRegionError", "ParamValidationError")


class Answer(Exception):
    """The service answered with an error (`code`, `message`)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code, self.message = code, message


class Transport(Exception):
    """Transport trouble: the request may have arrived."""


class Api:
    """The clients of one provider; `calls` counts API calls by operation (benchmarks)."""

    def __init__(self, retry: Policy, calls: dict[str, int]) -> None:
        self.retry = retry
        self.calls = calls
        self._clients: dict[str, Any] = {}

    def list_jobs(self, status: str, suffix: str, since: float | None) -> list[dict[str, Any]]:
        """Every `ListTrainingJobs` summary of `status` whose name holds `suffix`, all pages."""
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
                answer = self.call("sagemaker", "list_training_jobs", "listing jobs", **kwargs)
            except (Answer, Transport) as exc:
                raise ProviderError(f"SageMaker: listing training jobs: {exc}") from None
            out += answer.get("TrainingJobSummaries", [])
            token = answer.get("NextToken")
            if not token:
                break
            kwargs["NextToken"] = token
        return out

    def search(
        self, expression: dict[str, Any], max_pages: int
    ) -> tuple[list[dict[str, Any]], int, bool]:
        """`Search` of training jobs matching `expression`, newest first, 100 a page, at most
        `max_pages` pages: (the records, the pages read, whether the end was reached)."""
        kwargs: dict[str, Any] = {
            "Resource": "TrainingJob",
            "SearchExpression": expression,
            "SortBy": "CreationTime",
            "SortOrder": "Descending",
            "MaxResults": LIST_PAGE,  # Search MaxResults: at most 100
        }
        out: list[dict[str, Any]] = []
        for page in range(max(0, max_pages)):
            try:
                answer = self.call("sagemaker", "search", "searching training jobs", **kwargs)
            except (Answer, Transport) as exc:
                raise ProviderError(f"SageMaker: searching training jobs: {exc}") from None
            out += [r for r in answer.get("Results", []) if isinstance(r, dict)]
            token = answer.get("NextToken")
            if not token:
                return out, page + 1, True
            kwargs["NextToken"] = token
        return out, max(0, max_pages), False

    def describe(self, name: str, what: str) -> dict[str, Any] | None:
        """The job and its tags, or None when the service has no job of that name."""
        try:
            job = self.call("sagemaker", "describe_training_job", what, TrainingJobName=name)
            listed = self.call("sagemaker", "list_tags", what, ResourceArn=job["TrainingJobArn"])
        except Answer as answer:
            # An unknown name answers ValidationException "Requested resource not found."
            if answer.code in ("ResourceNotFound", "ValidationException"):
                return None
            raise ProviderError(f"{what}: {answer.code}") from None
        except Transport as exc:
            raise ProviderError(f"{what}: {exc}") from None
        tags = {t["Key"]: t["Value"] for t in listed.get("Tags", [])}
        return {"job": job, "tags": tags, "created": timestamp(job.get("CreationTime"))}

    def client(self, service: str) -> Any:
        """The boto3 client of `service`, made on first use (botocore's retries off)."""
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

    def call(self, service: str, operation: str, what: str, **kwargs: Any) -> Any:
        """One API call, throttling retried by `trainops.retry`. An error answer raises
        `Answer`; transport trouble (the request may have arrived) `Transport`."""
        from botocore.exceptions import BotoCoreError, ClientError

        client = self.client(service)
        for attempt in range(1, 100):
            self.calls[operation] = self.calls.get(operation, 0) + 1
            try:
                return getattr(client, operation)(**kwargs)
            except ClientError as exc:
                error = exc.response.get("Error", {})
                code = str(error.get("Code", ""))
                if code in _THROTTLED and self.retry.pause(attempt, None):
                    continue
                raise Answer(code, str(error.get("Message", ""))[:200]) from None
            except BotoCoreError as exc:
                if type(exc).__name__ in (
                    "NoCredentialsError",
                    "NoRegionError",
                    "ParamValidationError",
                ):
                    raise ProviderError(f"{what}: {exc}") from None
                raise Transport(type(exc).__name__) from None
        raise ProviderError(f"{what}: still throttled")  # pragma: no cover


def timestamp(value: Any) -> float | None:
    """A boto3 datetime as seconds since the epoch (None when it is not one)."""
    stamp = getattr(value, "timestamp", None)
    return float(stamp()) if callable(stamp) else None
