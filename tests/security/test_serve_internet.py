"""`trainops serve` on the internet (issue 26, findings 5, 7, 8; DESIGN §13b): its webhook paths
are public, so anyone can open connections that never finish a request, replay a signed delivery
they saw, or reach the status page through a reverse proxy on the same host. A real `serve`
process on loopback, the Replicate and GitHub emulators, counts of what it did."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.test_replicate_cli import R8_TOKEN, job
from tests.e2e.test_serve import GH_TOKEN, Served, github_hook
from tests.emulators.github import GitHubEmulator
from tests.emulators.replicate import ReplicateEmulator, simulated
from tests.support.halfopen import close_wait, descriptors, sweep
from tests.support.workspace import UserRepo, explain

SERVE_TOKEN = "serve-token-" + "7c1d" * 8
SWEEP = 2000  # half-open connections (issue 26: 1,100 exhausted the 1,024-descriptor limit)
MAX_FDS = 100


@pytest.fixture
def gh() -> Iterator[GitHubEmulator]:
    with GitHubEmulator(token=GH_TOKEN) as emulator:
        yield emulator
        assert emulator.errors == []


@pytest.fixture
def emu() -> Iterator[ReplicateEmulator]:
    with simulated(R8_TOKEN) as emulator:
        yield emulator


@pytest.fixture
def repo(tmp_path: Path, emu: ReplicateEmulator) -> Iterator[UserRepo]:
    user = UserRepo.create(tmp_path, {"portraits": job("portraits")})
    user.env["REPLICATE_BASE_URL"] = emu.base_url
    result = user.trainops("lock", env={"REPLICATE_API_TOKEN": R8_TOKEN})
    assert result.returncode == 0, explain(result)
    user.commit("trainops lock")
    yield user
    user.cleanup()


def signed_replicate(emu: ReplicateEmulator, msg_id: str) -> tuple[bytes, dict[str, str]]:
    body = json.dumps({"id": "t-unknown", "status": "processing"}).encode()
    return body, emu.sign_webhook(body, msg_id)


def test_2000_half_open_connections_leave_serve_answering_with_few_descriptors(
    repo: UserRepo, gh: GitHubEmulator, emu: ReplicateEmulator
) -> None:
    served = Served(repo, gh, emu)
    pid = served.proc.pid
    try:
        before = descriptors(pid)
        peak = [before]

        def sample() -> None:
            peak[0] = max(peak[0], descriptors(pid))

        done = sweep(served.port, SWEEP, on_batch=sample)
        try:
            assert sum(done.opened.values()) + done.refused == SWEEP
            # Every connection that was left hanging is dropped by the server (its header or
            # body read timeout, or the connection cap); the bound is on this loop only.
            dropped = done.dropped_by_server(within=30)
            assert dropped == len(done.hanging), (dropped, len(done.hanging), done.opened)
            stuck = close_wait(served.port)
            # The client's 1 s timeout on this one request, not a timing of the sweep.
            body, headers = signed_replicate(emu, "msg_after_sweep")
            answer = httpx.post(
                f"{served.url}/webhooks/replicate", content=body, headers=headers, timeout=1.0
            )
            assert answer.status_code == 202, answer.text
            held = descriptors(pid)
        finally:
            done.close()
        assert held < MAX_FDS, (before, held)
        assert peak[0] < 1024, peak  # systemd's default limit, never reached on the way
        assert stuck == 0
    finally:
        code, err = served.stop()
    assert code == 0, err


def test_a_replayed_signed_github_push_gets_2xx_and_schedules_nothing(
    repo: UserRepo, gh: GitHubEmulator, emu: ReplicateEmulator
) -> None:
    served = Served(repo, gh, emu)
    try:
        now = int(time.time())
        push = {"ref": "refs/heads/main", "after": "1" * 40, "repository": {"pushed_at": now}}
        body, headers = github_hook("push", push)
        first = served.post("/webhooks/github", body, {**headers, "X-GitHub-Delivery": "d-1"})
        assert first.status_code == 202
        passes = served.idle()
        # The same delivery again, and with a fresh delivery id (the header is not signed).
        again = served.post("/webhooks/github", body, {**headers, "X-GitHub-Delivery": "d-1"})
        renamed = served.post("/webhooks/github", body, {**headers, "X-GitHub-Delivery": "d-2"})
        assert (again.status_code, renamed.status_code) == (200, 200)
        # A push signed long ago (its signed pushed_at), never seen: stale, no pass.
        old = {"ref": "refs/heads/main", "repository": {"pushed_at": int(time.time()) - 2 * 86400}}
        body, headers = github_hook("push", old)
        assert served.post("/webhooks/github", body, headers).status_code == 400
        time.sleep(1.0)  # a pass they had scheduled would have started by now
        assert served.idle() == passes
        assert served.metric("trainops_webhooks_total", source="github", outcome="repeat") == 2
        assert served.metric("trainops_webhooks_total", source="github", outcome="accepted") == 1
    finally:
        code, err = served.stop()
    assert code == 0, err


def test_a_replicate_webhook_repeated_after_a_restart_schedules_nothing(
    repo: UserRepo, gh: GitHubEmulator, emu: ReplicateEmulator
) -> None:
    served = Served(repo, gh, emu)
    try:
        body, headers = signed_replicate(emu, "msg_across_restart")
        assert served.post("/webhooks/replicate", body, headers).status_code == 202
    finally:
        code, err = served.stop()
    assert code == 0, err
    again = Served(repo, gh, emu)
    try:
        passes = again.idle()
        # Replicate's retry: the same webhook-id, a fresh timestamp and signature.
        body, headers = signed_replicate(emu, "msg_across_restart")
        answer = again.post("/webhooks/replicate", body, headers)
        assert answer.status_code == 200, answer.text
        time.sleep(1.0)
        assert again.idle() == passes
        assert again.metric("trainops_webhooks_total", source="replicate", outcome="repeat") == 1
        fresh_body, fresh = signed_replicate(emu, "msg_new")
        assert again.post("/webhooks/replicate", fresh_body, fresh).status_code == 202
    finally:
        code, err = again.stop()
    assert code == 0, err
    assert not (repo.root / "trainops").exists()  # kept in the git directory, not the tree


def test_the_token_is_required_from_loopback_when_set(
    repo: UserRepo, gh: GitHubEmulator, emu: ReplicateEmulator
) -> None:
    served = Served(repo, gh, emu, token=SERVE_TOKEN)
    try:
        for path in ("/", "/api/status", "/metrics"):
            bare = httpx.get(served.url + path, timeout=10)
            wrong = httpx.get(served.url + path, headers={"Authorization": "Bearer no"}, timeout=10)
            right = httpx.get(served.url + path, headers=served.auth, timeout=10)
            assert (bare.status_code, wrong.status_code, right.status_code) == (401, 401, 200)
        assert httpx.get(served.url + "/healthz", timeout=10).status_code == 200
        body, headers = signed_replicate(emu, "msg_no_token_needed")
        assert served.post("/webhooks/replicate", body, headers).status_code == 202
    finally:
        code, err = served.stop()
    assert code == 0, err
    assert SERVE_TOKEN not in err


def test_without_a_token_only_loopback_host_names_see_the_page(
    repo: UserRepo, gh: GitHubEmulator, emu: ReplicateEmulator
) -> None:
    """DNS rebinding: a page at evil.example whose name now resolves to 127.0.0.1 makes the
    browser on this machine send `Host: evil.example` to serve's port."""
    served = Served(repo, gh, emu)
    try:
        for path in ("/", "/api/status", "/metrics"):
            rebound = httpx.get(served.url + path, headers={"Host": "evil.example"}, timeout=10)
            assert rebound.status_code == 403, path
            assert httpx.get(served.url + path, timeout=10).status_code == 200
        local = httpx.get(served.url + "/", headers={"Host": f"localhost:{served.port}"})
        assert local.status_code == 200
    finally:
        code, err = served.stop()
    assert code == 0, err


def test_slow_bodies_huge_bodies_unsigned_floods_and_old_timestamps_do_nothing(
    repo: UserRepo, gh: GitHubEmulator, emu: ReplicateEmulator
) -> None:
    """The second round of attacks (issue 26): a webhook body trickled a byte at a time, bodies
    far over 1 MiB (declared, or chunked with no length), 300 distinct unsigned webhook-ids, and
    a validly signed delivery with an old timestamp."""
    served = Served(repo, gh, emu)
    memory = repo.root / ".git" / "trainops" / "webhooks-seen.jsonl"
    try:
        passes = served.idle()
        # Trickled body: one byte every 0.2 s does not extend the body deadline.
        with socket.create_connection(("127.0.0.1", served.port), timeout=30) as sock:
            sock.sendall(
                b"POST /webhooks/replicate HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n"
            )
            sent = 0
            try:
                for _ in range(150):  # the client's bound: 30 s
                    sock.sendall(b"x")
                    sent += 1
                    time.sleep(0.2)
            except OSError:
                pass
        assert sent < 150, "the server kept a trickled body open"

        huge = {"Content-Length": str(1 << 40), "Content-Type": "application/json"}
        with socket.create_connection(("127.0.0.1", served.port), timeout=10) as sock:
            head = "".join(f"{k}: {v}\r\n" for k, v in huge.items())
            sock.sendall(f"POST /webhooks/replicate HTTP/1.1\r\nHost: x\r\n{head}\r\n".encode())
            assert sock.recv(4096).startswith(b"HTTP/1.1 413")

        def chunks() -> Iterator[bytes]:
            for _ in range(3):
                yield b"x" * (1 << 20)

        chunked = httpx.post(f"{served.url}/webhooks/replicate", content=chunks(), timeout=10)
        assert chunked.status_code == 413

        body, _ = signed_replicate(emu, "unused")
        with httpx.Client(timeout=10) as client:
            for i in range(300):
                headers = emu.sign_webhook(body, f"msg_flood_{i}", secret="whsec_" + "QUJD" * 8)
                answer = client.post(
                    f"{served.url}/webhooks/replicate", content=body, headers=headers
                )
                assert answer.status_code == 401
        old = emu.sign_webhook(body, "msg_old", timestamp=time.time() - 301)
        assert served.post("/webhooks/replicate", body, old).status_code == 400
        time.sleep(1.0)
        assert served.idle() == passes
        assert not memory.exists() or "msg_flood" not in memory.read_text()
        assert "msg_old" not in (memory.read_text() if memory.exists() else "")
        # serve still answers a real delivery.
        body, headers = signed_replicate(emu, "msg_real")
        assert served.post("/webhooks/replicate", body, headers).status_code == 202
        assert "replicate:msg_real" in memory.read_text()
    finally:
        code, err = served.stop()
    assert code == 0, err


def test_a_body_cut_off_before_its_length_is_answered_400_not_413(
    repo: UserRepo, gh: GitHubEmulator, emu: ReplicateEmulator
) -> None:
    """413 is for a body over the limit; a client that sends less than its Content-Length and
    then closes (or half-closes) has sent a bad request: 400, answered while it can be read."""
    served = Served(repo, gh, emu)
    try:
        served.idle()
        for path in ("/webhooks/replicate", "/webhooks/github"):
            with socket.create_connection(("127.0.0.1", served.port), timeout=10) as sock:
                sock.sendall(
                    f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n".encode()
                    + b'{"id": "t'
                )
                time.sleep(0.3)  # the app is waiting for the rest
                sock.shutdown(socket.SHUT_WR)
                answer = b""
                while chunk := sock.recv(4096):
                    answer += chunk
            assert answer.startswith(b"HTTP/1.1 400"), answer
            with socket.create_connection(("127.0.0.1", served.port), timeout=10) as sock:
                sock.sendall(
                    f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n".encode()
                    + b'{"id": "t'
                )
                time.sleep(0.3)
            # closed outright: nobody to answer, but it is counted as the bad request it is
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and (
            served.metric("trainops_webhooks_total", source="github", outcome="refused-400") < 2
        ):
            time.sleep(0.1)
        for source in ("replicate", "github"):
            counts = {
                outcome: served.metric("trainops_webhooks_total", source=source, outcome=outcome)
                for outcome in ("refused-400", "refused-413")
            }
            assert counts == {"refused-400": 2, "refused-413": 0}, source
    finally:
        code, err = served.stop()
    assert code == 0, err
