"""The Hub as the delivery, the Hub alias promotion and `trace` talk to it (huggingface_hub): the
endpoint (`HF_ENDPOINT`, default the public Hub) and one guard around each call that turns HTTP
and connection failures into a `DeliveryError` saying what was being done.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from trainops.delivery.base import DeliveryError

DEFAULT_ENDPOINT = "https://huggingface.co"
TOKEN_HINT = "set HF_TOKEN to a Hugging Face token with write access to the repository"


def endpoint() -> str:
    """The Hub trainops talks to: `HF_ENDPOINT`, else the public Hub."""
    return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def guard(fn: Any, doing: str, passthrough: tuple[type[Exception], ...] = ()) -> Any:
    """Run one Hub call; HTTP and connection failures become a `DeliveryError`, except the
    `passthrough` ones, left for the caller to decide."""
    from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError

    try:
        return fn()
    except passthrough:
        raise
    except RepositoryNotFoundError:
        raise DeliveryError(
            f"{doing} failed: the repository is not visible with this token", TOKEN_HINT
        ) from None
    except HfHubHTTPError as exc:
        raise _http_error(exc, doing) from None
    except _transport_errors() as exc:
        raise DeliveryError(
            f"{doing} failed: cannot reach {endpoint()} ({type(exc).__name__})"
        ) from None


def _http_error(exc: Any, doing: str) -> DeliveryError:
    status = getattr(getattr(exc, "response", None), "status_code", None)
    said = (getattr(exc, "server_message", "") or "").strip().splitlines()
    detail = f": {said[0]}" if said else ""
    if status == 401:
        return DeliveryError(
            f"{doing} refused: the Hub does not accept this token (HTTP 401){detail}", TOKEN_HINT
        )
    if status == 403:
        return DeliveryError(
            f"{doing} refused (HTTP 403){detail}",
            "the token needs write access to the repository's namespace",
        )
    return DeliveryError(f"{doing} failed: HTTP {status or '?'}{detail}")


def _transport_errors() -> tuple[type[BaseException], ...]:
    """Connection failures of whichever HTTP library this huggingface_hub uses, among those
    already loaded (never imported here)."""
    found: list[type[BaseException]] = [OSError]
    for module, name in (
        ("httpx2", "TransportError"),
        ("httpx", "TransportError"),
        ("requests", "ConnectionError"),
        ("requests", "Timeout"),
    ):
        cls = getattr(sys.modules.get(module), name, None)
        if isinstance(cls, type) and issubclass(cls, BaseException):
            found.append(cls)
    return tuple(found)
