"""Webhook verification (DESIGN §13): Standard Webhooks for Replicate, `X-Hub-Signature-256`
for GitHub. A verified webhook only schedules a pass that re-reads the provider; nothing in its
payload is acted on. Stale timestamps and replayed message ids are refused.
"""

from __future__ import annotations

import collections
import hashlib
import hmac
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

TOLERANCE_SECONDS = 300  # Standard Webhooks' recommended window
REPLAY_MEMORY = 10_000  # message ids remembered (they expire with the window anyway)


@dataclass(frozen=True)
class Verdict:
    """What the endpoint answers: `ok` schedules a pass; otherwise `status` and why."""

    ok: bool
    status: int
    reason: str


ACCEPTED = Verdict(True, 202, "accepted")


class ReplicateVerifier:
    """Checks `webhook-id`, `webhook-timestamp`, `webhook-signature` against the signing secret
    (`whsec_...`). A timestamp outside the window is a 400 (checked before the signature, by our
    clock); a bad signature a 401; a replayed id (already accepted inside the window) a 400."""

    def __init__(self, secret: str, clock: Callable[[], float] = time.time) -> None:
        from standardwebhooks.webhooks import Webhook

        self._webhook = Webhook(secret)
        self._clock = clock
        self._seen: collections.OrderedDict[str, float] = collections.OrderedDict()
        self._lock = threading.Lock()

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
        with self._lock:
            for old, seen_at in list(self._seen.items()):
                if now - seen_at <= TOLERANCE_SECONDS and len(self._seen) <= REPLAY_MEMORY:
                    break
                del self._seen[old]
            if msg_id in self._seen:
                return Verdict(False, 400, "webhook-id was already delivered (replay)")
            self._seen[msg_id] = now
        return ACCEPTED


class GitHubVerifier:
    """`X-Hub-Signature-256: sha256=<hex HMAC of the body>` with the secret from the environment.
    A push to the default branch schedules a fetch and a pass; every other event is acknowledged
    and ignored."""

    def __init__(self, secret: str) -> None:
        self._key = secret.encode()

    def verify(self, body: bytes, headers: Mapping[str, str]) -> Verdict:
        given = headers.get("x-hub-signature-256", "")
        want = "sha256=" + hmac.new(self._key, body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(given.encode(), want.encode()):
            return Verdict(False, 401, "X-Hub-Signature-256 does not match")
        return ACCEPTED


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
