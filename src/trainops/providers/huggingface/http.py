"""The Hugging Face Hub as the provider calls it: the official `huggingface_hub` client (imported
on first use), the namespace, the one retry layer (`trainops.retry`, honouring the Hub's
`RateLimit` and `Retry-After`), errors scrubbed of the token, and what an exception or an answer
says (its status, its message, a job id). Endpoint `HF_ENDPOINT` and token `HF_TOKEN` come from
the environment."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from trainops.errors import ProviderError
from trainops.providers._errors import TokenScrubbedErrors
from trainops.retry import Policy, hint

DEFAULT_ENDPOINT = "https://huggingface.co"
ENDPOINT_ENV, TOKEN_ENV = "HF_ENDPOINT", "HF_TOKEN"  # the official client's own variables
_JOB_ID = re.compile(r"[0-9a-f]{24}")


def endpoint(environ: Mapping[str, str]) -> str:
    """Where the token goes: `HF_ENDPOINT` (as the official client reads it), else the Hub."""
    return (environ.get(ENDPOINT_ENV) or DEFAULT_ENDPOINT).rstrip("/")


class HubCalls(TokenScrubbedErrors):
    """The client, the namespace and the retried call, for the provider's parts (`Submitter`,
    `Observer`, `HuggingFaceProvider`); the provider sets these attributes."""

    _environ: Mapping[str, str]
    endpoint: str
    namespace: str | None
    retry: Policy
    max_attempts: int
    calls: int
    _api: Any

    def _client(self) -> Any:
        if self._api is not None:
            return self._api
        token = self._environ.get(TOKEN_ENV, "")
        if not token:
            raise ProviderError(
                f"no Hugging Face token: {TOKEN_ENV} is not set",
                f"export {TOKEN_ENV}=<token with the jobs permission>",
            )
        from huggingface_hub import HfApi

        self._token = token
        self._api = HfApi(endpoint=self.endpoint, token=token)
        return self._api

    def _namespace(self) -> str:
        if not self.namespace:
            # Without it the client asks the module-level whoami(), which ignores our endpoint.
            raise ProviderError(
                "providers.huggingface.namespace is not set",
                "set providers: {huggingface: {namespace: <user or org>}} in trainops.yaml",
            )
        return self.namespace

    def _retrying(
        self,
        what: str,
        call: Callable[[], Any],
        missing_ok: bool = True,
        client_retries: bool = False,
    ) -> Any:
        """An idempotent request, retried on 429, 5xx and transport errors by `trainops.retry`
        (the service's wait, else backoff). A 404 (`JobNotFoundError`, a missing repo) answers
        None. With `client_retries` (`list_jobs`: the client's `paginate` goes through its own
        `http_backoff`, which honours `RateLimit` and `Retry-After`) trainops adds no second
        loop: one layer retries."""
        for n in range(1, self.max_attempts + 1):
            try:
                self.calls += 1
                return call()
            except Exception as exc:
                status = status_of(exc)
                if status == 404 and missing_ok:
                    return None
                if status is not None and status != 429 and status < 500:
                    raise self._error(f"Hugging Face: {what}: {status} {detail_of(exc)}") from None
                if client_retries or not self._pause(n, exc):
                    raise self._error(
                        f"Hugging Face: {what}: {status or type(exc).__name__} after {n} attempts",
                        "the service may be degraded; run again later",
                    ) from None
        return None  # pragma: no cover

    def _pause(self, attempt: int, exc: Exception) -> bool:
        """Wait what the Hub said (`Retry-After`, `RateLimit: "api";r=0;t=N`), else back off;
        False when the attempts or the pass's wait budget are spent."""
        response = getattr(exc, "response", None)
        headers = getattr(response, "headers", None)
        return self.retry.pause(attempt, hint(headers) if headers is not None else None)


def is_job_id(value: Any) -> bool:
    return isinstance(value, str) and _JOB_ID.fullmatch(value) is not None


def status_of(exc: Exception) -> int | None:
    response = getattr(exc, "response", None)
    code = getattr(response, "status_code", None)
    return code if isinstance(code, int) else None


def detail_of(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    try:
        text = str(response.headers.get("X-Error-Message") or "") if response is not None else ""
    except Exception:
        text = ""
    return text[:200]


def never_sent(exc: Exception) -> bool:
    """A connection that was never made: the request cannot have reached the service."""
    names = {type(e).__name__ for e in _chain(exc)}
    return bool(names & {"ConnectError", "ConnectTimeout", "PoolTimeout"})


def _chain(exc: BaseException | None) -> list[BaseException]:
    out: list[BaseException] = []
    while exc is not None and len(out) < 10:
        out.append(exc)
        exc = exc.__cause__ or exc.__context__
    return out
