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


def test_the_replay_memory_survives_a_restart_and_stays_bounded(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from trainops.serve.replay import MAX_ENTRIES, RETENTION, ReplayMemory

    path = tmp_path / "git" / "trainops" / "webhooks-seen.jsonl"
    now = [NOW]
    memory = ReplayMemory(path, clock=lambda: now[0])
    assert ReplicateVerifier(SECRET, clock=lambda: NOW, memory=memory).verify(BODY, signed()).ok
    again = ReplicateVerifier(SECRET, clock=lambda: NOW, memory=ReplayMemory(path, lambda: NOW))
    assert again.verify(BODY, signed()).status == 200  # a restart remembers

    # A flood of distinct, validly signed ids: at most MAX_ENTRIES are kept, the oldest go first.
    for i in range(MAX_ENTRIES + 500):
        assert memory.first_time([f"replicate:flood-{i}"])
    assert len(memory) == MAX_ENTRIES
    assert path.stat().st_size < 2 << 20  # bounded whatever the flood: stale lines compacted
    assert not memory.first_time([f"replicate:flood-{MAX_ENTRIES + 499}"])
    assert memory.first_time(["replicate:flood-0"])  # dropped by the cap, accepted again
    # Past the retention everything is pruned; a reload keeps only what is young.
    now[0] += RETENTION + 1
    assert memory.first_time(["replicate:late"])
    assert len(ReplayMemory(path, clock=lambda: now[0])) == 1


def test_an_unreadable_replay_memory_starts_empty(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from trainops.serve.replay import ReplayMemory

    path = tmp_path / "webhooks-seen.jsonl"
    for text in ("{not json", '{"seen": [["k", "soon"], 5, ["k2"]]}', "[]"):
        path.write_text(text)
        memory = ReplayMemory(path, clock=lambda: NOW)
        assert len(memory) == 0 and memory.first_time(["k"])


def test_a_github_delivery_is_known_by_its_id_or_its_signed_body() -> None:
    verifier = GitHubVerifier("hook-secret", clock=lambda: NOW)
    body = b'{"ref": "refs/heads/main", "repository": {"pushed_at": %d}}' % int(NOW)
    sig = {"x-hub-signature-256": "sha256=" + hmac.new(b"hook-secret", body, "sha256").hexdigest()}
    assert verifier.verify(body, {**sig, "x-github-delivery": "a"}).ok
    assert verifier.verify(body, {**sig, "x-github-delivery": "b"}).status == 200
    stale = GitHubVerifier("hook-secret", clock=lambda: NOW + 2 * 86400)
    assert stale.verify(body, sig).status == 400
