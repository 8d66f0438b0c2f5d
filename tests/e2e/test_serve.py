"""`trainops serve` as a user runs it: a subprocess in a clone with a bare remote, against the
Replicate emulator (which sends real signed webhooks) and the GitHub emulator. The interval is an
hour, so everything these tests see after the first pass was caused by a webhook. The status
page is also loaded in a real browser: headless Debian Chromium (`apt-get install chromium`;
`.ci/run` installs it when missing), launched once, whose DOM must hold every job's row and a runs
chart with one point per run; `status --html` writes the same page as files.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.test_replicate_cli import R8_TOKEN, job
from tests.emulators.github import GitHubEmulator
from tests.emulators.replicate import CREATE_PATH, LIST_PATH, ReplicateEmulator, simulated
from tests.support.gitrepo import git
from tests.support.workspace import UserRepo, config, explain

OWNER, NAME = "acme", "models"
GH_TOKEN = "ghs_" + "ServeE2eGitHubT0ken" * 2
HOOK_SECRET = "serve-github-hook-secret-5b1e"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def eventually(check: Any, timeout: float = 60.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or check}")
        time.sleep(0.1)


class Served:
    """One `trainops serve` process and what it answers."""

    def __init__(
        self,
        repo: UserRepo,
        gh: GitHubEmulator,
        emu: ReplicateEmulator,
        wait: bool = True,
        interval: str = "1h",
        public: bool = True,
        token: str = "",
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.auth = {"Authorization": f"Bearer {token}"} if token else {}
        self.proc = repo.start(
            "serve",
            "--listen",
            f"127.0.0.1:{self.port}",
            "--interval",
            interval,
            "--github",
            env={
                **gh.env(),
                "REPLICATE_API_TOKEN": R8_TOKEN,
                "REPLICATE_BASE_URL": emu.base_url,
                "TRAINOPS_PUBLIC_URL": self.url if public else "",
                "TRAINOPS_GITHUB_WEBHOOK_SECRET": HOOK_SECRET,
                "GITHUB_REPOSITORY": f"{OWNER}/{NAME}",
                "TRAINOPS_GITHUB_WRITE_INTERVAL": "0",
                "TRAINOPS_GITHUB_BACKOFF": "0",
                **({"TRAINOPS_SERVE_TOKEN": token} if token else {}),
            },
        )
        if wait:
            self.ready()

    def ready(self) -> None:
        eventually(self._first_pass, what="the first pass")

    def _first_pass(self) -> bool:
        assert self.proc.poll() is None, self.proc.communicate()
        try:
            reply = httpx.get(f"{self.url}/api/status", headers=self.auth, timeout=5)
            return reply.status_code == 200
        except httpx.HTTPError:
            return False

    def status(self) -> dict[str, Any]:
        return dict(httpx.get(f"{self.url}/api/status", headers=self.auth, timeout=10).json())

    def metric(self, name: str, **labels: str) -> float:
        text = httpx.get(f"{self.url}/metrics", headers=self.auth, timeout=10).text
        want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        for line in text.splitlines():
            m = re.fullmatch(rf"{name}(?:\{{(.*)\}})? (\S+)", line)
            if m and ",".join(sorted((m.group(1) or "").split(","))) == want:
                return float(m.group(2))
        return 0.0

    def idle(self) -> float:
        """Wait until no pass runs or is scheduled; the count of passes done so far."""

        def quiet() -> bool:
            # In this order, one scrape after the other: a pass starting sets in_progress before
            # it clears pending, and counts itself before it clears in_progress (controller.py),
            # so pending 0 then in_progress 0 is never a pass between the two, and the count
            # read after them has every pass that ended. (in_progress first could read 0 just
            # before a pending pass started, then pending 0 just after.)
            return (
                self.metric("trainops_pass_pending") == 0
                and self.metric("trainops_pass_in_progress") == 0
            )

        eventually(quiet, what="the controller to be idle")
        return self.metric("trainops_passes_total", outcome="ok")

    def post(self, path: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
        return httpx.post(f"{self.url}{path}", content=body, headers=headers, timeout=10)

    def stop(self) -> tuple[int, str]:
        self.proc.send_signal(signal.SIGTERM)
        _out, err = self.proc.communicate(timeout=60)
        return self.proc.returncode, err


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


def github_hook(
    event: str, payload: dict[str, Any], secret: str = HOOK_SECRET
) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(payload).encode()
    sig = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return body, {
        "X-GitHub-Event": event,
        "X-Hub-Signature-256": sig,
        "Content-Type": "application/json",
    }


def test_a_completed_training_is_reported_at_once_and_forged_webhooks_do_nothing(
    repo: UserRepo, gh: GitHubEmulator, emu: ReplicateEmulator
) -> None:
    served = Served(repo, gh, emu)
    try:
        [created] = [r for r in emu.requests if re.search(CREATE_PATH, r.path)]
        assert created.body["webhook"] == f"{served.url}/webhooks/replicate"
        assert created.body["webhook_events_filter"] == ["start", "completed"]
        source = git(repo.root, "rev-parse", "HEAD")

        emu.advance(200)  # the training starts and completes; the emulator sends both webhooks
        deliveries = emu.wait_webhooks()
        assert [d.status for d in deliveries] == [202, 202]
        statuses = eventually(
            lambda: [s for s in gh.statuses(source) if s["state"] == "success"],
            what="the success status",
        )
        assert statuses[0]["context"] == "trainops/portraits"
        assert served.metric("trainops_github_calls_total", outcome="2xx") > 0
        row = eventually(lambda: [j for j in served.status()["jobs"] if j["health"] == "Succeeded"])
        assert row[0]["job"] == "portraits"

        passes = served.idle()
        assert passes <= 3  # the first pass, then the two webhooks' (coalesced when they overlap)
        body = json.dumps(emu.training_json(deliveries[-1].training_id)).encode()
        forged = emu.sign_webhook(body, "msg_forged", secret="whsec_" + "QUJD" * 8)
        stale = emu.sign_webhook(body, "msg_stale", timestamp=time.time() - 3600)
        replayed = emu.sign_webhook(body, deliveries[-1].msg_id)
        assert served.post("/webhooks/replicate", body, forged).status_code == 401
        assert served.post("/webhooks/replicate", body, stale).status_code == 400
        assert served.post("/webhooks/replicate", body, replayed).status_code == 200  # no pass
        hook, headers = github_hook("push", {"ref": "refs/heads/main"}, secret="wrong")
        assert served.post("/webhooks/github", hook, headers).status_code == 401
        time.sleep(1.0)  # a pass they had scheduled would have started by now
        assert served.idle() == passes
        assert (
            served.metric("trainops_webhooks_total", source="replicate", outcome="refused-401") == 1
        )

        # A push webhook makes a new manifest run; another event is acknowledged and ignored.
        hook, headers = github_hook("issues", {"action": "opened"})
        assert served.post("/webhooks/github", hook, headers).status_code == 202
        repo.write_job("sketches", job("sketches", destination="acme/sketches"))
        repo.commit("add sketches")
        hook, headers = github_hook("push", {"ref": "refs/heads/main"})
        assert served.post("/webhooks/github", hook, headers).status_code == 202
        eventually(lambda: len(emu.trainings) == 2, what="the new manifest's training")
        assert emu.trainings[1].destination == "acme/sketches"
        eventually(
            lambda: 'data-job="sketches"' in httpx.get(served.url + "/", timeout=10).text,
            what="the new job on the status page",
        )
    finally:
        code, err = served.stop()
    assert code == 0, err
    assert R8_TOKEN not in err and GH_TOKEN not in err


def test_without_webhooks_the_interval_reconciles(
    repo: UserRepo, gh: GitHubEmulator, emu: ReplicateEmulator
) -> None:
    served = Served(repo, gh, emu, interval="1s", public=False)
    try:
        [created] = [r for r in emu.requests if re.search(CREATE_PATH, r.path)]
        assert "webhook" not in created.body
        emu.advance(200)
        source = git(repo.root, "rev-parse", "HEAD")
        eventually(
            lambda: [s for s in gh.statuses(source) if s["state"] == "success"],
            what="the scheduled pass to report the success",
        )
        assert emu.webhook_deliveries == []
        assert served.metric("trainops_last_successful_pass_timestamp_seconds") > 0
    finally:
        code, err = served.stop()
    assert code == 0, err


def test_under_block_a_serve_pass_holds_what_no_reviewed_plan_showed(
    tmp_path: Path, gh: GitHubEmulator, emu: ReplicateEmulator
) -> None:
    # DESIGN §20: serve's passes bind to the reviewed plan as apply's do, or a controller
    # would start what `block` held on the push.
    cfg = config(policy={"require_reviewed_plan": "block"})
    repo = UserRepo.create(tmp_path, {"portraits": job("portraits")}, cfg=cfg, name="blocked")
    repo.env["REPLICATE_BASE_URL"] = emu.base_url
    assert repo.trainops("lock", env={"REPLICATE_API_TOKEN": R8_TOKEN}).returncode == 0
    sha = repo.commit("trainops lock")  # pushed straight to main: no pull request
    served = Served(repo, gh, emu)
    try:
        [row] = served.status()["jobs"]
        assert (row["sync"], row["reason"]) == ("Blocked", "no reviewed plan: pushed directly")
        assert not [r for r in emu.requests if re.search(CREATE_PATH, r.path)]
        # The plan workflow run by hand on the commit: the next pass starts what it showed.
        (tmp_path / "dispatch.json").write_text("{}")
        planned = repo.trainops(
            "plan",
            "--github",
            env={
                **gh.env(),
                "REPLICATE_API_TOKEN": R8_TOKEN,
                "GITHUB_REPOSITORY": f"{OWNER}/{NAME}",
                "GITHUB_EVENT_NAME": "workflow_dispatch",
                "GITHUB_EVENT_PATH": str(tmp_path / "dispatch.json"),
                "GITHUB_SHA": sha,
                "TRAINOPS_GITHUB_WRITE_INTERVAL": "0",
            },
        )
        assert planned.returncode == 0, explain(planned)
        hook, headers = github_hook("push", {"ref": "refs/heads/main"})
        assert served.post("/webhooks/github", hook, headers).status_code == 202
        eventually(lambda: len(emu.trainings) == 1, what="the reviewed training")
    finally:
        code, err = served.stop()
        repo.cleanup()
    assert code == 0, err


def test_sigterm_finishes_the_pass_in_flight_then_exits_0(
    repo: UserRepo, gh: GitHubEmulator, emu: ReplicateEmulator
) -> None:
    served = Served(repo, gh, emu)
    source = git(repo.root, "rev-parse", "HEAD")
    emu.inject("delay", method="GET", path=LIST_PATH, delay=3.0)  # the next pass's observe
    emu.advance(200)  # completes: the webhook starts that pass
    eventually(lambda: served.metric("trainops_pass_in_progress") == 1, what="the pass")
    code, err = served.stop()
    assert code == 0, err
    assert "stopping after the pass in flight" in err
    # The pass SIGTERM arrived in went on to its end: the success was reported.
    assert gh.statuses(source)[0]["state"] == "success"  # the newest


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        pytest.param(("--listen", "0.0.0.0:8080"), "TRAINOPS_SERVE_TOKEN", id="off-loopback"),
        pytest.param(("--listen", "nowhere"), "is not HOST:PORT", id="bad-listen"),
        pytest.param(("--interval", "soon"), "is not a duration", id="bad-interval"),
    ],
)
def test_serve_refuses_bad_options_before_serving(
    repo: UserRepo, args: tuple[str, ...], needle: str
) -> None:
    result = repo.trainops("serve", *args, env={"REPLICATE_API_TOKEN": R8_TOKEN}, timeout=60)
    assert result.returncode == 2, explain(result)
    assert needle in result.stderr and "Traceback" not in result.stderr


def test_two_controllers_and_a_racing_apply_start_each_training_once(
    repo: UserRepo, gh: GitHubEmulator, emu: ReplicateEmulator, tmp_path: Path
) -> None:
    for name in ("a", "b", "c"):
        repo.write_job(name, job(name, destination=f"acme/{name}"))
    repo.commit("three jobs")
    other = UserRepo.clone_of(repo, tmp_path / "second")
    other.env.update(repo.env)
    # Both controllers' first passes and an apply, started together: all three plan the same
    # four submissions; the state branch's compare-and-swap lets one win each.
    first = Served(repo, gh, emu, wait=False)
    second = Served(other, gh, emu, wait=False)
    racer = repo.start("apply", env={"REPLICATE_API_TOKEN": R8_TOKEN})
    try:
        out, err = racer.communicate(timeout=120)
        assert racer.returncode == 0, out + err
        first.ready()
        second.ready()
        emu.advance(10)  # all start: webhooks wake both controllers at once
        emu.wait_webhooks()
        for served in (first, second):
            eventually(lambda s=served: len(s.status()["jobs"]) == 4)
        hook, headers = github_hook("push", {"ref": "refs/heads/main"})
        for served in (first, second):
            assert served.post("/webhooks/github", hook, headers).status_code == 202
        time.sleep(1.0)
    finally:
        codes = [first.stop()[0], second.stop()[0]]
    assert codes == [0, 0]
    counts = emu.training_counts()
    assert len(emu.trainings) == 4 and set(counts.values()) == {1}, counts


# ---- the status page in a browser ----------------------------------------------------------

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    assert found, "Debian's chromium is needed (apt-get install -y chromium; .ci/run does it)"
    return found


def dump_dom(url: str, profile: Path) -> str:
    proc = subprocess.run(
        [chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--dump-dom", url],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def test_the_browser_finds_every_job_and_one_point_per_run(
    repo: UserRepo, gh: GitHubEmulator, emu: ReplicateEmulator, tmp_path: Path
) -> None:
    repo.write_job("sketches", job("sketches", destination="acme/sketches"))
    repo.commit("two jobs")
    served = Served(repo, gh, emu)
    try:
        emu.advance(200)  # both succeed
        emu.wait_webhooks()
        repo.write_job("sketches", job("sketches", destination="acme/sketches", steps=1200))
        repo.commit("more steps: a second run of sketches")
        hook, headers = github_hook("push", {"ref": "refs/heads/main"})
        assert served.post("/webhooks/github", hook, headers).status_code == 202
        eventually(lambda: len(emu.trainings) == 3, what="the edited job's run")
        eventually(
            lambda: served.status()["jobs"][1]["run_id"] == emu.trainings[2].id,
            what="the page to show it",
        )
        dom = dump_dom(served.url + "/", tmp_path / "profile")
    finally:
        code, err = served.stop()
    assert code == 0, err
    rows = re.findall(r'<tr class="job" data-job="([^"]+)"', dom)
    assert rows == ["portraits", "sketches"]
    runs_chart = re.search(r'data-chart="runs".*?</svg>', dom, re.S)
    assert runs_chart is not None
    points = re.findall(r'<circle class="point"[^>]*data-run="([^"]*)"', runs_chart.group(0))
    assert sorted(points) == sorted(t.id for t in emu.trainings)

    site = tmp_path / "site"
    result = repo.trainops(
        "status", "--html", str(site), env={"REPLICATE_API_TOKEN": R8_TOKEN}, timeout=60
    )
    assert result.returncode == 0, result.stderr
    static = (site / "index.html").read_text()
    assert re.findall(r'<tr class="job" data-job="([^"]+)"', static) == rows
    static_chart = re.search(r'data-chart="runs".*?</svg>', static, re.S)
    assert static_chart is not None
    assert static_chart.group(0).count('<circle class="point"') == 3
    assert (site / "api" / "status.json").is_file()
