"""The one retry policy of trainops (issue 27 item 6): every provider and the GitHub client.

- How long to wait comes from what the service said, in this order: `Retry-After` (seconds or an
  HTTP date), `RateLimit: "api";r=0;t=N` (the Hub, 5-minute windows), `ratelimit-reset`
  (Replicate; seconds), `x-ratelimit-reset` (GitHub; epoch seconds, only with
  `x-ratelimit-remaining: 0`), a `~30s` in the body (Replicate's documented 429 detail); else
  capped exponential backoff with jitter.
- A `Budget` caps the total seconds one pass spends waiting: once spent, a call gives up at once
  (exit 3) instead of sleeping, and the next pass tries again.
- Only one layer retries: callers switch the client's own retries off (Replicate) or bypass them.
- A create whose outcome is unknown is never retried here: the provider raises `OutcomeUnknown`
  and adoption decides (DESIGN §8). Only "nothing was done" answers (429, never sent) are retried.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable, Mapping
from email.utils import parsedate_to_datetime

MAX_HINT = 300.0  # no service window is longer than 5 minutes (the Hub's)
# Seconds of waiting one pass may spend: three of the Hub's 5-minute windows. A pass that
# needs more (creates far over an account's limit) stops there; the next pass goes on.
PASS_BUDGET = 900.0
_TILDE = re.compile(r"~\s*(\d+(?:\.\d+)?)\s*s\b")
_RATELIMIT_T = re.compile(r";\s*t\s*=\s*(\d+(?:\.\d+)?)")


def _header(headers: Mapping[str, str] | None, name: str) -> str | None:
    if not headers:
        return None
    value = headers.get(name)
    if value is None:
        lowered = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == lowered), None)
    return None if value is None else str(value).strip()


def hint(
    headers: Mapping[str, str] | None,
    body: str = "",
    *,
    wall: Callable[[], float] = time.time,
    cap: float = MAX_HINT,
) -> float | None:
    """Seconds the service asked us to wait (at most `cap`), or None when it said nothing
    usable. GitHub's primary limit resets hourly: its client passes no cap and refuses a wait
    longer than it allows instead."""
    value = _header(headers, "Retry-After")
    if value:
        try:
            return _clamp(cap, float(value))
        except ValueError:
            try:
                return _clamp(cap, parsedate_to_datetime(value).timestamp() - wall())
            except (TypeError, ValueError, IndexError, OverflowError):
                pass
    value = _header(headers, "RateLimit")
    if value and (m := _RATELIMIT_T.search(value)):
        return _clamp(cap, float(m.group(1)))
    value = _header(headers, "ratelimit-reset")
    if value:
        try:
            return _clamp(cap, float(value))
        except ValueError:
            pass
    value = _header(headers, "x-ratelimit-reset")
    if value and _header(headers, "x-ratelimit-remaining") == "0":
        try:
            return _clamp(cap, float(value) - wall())
        except ValueError:
            pass
    if body and (m := _TILDE.search(body)):
        return _clamp(cap, float(m.group(1)))
    return None


def _clamp(cap: float, seconds: float) -> float:
    # A service's answer is input: `Retry-After: nan` must not reach `sleep` (ValueError).
    if seconds != seconds:
        return cap
    return min(max(seconds, 0.0), cap)


class Budget:
    """The seconds of waiting one pass may spend, shared by every call of the pass."""

    def __init__(
        self, seconds: float = PASS_BUDGET, *, sleep: Callable[[float], None] = time.sleep
    ):
        self.seconds = seconds
        self.spent = 0.0
        self._sleep = sleep

    def left(self) -> float:
        return max(0.0, self.seconds - self.spent)

    def wait(self, seconds: float) -> bool:
        """Sleep `seconds` if the budget allows; False (no sleep) when it does not."""
        seconds = max(0.0, seconds)
        if seconds > self.left() + 1e-9:
            return False
        self.spent += seconds
        if seconds:
            self._sleep(seconds)
        return True


class Policy:
    """Attempts and backoff for one call; waits are charged to the shared `budget`."""

    def __init__(
        self,
        *,
        budget: Budget | None = None,
        max_attempts: int = 5,
        base: float = 0.5,
        cap: float = 30.0,
        rng: random.Random | None = None,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.budget = budget or Budget()
        self.max_attempts = max_attempts
        self.base, self.cap = base, cap
        self._rng = rng or random.Random()
        self.wall = wall

    def delay(self, attempt: int, said: float | None) -> float:
        """The service's hint when it gave one, else capped exponential backoff, jittered."""
        if said is not None:
            return said
        return min(self.cap, self.base * 2.0 ** (attempt - 1)) * (0.5 + self._rng.random() / 2)

    def pause(self, attempt: int, said: float | None) -> bool:
        """Wait before attempt `attempt + 1`; False when attempts or the budget are spent."""
        if attempt >= self.max_attempts:
            return False
        return self.budget.wait(self.delay(attempt, said))
