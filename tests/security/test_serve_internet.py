"""`trainops serve` on the internet (issue 26, findings 5, 7, 8; DESIGN §13b): its webhook paths
are public, so anyone can open connections that never finish a request, replay a signed delivery
they saw, or reach the status page through a reverse proxy on the same host. A real `serve`
process on loopback, the Replicate and GitHub emulators, counts of what it did."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.test_replicate_cli import R8_TOKEN, job
from tests.e2e.test_serve import GH_TOKEN, Served
from tests.emulators.github import GitHubEmulator
from tests.emulators.replicate import ReplicateEmulator, SimClock
from tests.support.halfopen import close_wait, descriptors, sweep
from tests.support.workspace import UserRepo, explain

SWEEP = 2000  # half-open connections (issue 26: 1,100 exhausted the 1,024-descriptor limit)
MAX_FDS = 100


@pytest.fixture
def gh() -> Iterator[GitHubEmulator]:
    with GitHubEmulator(token=GH_TOKEN) as emulator:
        yield emulator
        assert emulator.errors == []


@pytest.fixture
def emu() -> Iterator[ReplicateEmulator]:
    with ReplicateEmulator(
        token=R8_TOKEN, queue_seconds=5, run_seconds=100, clock=SimClock(time.time())
    ) as emulator:
        yield emulator
        assert emulator.server_errors == []


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
        done = sweep(served.port, SWEEP)
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
        assert stuck == 0
    finally:
        code, err = served.stop()
    assert code == 0, err
