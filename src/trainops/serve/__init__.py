"""Controller mode (`trainops serve`, DESIGN §17): the same Reconciler as `apply`, run on an
interval and at once on a verified webhook, with /healthz, Prometheus /metrics and a read-only
status page. `status_page` (the page itself) is plain Python and also backs `status --html`;
the ASGI stack (Starlette, uvicorn), `standardwebhooks` and `prometheus_client` are imported only
by the `controller`, `webhooks`, `metrics` and `app` modules (the `trainops[serve]` extra).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from trainops.errors import UsageError


def serve_controller(
    root: Path,
    *,
    listen: str,
    interval: str,
    github: bool,
    branch: str | None,
    log: Callable[[str], None],
) -> int:
    """`trainops serve`, once its optional dependencies are known to be installed."""
    seconds = _seconds(interval)
    try:
        from trainops.serve.app import serve
    except ImportError as exc:
        raise UsageError(
            f"trainops serve needs its extra dependencies ({exc.name} is missing)",
            "pip install 'trainops[serve]'",
        ) from None
    return serve(root, listen=listen, interval=seconds, github=github, branch=branch, log=log)


def _seconds(text: str) -> float:
    import re

    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(s|m|h)?\s*", text)
    if m is None or float(m.group(1)) <= 0:
        raise UsageError(f"--interval {text!r} is not a duration", "e.g. 90, 60s, 5m or 1h")
    return float(m.group(1)) * {"s": 1, "m": 60, "h": 3600}[m.group(2) or "s"]
