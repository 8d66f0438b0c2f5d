"""Remote inputs (DESIGN §18), as a user runs it: a run records what stood behind each input URL
just before its submit; when the object behind one URL changes, `plan` reports drift for that
job only and nothing retrains by itself; a `spec.digests` pin that does not hold refuses the
submit with both digests in the message, and nothing runs. The URLs are served by a web server on
loopback, named in `TRAINOPS_INPUT_HOSTS` (the only way a local address is ever asked)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.emulators.web import WebServer
from tests.support.workspace import UserRepo, explain, manifest


@pytest.fixture
def web() -> Iterator[WebServer]:
    with WebServer() as server:
        server.put("/portraits.zip", b"portraits v1")
        server.put("/styles.zip", b"styles v1")
        yield server


@pytest.fixture
def repo(tmp_path: Path, web: WebServer) -> Iterator[UserRepo]:
    jobs = {
        "portraits": manifest("portraits", {"images": f"{web.url}/portraits.zip"}),
        "styles": manifest("styles", {"images": f"{web.url}/styles.zip"}),
    }
    user = UserRepo.create(tmp_path, jobs)
    user.env["TRAINOPS_INPUT_HOSTS"] = web.url.removeprefix("http://")
    yield user
    user.cleanup()


def fingerprints(repo: UserRepo) -> dict[str, dict[str, str]]:
    return {job: dict(state.runs[-1].fingerprints) for job, state in repo.state().items()}


def test_a_changed_object_behind_a_url_is_drift_for_that_job_only(
    repo: UserRepo, web: WebServer
) -> None:
    repo.apply_ok()
    repo.wait_all_terminal()
    seen = fingerprints(repo)
    assert set(seen) == {"portraits", "styles"} and all("images" in f for f in seen.values())
    assert web.count("GET") == 0  # HEAD only

    quiet = repo.trainops("plan")
    assert quiet.returncode == 0 and "drift" not in quiet.stdout, explain(quiet)
    web.put("/portraits.zip", b"portraits v2, one image replaced")
    result = repo.trainops("plan")
    assert result.returncode == 0, explain(result)
    lines = [x.strip() for x in result.stdout.splitlines() if "input drift" in x]
    assert lines == ["portraits: input drift: images changed behind its URL"]
    assert "0 to submit" in result.stdout or "No changes" in result.stdout  # no retrain
    markdown = repo.trainops("plan", "--output", "markdown").stdout
    bullets = [x for x in markdown.splitlines() if x.startswith("- ") and "drift" in x]
    assert "#### Input drift" in markdown and len(bullets) == 1 and "portraits" in bullets[0]
    doc = json.loads(repo.trainops("plan", "--output", "json").stdout)
    assert "portraits: input drift: images changed behind its URL" in doc["notes"]


def test_an_unreachable_host_is_a_note_and_plan_still_succeeds(
    repo: UserRepo, web: WebServer
) -> None:
    repo.apply_ok()
    repo.wait_all_terminal()
    web.stop()
    result = repo.trainops("plan")
    assert result.returncode == 0, explain(result)
    assert "not checked for drift" in result.stderr and "Traceback" not in result.stderr


def test_a_pin_that_does_not_hold_refuses_the_submit_with_both_digests(
    repo: UserRepo, web: WebServer
) -> None:
    actual = "sha256:" + hashlib.sha256(b"portraits v1").hexdigest()
    pinned = "sha256:" + "0" * 64
    repo.write_job(
        "portraits",
        manifest("portraits", {"images": f"{web.url}/portraits.zip"}, digests={"images": pinned}),
    )
    repo.commit("pin portraits")
    result = repo.trainops("apply")
    assert result.returncode != 0, explain(result)
    text = result.stdout + result.stderr
    assert actual in text and pinned in text and "Traceback" not in text
    state = repo.state()
    assert "portraits" not in state or not state["portraits"].runs  # no intent, no run
    assert state["styles"].runs  # the other job went ahead

    repo.write_job(
        "portraits",
        manifest("portraits", {"images": f"{web.url}/portraits.zip"}, digests={"images": actual}),
    )
    repo.commit("pin the right digest")
    repo.apply_ok()
    assert len(repo.state()["portraits"].runs) == 1
