"""Where a step runs: the GitHub Actions context from the environment, and a client configured
from it. What is posted is scrubbed by `trainops.scrub` (in the client, for every request body).

Nothing here talks to GitHub; `plan_report.py` and `run_report.py` do, with these.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trainops.errors import UsageError
from trainops.github.client import GitHubClient

__all__ = ["PULL_REQUEST_EVENTS", "SHA", "ActionsContext", "client_from_env"]

PULL_REQUEST_EVENTS = ("pull_request", "pull_request_target")
SHA = re.compile(r"^[0-9a-f]{40}\Z")

# Retry tuning, for tests and self-hosted GHES; the defaults follow GitHub.com's advice.
ENV_BACKOFF = "TRAINOPS_GITHUB_BACKOFF"  # seconds before the first retry (doubles, capped at 30)
ENV_WRITE_INTERVAL = "TRAINOPS_GITHUB_WRITE_INTERVAL"  # seconds between two writes
ENV_MAX_ATTEMPTS = "TRAINOPS_GITHUB_MAX_ATTEMPTS"  # requests per API call, retries included


def client_from_env(env: Mapping[str, str], transport: Any = None) -> GitHubClient:
    """A client for GITHUB_API_URL with GITHUB_TOKEN (UsageError without a token), retries tuned
    by the TRAINOPS_GITHUB_* variables above; `transport` (an httpx transport) lets `serve`
    count its calls."""
    return GitHubClient(
        env=env,
        transport=transport,
        backoff_base=_number(env, ENV_BACKOFF, 1.0),
        write_interval=_number(env, ENV_WRITE_INTERVAL, 1.0),
        max_attempts=int(_number(env, ENV_MAX_ATTEMPTS, 5, minimum=1)),
    )


def _number(env: Mapping[str, str], name: str, default: float, minimum: float = 0) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = minimum - 1
    if value < minimum:
        raise UsageError(f"{name}={raw!r} is not a number of at least {minimum:g}")
    return value


@dataclass(frozen=True)
class ActionsContext:
    """What GitHub Actions tells a step about itself through its environment."""

    repository: str  # owner/name
    event_name: str = ""
    event: Mapping[str, Any] = field(default_factory=dict)
    sha: str = ""
    server_url: str = "https://github.com"
    run_id: str = ""
    step_summary: str = ""
    event_error: str = ""  # why GITHUB_EVENT_PATH could not be read

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ActionsContext | None:
        """None without GITHUB_REPOSITORY: not in Actions, nothing to report to."""
        repository = env.get("GITHUB_REPOSITORY", "").strip()
        if not repository:
            return None
        event: Any = {}
        error = ""
        path = env.get("GITHUB_EVENT_PATH", "")
        if path:
            try:
                event = json.loads(Path(path).read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                error = f"cannot read the event file GITHUB_EVENT_PATH={path}: {exc}"
        return cls(
            repository=repository,
            event_name=env.get("GITHUB_EVENT_NAME", ""),
            event=event if isinstance(event, dict) else {},
            sha=env.get("GITHUB_SHA", ""),
            server_url=(env.get("GITHUB_SERVER_URL") or "https://github.com").rstrip("/"),
            run_id=env.get("GITHUB_RUN_ID", ""),
            step_summary=env.get("GITHUB_STEP_SUMMARY", ""),
            event_error=error,
        )

    @property
    def pull_request(self) -> tuple[int, str] | None:
        """(number, head sha) on a pull request event. The head sha, not GITHUB_SHA: on a pull
        request that is a merge commit nobody sees."""
        if self.event_name not in PULL_REQUEST_EVENTS:
            return None
        pull = self.event.get("pull_request")
        if not isinstance(pull, dict):
            return None
        number, head = pull.get("number"), pull.get("head")
        sha = head.get("sha") if isinstance(head, dict) else None
        if not isinstance(number, int) or not isinstance(sha, str) or not SHA.match(sha):
            return None
        return number, sha

    @property
    def run_url(self) -> str:
        if not self.run_id:
            return ""
        return f"{self.server_url}/{self.repository}/actions/runs/{self.run_id}"
