"""A real Ray head on 127.0.0.1 for the tests: started once per pytest session, torn down after.

Every port is chosen free and the head gets its own `--temp-dir`, so heads of other sessions on
the same machine (other engineers, CI jobs) are neither met nor touched: teardown signals only
this head's processes (its `ray start --block` process group, and any process whose command line
names its temp dir), never `ray stop`, which stops every head of the user. `RAY_AUTH_MODE` is
disabled (from 2.60 a token would be written to ~/.ray and honoured by later heads).

`shared()` hands every fixture the same head; the fixtures `release()` it, and the last release
stops it (session-scoped fixtures of different conftests end together, at the session's end).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

START_TIMEOUT = 120.0  # a loaded 2-core machine starts a head in 5-30 s
# The first test to ask for the head waits for it: modules that use it allow for that.
TIMEOUT = pytest.mark.timeout(600)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def head_env(auth_token: str | None = None) -> dict[str, str]:
    """The environment of the head and its jobs: this interpreter's `python` first on PATH.
    With `auth_token`, token authentication (`RAY_AUTH_MODE=token`, the token in
    `RAY_AUTH_TOKEN`, as Ray reads them: `ray/_private/authentication/`), and HOME is the
    head's own so nothing is read from or written to the user's ~/.ray."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "TRAINOPS_"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update(
        {
            "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",  # else Linux binds the external interface
            "RAY_USAGE_STATS_ENABLED": "0",
            "RAY_AUTH_MODE": "disabled",
            "PYTHONUNBUFFERED": "1",
            # Jobs reach S3 only through what their spec.env names (moto's endpoint): without
            # it boto3 on the cluster would go to AWS. This endpoint answers nothing, locally.
            "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
            "AWS_EC2_METADATA_DISABLED": "true",
        }
    )
    if auth_token is not None:
        env.update({"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": auth_token})
    return env


@dataclass
class RayHead:
    temp_dir: Path
    dashboard_port: int
    proc: subprocess.Popen[bytes] | None = None
    log: Path = field(default=Path())
    auth_token: str | None = None  # token authentication on, with this token

    def auth_headers(self) -> dict[str, str]:
        """What a client of this head sends (none without token authentication)."""
        return {"Authorization": f"Bearer {self.auth_token}"} if self.auth_token else {}

    @property
    def address(self) -> str:
        """What `RAY_ADDRESS` holds for the job API."""
        return f"http://127.0.0.1:{self.dashboard_port}"

    @classmethod
    def start(cls, num_cpus: int = 2, attempts: int = 3, auth_token: str | None = None) -> RayHead:
        """A head up and ready; ports picked free can be taken before the head binds them, so
        a failed start is tried again on other ports."""
        for attempt in range(1, attempts + 1):
            try:
                return cls._start(num_cpus, auth_token)
            except RuntimeError as exc:
                print(f"ray head start {attempt} failed: {str(exc)[-2000:]}", file=sys.stderr)
                if attempt == attempts:
                    raise
        raise AssertionError("unreachable")

    @classmethod
    def _start(cls, num_cpus: int, auth_token: str | None = None) -> RayHead:
        temp_dir = Path(tempfile.mkdtemp(prefix="rayt-", dir="/tmp"))  # short: unix sockets
        head = cls(temp_dir, _free_port(), auth_token=auth_token)
        # Workers bind in a range below the kernel's ephemeral ports, where the free ports picked
        # above come from (a port in both makes `ray start` refuse).
        base = random.Random().randrange(20000, 30000, 500)
        args = [
            str(Path(sys.executable).parent / "ray"),
            "start",
            "--head",
            "--block",
            "--node-ip-address=127.0.0.1",
            "--dashboard-host=127.0.0.1",
            "--include-dashboard=true",
            f"--dashboard-port={head.dashboard_port}",
            f"--port={_free_port()}",
            f"--object-manager-port={_free_port()}",
            f"--node-manager-port={_free_port()}",
            f"--dashboard-agent-listen-port={_free_port()}",
            f"--dashboard-agent-grpc-port={_free_port()}",
            f"--runtime-env-agent-port={_free_port()}",
            f"--metrics-export-port={_free_port()}",
            f"--ray-client-server-port={_free_port()}",
            f"--min-worker-port={base}",
            f"--max-worker-port={base + 400}",
            f"--num-cpus={num_cpus}",
            "--num-gpus=0",
            "--object-store-memory=100000000",
            f"--temp-dir={temp_dir}",
            "--disable-usage-stats",
        ]
        head.log = temp_dir / "ray-start.log"
        with head.log.open("wb") as out:
            head.proc = subprocess.Popen(
                args,
                cwd=temp_dir,
                env={**head_env(auth_token), **({"HOME": str(temp_dir)} if auth_token else {})},
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        atexit.register(head.stop)
        try:
            head._wait_ready()
        except BaseException:
            head.stop()
            raise
        return head

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"ray start exited: {self.log.read_text(errors='replace')}")
            try:
                ready = urllib.request.Request(
                    f"{self.address}/api/jobs/", headers=self.auth_headers()
                )
                with urllib.request.urlopen(ready, timeout=5) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the Ray head did not come up: {self.log.read_text()}")
            time.sleep(0.5)
        self._warm_up(deadline)

    def _warm_up(self, deadline: float) -> None:
        """One trivial job to the end: the job agent is up and `python` runs entrypoints."""
        from ray.job_submission import JobSubmissionClient

        client = JobSubmissionClient(self.address, headers=self.auth_headers())
        while True:
            try:
                job = client.submit_job(entrypoint="python -c pass")
                break
            except RuntimeError:  # the agent is not up yet
                if time.monotonic() > deadline:
                    raise
                time.sleep(1.0)
        while not client.get_job_status(job).is_terminal():
            if time.monotonic() > deadline:
                raise RuntimeError("the Ray head's warm-up job did not finish")
            time.sleep(0.2)
        status = client.get_job_status(job)
        if status.value != "SUCCEEDED":
            raise RuntimeError(f"warm-up job {status}: {client.get_job_logs(job)}")
        client.delete_job(job)

    def stop(self) -> None:
        """Signal this head's processes only; then remove its temp dir."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=5)  # nothing of a test head is worth keeping: no long goodbye
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        self._kill_leftovers(proc.pid)
        shutil.rmtree(self.temp_dir, ignore_errors=True)

    def _kill_leftovers(self, pgid: int) -> None:
        import psutil

        mine = str(self.temp_dir)
        for _ in range(3):
            left = []
            for p in psutil.process_iter(["cmdline"]):
                with contextlib.suppress(psutil.Error, OSError):
                    if os.getpgid(p.pid) == pgid or any(mine in a for a in p.info["cmdline"] or ()):
                        left.append(p)
            if not left:
                return
            for p in left:
                with contextlib.suppress(psutil.Error):
                    p.kill()
            psutil.wait_procs(left, timeout=5)


_shared: RayHead | None = None
_users = 0


def shared() -> RayHead:
    """The session's head, started on first use."""
    global _shared, _users
    if _shared is None:
        _shared = RayHead.start()
    _users += 1
    return _shared


def release() -> None:
    global _shared, _users
    _users -= 1
    if _users <= 0 and _shared is not None:
        _shared.stop()
        _shared = None


@pytest.fixture(scope="session")
def ray_head() -> Iterator[RayHead]:
    """One real Ray head on 127.0.0.1 for the whole session (imported by the conftests that
    need it; every import hands out the same head)."""
    yield shared()
    release()
