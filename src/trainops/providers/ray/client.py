"""The job-submission client and its errors: the official `ray.job_submission.JobSubmissionClient`
(the `trainops[ray]` extra), imported on first use only, so no command loads `ray` at start-up.

The client raises `RuntimeError` for every answer but 200, and says why only in text: trainops
never reads that text; it asks the cluster again (`get_job_info`, or `list_jobs`) what exists.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from trainops.errors import OutcomeUnknown, ProviderError

ADDRESS_ENV = "RAY_ADDRESS"  # as the official client and `ray job submit` read it
TIMEOUT = (10.0, 60.0)  # connect, read: a cluster that stopped answering must not hang apply


class Answered(Exception):
    """The cluster answered a request with an error (the client says why only in text)."""


class Cluster:
    """The client of one cluster, made on first use; every request goes through `call`."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ
        self._client: Any = None

    def connect(self) -> Any:
        """The client, made once (it checks the cluster's version: two requests)."""
        if self._client is not None:
            return self._client
        address = self._environ.get(ADDRESS_ENV, "")
        if not address:
            raise ProviderError(
                f"no Ray cluster: {ADDRESS_ENV} is not set",
                f"export {ADDRESS_ENV}=http://<head node>:8265 (the cluster's job API)",
            )
        try:
            from ray.job_submission import JobSubmissionClient
        except ImportError:
            raise ProviderError(
                "the Ray provider needs the Ray client", "pip install 'trainops[ray]'"
            ) from None
        for name in ("ray.dashboard.modules.dashboard_sdk", "ray._private.runtime_env.packaging"):
            logging.getLogger(name).setLevel(logging.WARNING)  # upload chatter on stderr

        class _Client(JobSubmissionClient):
            def _do_request(self, *args: Any, **kwargs: Any) -> Any:
                kwargs.setdefault("timeout", TIMEOUT)
                return super()._do_request(*args, **kwargs)

        shown = safe_address(address)
        try:
            self._client = _Client(address)
        except (OSError, RuntimeError) as exc:
            raise ProviderError(
                f"cannot reach the Ray cluster at {shown} ({type(exc).__name__})",
                f"is {ADDRESS_ENV} the address of the cluster's job API (http://<head>:8265)?",
            ) from None
        except Exception as exc:
            raise ray_error(f"connecting to the Ray cluster at {shown}", exc) from None
        return self._client

    def call(self, what: str, call: Callable[[Any], Any], answered: bool = False) -> Any:
        """One request. Transport trouble is a `ProviderError`; an error answer too, or, with
        `answered`, `Answered` (the caller asks the cluster what is true)."""
        client = self.connect()
        try:
            return call(client)
        except RuntimeError:
            if answered:
                raise Answered() from None
            raise ProviderError(f"{what}: the cluster answered with an error") from None
        except OSError as exc:
            raise ProviderError(
                f"{what}: cannot reach the Ray cluster ({type(exc).__name__})",
                "the cluster may be down or busy; run again later",
            ) from None
        except Exception as exc:
            raise ray_error(what, exc) from None

    def get(self, run_id: str, what: str) -> Any:
        """The job with this id, or None. An error answer (what an unknown id gets, and also a
        failing server) is settled by `list_jobs`, never by reading the error's text."""
        try:
            return self.call(what, lambda c: c.get_job_info(run_id), answered=True)
        except Answered:
            jobs = self.call(what, lambda c: c.list_jobs()) or []
            return next((j for j in jobs if getattr(j, "submission_id", None) == run_id), None)


def is_auth_error(exc: BaseException) -> bool:
    from ray.exceptions import AuthenticationError

    return isinstance(exc, AuthenticationError)


def ray_error(what: str, exc: Exception) -> ProviderError:
    """Ray's own errors (`ray.exceptions.RayError`: neither a RuntimeError nor an OSError) as a
    `ProviderError`; anything else is raised again. The client's text is never shown: it holds
    the cluster's answer. `AuthenticationError` is any 401 or 403 of the job API
    (`dashboard_sdk.SubmissionClient._do_request`): the client sends a token only with
    `RAY_AUTH_MODE=token`, from `RAY_AUTH_TOKEN` or the file `RAY_AUTH_TOKEN_PATH` names."""
    from ray.exceptions import RayError

    if is_auth_error(exc):
        return ProviderError(
            f"{what}: the Ray cluster refused the request (401/403: it uses token "
            "authentication, and no token or a wrong one was sent)",
            "set RAY_AUTH_MODE=token and RAY_AUTH_TOKEN=<the cluster's token> (Ray's own "
            "variables; RAY_AUTH_TOKEN_PATH may name a file holding it instead)",
        )
    if isinstance(exc, RayError):
        return ProviderError(f"{what}: the Ray client failed ({type(exc).__name__})")
    raise exc


def unknown_outcome(what: str, reason: str) -> OutcomeUnknown:
    return OutcomeUnknown(
        f"{what}: outcome unknown ({reason})",
        "the next apply asks the cluster for the job's id (adoption)",
    )


def refused(message: str, hint: str = "") -> ProviderError:
    """A refusal that resubmitting the same cannot help (not retryable)."""
    error = ProviderError(message, hint)
    error.retryable = False  # type: ignore[attr-defined]  # resubmitting the same cannot help
    return error


def status(info: Any) -> Any:
    """The job's `JobStatus`; a status this client does not know is PENDING (not finished)."""
    from ray.job_submission import JobStatus

    try:
        return JobStatus(str(getattr(info.status, "value", info.status)))
    except ValueError:
        return JobStatus.PENDING  # a status this client does not know: not finished


def seconds(ms: Any) -> float | None:
    """A job's millisecond timestamp as seconds (None when unset)."""
    if isinstance(ms, int | float) and not isinstance(ms, bool) and ms > 0:
        return float(ms) / 1000.0
    return None


def safe_address(address: str) -> str:
    """The address fit for a message: scheme, host and port (no userinfo, path or query)."""
    from urllib.parse import urlsplit

    if "://" not in address:
        return address
    parts = urlsplit(address)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname or ''}{port}"
