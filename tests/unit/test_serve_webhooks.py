"""Webhook verification of `trainops serve` (DESIGN §13): Standard Webhooks for Replicate with a
time window and replay refusal, X-Hub-Signature-256 for GitHub. Signed with the same
`standardwebhooks` package Replicate's scheme is documented with."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime

import pytest
from standardwebhooks.webhooks import Webhook

from trainops.serve.webhooks import GitHubVerifier, ReplicateVerifier, is_push_to

SECRET = "whsec_" + base64.b64encode(b"k" * 24).decode()
NOW = 1_800_000_000.0
BODY = b'{"id": "t1", "status": "succeeded"}'


def signed(msg_id: str = "msg_1", at: float = NOW, secret: str = SECRET) -> dict[str, str]:
    sig = Webhook(secret).sign(msg_id, datetime.fromtimestamp(at, UTC), BODY.decode())
    return {"webhook-id": msg_id, "webhook-timestamp": str(int(at)), "webhook-signature": sig}


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        pytest.param(signed(), 202, id="valid"),
        pytest.param(
            signed(secret="whsec_" + base64.b64encode(b"x" * 24).decode()), 401, id="forged"
        ),
        pytest.param(signed(at=NOW - 301), 400, id="stale"),
        pytest.param(signed(at=NOW + 301), 400, id="from-the-future"),
        pytest.param({**signed(), "webhook-timestamp": "soon"}, 400, id="not-a-time"),
        pytest.param({"webhook-id": "msg_1"}, 400, id="missing-headers"),
    ],
)
def test_replicate_verdicts(headers: dict[str, str], status: int) -> None:
    verdict = ReplicateVerifier(SECRET, clock=lambda: NOW).verify(BODY, headers)
    assert (verdict.ok, verdict.status) == (status == 202, status)


def test_a_repeated_id_schedules_nothing_and_a_tampered_body_is_forged() -> None:
    verifier = ReplicateVerifier(SECRET, clock=lambda: NOW)
    assert verifier.verify(BODY, signed()).ok
    repeat = verifier.verify(BODY, signed())  # Replicate's retry: 2xx, no pass
    assert (repeat.ok, repeat.status) == (False, 200)
    assert verifier.verify(BODY + b" ", signed("msg_2")).status == 401
    assert verifier.verify(BODY, signed("msg_2")).ok  # a forged copy did not burn the id


def test_github_signature_and_push_detection() -> None:
    verifier = GitHubVerifier("hook-secret")
    body = b'{"ref": "refs/heads/main"}'
    good = "sha256=" + hmac.new(b"hook-secret", body, hashlib.sha256).hexdigest()
    assert verifier.verify(body, {"x-hub-signature-256": good}).ok
    assert verifier.verify(body, {"x-hub-signature-256": good[:-1] + "0"}).status == 401
    assert verifier.verify(body, {}).status == 401
    assert is_push_to("push", body, "main")
    assert not is_push_to("push", body, "develop")
    assert not is_push_to("issues", body, "main")
    assert not is_push_to("push", b"[not json", "main")


def test_trainings_ask_for_webhooks_only_with_a_public_url() -> None:
    from trainops.providers.replicate import webhook_params

    assert webhook_params({}) == {}
    assert webhook_params({"TRAINOPS_PUBLIC_URL": "ftp://x"}) == {}
    assert webhook_params({"TRAINOPS_PUBLIC_URL": "https://ops.example.com/"}) == {
        "webhook": "https://ops.example.com/webhooks/replicate",
        "webhook_events_filter": ["start", "completed"],
    }
