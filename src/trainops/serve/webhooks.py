"""Webhook verification (DESIGN §13, §13b): Standard Webhooks for Replicate,
`X-Hub-Signature-256` for GitHub. A verified webhook only schedules a pass that re-reads the
provider; nothing in its payload is acted on. Stale timestamps are refused; a delivery already
accepted (the replay memory, serve/replay.py, which survives a restart) is answered 200 and
schedules nothing: Replicate retries with the same `webhook-id`, and a captured delivery replayed
must not buy a pass.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from trainops.serve.replay import RETENTION, ReplayMemory

TOLERANCE_SECONDS = 300  # Standard Webhooks' recommended window


@dataclass(frozen=True)
class Verdict:
    """What the endpoint answers: `ok` schedules a pass; otherwise `status` and why."""

    ok: bool
    status: int
    reason: str


ACCEPTED = Verdict(True, 202, "accepted")
REPEAT = Verdict(False, 200, "already delivered; nothing to do")


class ReplicateVerifier:
    """Checks `webhook-id`, `webhook-timestamp`, `webhook-signature` against the signing secret
    (`whsec_...`). A timestamp outside the window is a 400 (checked before the signature, by our
    clock); a bad signature a 401; an id already accepted is `REPEAT` (200, no pass)."""

    def __init__(
        self,
        secret: str,
        clock: Callable[[], float] = time.time,
        memory: ReplayMemory | None = None,
    ) -> None:
        from standardwebhooks.webhooks import Webhook

        self._webhook = Webhook(secret)
        self._clock = clock
        self._memory = memory if memory is not None else ReplayMemory(clock=clock)

    def verify(self, body: bytes, headers: Mapping[str, str]) -> Verdict:
        msg_id = headers.get("webhook-id", "")
        stamp = headers.get("webhook-timestamp", "")
        if not msg_id or not stamp or not headers.get("webhook-signature"):
            return Verdict(False, 400, "missing Standard Webhooks headers")
        if not stamp.isdigit() or len(stamp) > 12:
            return Verdict(False, 400, "webhook-timestamp is not a Unix time")
        now = self._clock()
        if abs(now - int(stamp)) > TOLERANCE_SECONDS:
            return Verdict(False, 400, "webhook-timestamp is outside the allowed window")
        # The package signs; comparing here keeps the window ours (its own `verify` checks the
        # timestamp against the wall clock with its own tolerance).
        try:
            text = body.decode()
        except UnicodeDecodeError:
            return Verdict(False, 400, "body is not UTF-8")
        at = datetime.fromtimestamp(int(stamp), UTC)
        want = self._webhook.sign(msg_id, at, text).encode()
        given = [s.encode() for s in headers.get("webhook-signature", "").split()]
        if not any(hmac.compare_digest(want, sig) for sig in given if sig.startswith(b"v1,")):
            return Verdict(False, 401, "signature does not match")
        # Remembered only once signed: without the secret nobody grows the memory.
        return ACCEPTED if self._memory.first_time([f"replicate:{msg_id[:200]}"]) else REPEAT


class GitHubVerifier:
    """`X-Hub-Signature-256: sha256=<hex HMAC of the body>` with the secret from the environment.
    A push to the default branch schedules a fetch and a pass; every other event is acknowledged
    and ignored. The signature covers the body only, not `X-GitHub-Delivery`: a replay is known
    by either its delivery id or the digest of its signed body (a replayer can change the id,
    never the body), and a push whose signed `repository.pushed_at` is older than the memory's
    retention is stale (it could no longer be told from a replay)."""

    def __init__(
        self,
        secret: str,
        memory: ReplayMemory | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._key = secret.encode()
        self._clock = clock
        self._memory = memory if memory is not None else ReplayMemory(clock=clock)

    def verify(self, body: bytes, headers: Mapping[str, str]) -> Verdict:
        given = headers.get("x-hub-signature-256", "")
        want = "sha256=" + hmac.new(self._key, body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(given.encode(), want.encode()):
            return Verdict(False, 401, "X-Hub-Signature-256 does not match")
        pushed = _pushed_at(body)
        if pushed is not None and self._clock() - pushed > RETENTION:
            return Verdict(False, 400, "the push is older than the replay memory (stale)")
        keys = ["github-body:" + hashlib.sha256(body).hexdigest()]
        delivery = headers.get("x-github-delivery", "")
        if delivery:
            keys.append(f"github:{delivery[:200]}")
        return ACCEPTED if self._memory.first_time(keys) else REPEAT


def _pushed_at(body: bytes) -> float | None:
    """A push payload's `repository.pushed_at` (Unix seconds; other events carry a date text,
    which is not read)."""
    import json

    try:
        payload = json.loads(body)
    except ValueError:
        return None
    repository = payload.get("repository") if isinstance(payload, dict) else None
    at = repository.get("pushed_at") if isinstance(repository, dict) else None
    return float(at) if isinstance(at, int) and not isinstance(at, bool) else None


def is_push_to(event: str, body: bytes, branch: str) -> bool:
    """Whether a verified GitHub delivery is a push to `branch` (only then is a pass due). The
    payload's word decides only whether to look again, never what to do."""
    import json

    if event != "push":
        return False
    try:
        payload = json.loads(body)
    except ValueError:
        return False
    return isinstance(payload, dict) and payload.get("ref") == f"refs/heads/{branch}"


def replicate_secret(environ: Mapping[str, str], token_env: str) -> str:
    """`TRAINOPS_REPLICATE_WEBHOOK_SECRET`, else Replicate's `GET /v1/webhooks/default/secret`
    (with the token, at REPLICATE_BASE_URL)."""
    from trainops.errors import ProviderError, UsageError

    secret = environ.get("TRAINOPS_REPLICATE_WEBHOOK_SECRET", "")
    if secret:
        return secret
    token = environ.get(token_env, "")
    if not token:
        raise UsageError(
            "no Replicate webhook secret: TRAINOPS_REPLICATE_WEBHOOK_SECRET is not set and "
            f"{token_env} is not set to ask Replicate for it",
            f"export {token_env} (or the secret), or pass --no-replicate-webhooks",
        )
    import httpx

    from trainops.providers.replicate import endpoint

    url = endpoint(environ).rstrip("/") + "/v1/webhooks/default/secret"
    try:
        reply = httpx.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=30.0)
        key = reply.json().get("key") if reply.status_code == 200 else None
    except (httpx.HTTPError, ValueError, AttributeError):
        key = None
    if not isinstance(key, str) or not key.startswith("whsec_"):
        raise ProviderError(
            "could not read the webhook signing secret from Replicate",
            "check the token and REPLICATE_BASE_URL, or set TRAINOPS_REPLICATE_WEBHOOK_SECRET",
        )
    return key
