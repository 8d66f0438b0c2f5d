"""LocalProvider with real processes: runs in temporary repositories, observed through status.json.

These are real detached processes, so waiting for a state polls `observe()` against a deadline.
Every run a test starts is canceled at teardown, so a failing test leaves nothing running.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import pytest

from tests.support.gitrepo import git
from trainops.manifest import Job, TrainingJob
from trainops.providers.base import Intent, Observation, Submission
from trainops.providers.local import VANISHED, LocalProvider
from trainops.state.model import Health
from trainops.yamlsource import load_text

PROJECT = Path(__file__).resolve().parents[2]
REVISION = "0123456789ab"
SLEEP = ["python", "-c", "import time; print('ready', flush=True); time.sleep(60)"]


def make_job(
    repo: Path,
    name: str,
    command: list[str],
    workdir: str | None = ".",
    inputs: dict[str, object] | None = None,
) -> Job:
    spec = {"provider": "local", "command": command, "input": inputs or {}}
    if workdir is not None:
        spec["workdir"] = workdir
    text = json.dumps(
        {
            "apiVersion": "trainops/v1",
            "kind": "TrainingJob",
            "metadata": {"name": name},
            "spec": spec,
        }
    )  # JSON is YAML
    (repo / "jobs").mkdir(parents=True, exist_ok=True)
    (repo / "jobs" / f"{name}.yaml").write_text(text)
    docs, problems = load_text(text, f"jobs/{name}.yaml")
    assert not problems
    return Job(TrainingJob.model_validate(docs[0].data), docs[0])


def submission(job: Job, attempt: int = 1) -> Submission:
    return Submission(job, REVISION, attempt, dict(job.spec.input), "inputhash", "snap.yaml")


def wait_for(
    provider: LocalProvider, run_id: str, *healths: Health, timeout: float = 10.0
) -> Observation:
    deadline = time.monotonic() + timeout
    while True:
        obs = provider.observe([run_id])[run_id]
        if obs.health in healths:
            return obs
        if time.monotonic() > deadline:
            raise AssertionError(
                f"{run_id} is {obs.health}, not {healths}:\n{provider.logs(run_id, 20)}"
            )
        time.sleep(0.05)


def record(provider: LocalProvider, run_id: str) -> Path:
    assert provider.records_dir is not None
    return provider.records_dir / run_id


def status_of(provider: LocalProvider, run_id: str) -> dict[str, object]:
    data = json.loads((record(provider, run_id) / "status.json").read_text())
    assert isinstance(data, dict)
    return data


def live_members(pgid: int) -> list[int]:
    """Processes of group `pgid` that still run (zombies of a non-reaping init do not)."""
    found = []
    for proc in psutil.process_iter(["status"]):
        try:
            if os.getpgid(proc.pid) == pgid and proc.info["status"] != psutil.STATUS_ZOMBIE:
                found.append(proc.pid)
        except (ProcessLookupError, psutil.Error):
            continue
    return found


def wait_until_gone(pgid: int, timeout: float = 3.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while (members := live_members(pgid)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return members


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    git(tmp_path, "init", "--quiet")
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "train.py").write_text(
        (PROJECT / "src" / "trainops" / "templates" / "init" / "train" / "train.py").read_text()
    )
    return tmp_path


@pytest.fixture
def provider(repo: Path) -> Iterator[LocalProvider]:
    provider = LocalProvider(repo)
    yield provider
    provider.cancel_grace = 0.2
    assert provider.records_dir is not None
    for run_dir in provider.records_dir.glob("*"):
        provider.cancel(run_dir.name)


def test_a_run_succeeds_with_its_outputs_keyed_by_stem(provider: LocalProvider, repo: Path) -> None:
    job = make_job(repo, "tiny", ["python", "train/train.py"], inputs={"epochs": 60})
    ref = provider.submit(submission(job))
    assert ref.run_id == f"tiny-{REVISION}-1"

    obs = wait_for(provider, ref.run_id, Health.SUCCEEDED, Health.FAILED)
    run_dir = provider.runs_dir / ref.run_id
    assert obs.health is Health.SUCCEEDED, obs.error
    assert obs.outputs == {
        "weights": str(run_dir / "outputs" / "weights.json"),
        "metrics": str(run_dir / "outputs" / "metrics.json"),
    }
    assert obs.billed_seconds is not None and obs.billed_seconds >= 0
    assert provider.logs(ref.run_id, 1).startswith("done: w=")
    assert provider.logs(ref.run_id, 2).splitlines()[0].startswith("epoch 60/60 loss=")
    assert json.loads((run_dir / "input.json").read_text()) == {"epochs": 60}
    meta = json.loads((record(provider, ref.run_id) / "meta.json").read_text())
    assert (meta["argv"][0], meta["workdir"], meta["attempt"]) == (sys.executable, ".", 1)


PROGRESS = [
    "python",
    "-c",
    "import json, os, time; out = os.environ['TRAINOPS_OUTPUT_DIR']; "
    "json.dump({'eval_loss': 0.7}, open(os.path.join(out, 'metrics.json'), 'w')); "
    "open(os.path.join(out, '.written'), 'w').close(); time.sleep(60)",
]


def test_a_running_run_reports_its_metrics_so_far_as_progress_not_as_metrics(
    provider: LocalProvider, repo: Path
) -> None:
    """DESIGN §21 early stop: metrics.json read while the run runs is `progress` (live, never
    recorded); `metrics` stays the final metrics, empty until the run has ended."""
    job = make_job(repo, "sweep", PROGRESS)
    ref = provider.submit(submission(job))
    written = provider.runs_dir / ref.run_id / "outputs" / ".written"
    deadline = time.monotonic() + 10
    while not written.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    obs = wait_for(provider, ref.run_id, Health.RUNNING)
    assert (obs.progress, obs.metrics) == ({"eval_loss": 0.7}, {})
    provider.cancel(ref.run_id)
    ended = wait_for(provider, ref.run_id, Health.CANCELED)
    assert (ended.progress, ended.metrics) == ({}, {"eval_loss": 0.7})


def test_submit_is_idempotent_even_when_raced(provider: LocalProvider, repo: Path) -> None:
    job = make_job(repo, "once", ["python", "-c", "open('starts.txt', 'a').write('x\\n')"])
    with ThreadPoolExecutor(8) as pool:
        refs = set(pool.map(lambda _: provider.submit(submission(job)), range(8)))
    refs.add(provider.submit(submission(job)))

    assert len(refs) == 1
    (ref,) = refs
    assert wait_for(provider, ref.run_id, Health.SUCCEEDED).health is Health.SUCCEEDED
    assert provider.submit(submission(job)) == ref
    assert (repo / "starts.txt").read_text() == "x\n"


STARTER = """
import sys
from pathlib import Path
from tests.integration.test_local_provider import make_job, submission
from trainops.providers.local import LocalProvider
repo = Path(sys.argv[1])
job = make_job(repo, "outlive", ["python", "-c", sys.argv[2]])
print(LocalProvider(repo).submit(submission(job)).run_id)
"""


def test_a_run_outlives_the_process_that_started_it(provider: LocalProvider, repo: Path) -> None:
    command = (
        "import os, time; time.sleep(1); "
        "open(os.environ['TRAINOPS_OUTPUT_DIR'] + '/done.txt', 'w').write('ok')"
    )
    # capture_output: a run holding the starter's pipes would make this wait for the run.
    starter = subprocess.run(
        [sys.executable, "-c", STARTER, str(repo), command],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=20,
        check=True,
    )
    run_id = starter.stdout.strip()

    assert provider.observe([run_id])[run_id].health.active
    obs = wait_for(provider, run_id, Health.SUCCEEDED, Health.FAILED)
    assert (obs.health, list(obs.outputs)) == (Health.SUCCEEDED, ["done"])


def test_cancel_stops_the_process_group_and_is_idempotent(
    provider: LocalProvider, repo: Path
) -> None:
    ref = provider.submit(submission(make_job(repo, "long", SLEEP)))
    wait_for(provider, ref.run_id, Health.RUNNING)
    pgid = status_of(provider, ref.run_id)["pgid"]
    assert isinstance(pgid, int) and live_members(pgid)

    started = time.monotonic()
    provider.cancel(ref.run_id)
    assert time.monotonic() - started < 3
    assert wait_until_gone(pgid) == []
    assert provider.observe([ref.run_id])[ref.run_id].health is Health.CANCELED
    provider.cancel(ref.run_id)
    provider.cancel("never-submitted-1")
    assert status_of(provider, ref.run_id)["status"] == "canceled"  # the supervisor kept it


def test_cancel_kills_a_command_that_ignores_sigterm(provider: LocalProvider, repo: Path) -> None:
    stubborn = [
        "python",
        "-c",
        "import signal, time; signal.signal(signal.SIGTERM, "
        "signal.SIG_IGN); print('ready', flush=True); time.sleep(60)",
    ]
    ref = provider.submit(submission(make_job(repo, "stubborn", stubborn)))
    wait_for(provider, ref.run_id, Health.RUNNING)
    while "ready" not in provider.logs(ref.run_id, 5):
        time.sleep(0.05)
    pgid = status_of(provider, ref.run_id)["pgid"]
    assert isinstance(pgid, int)

    provider.cancel_grace = 0.3
    provider.cancel(ref.run_id)
    assert wait_until_gone(pgid) == []
    assert provider.observe([ref.run_id])[ref.run_id].health is Health.CANCELED


def test_a_nonzero_exit_fails_with_the_code_and_last_stderr_line(
    provider: LocalProvider, repo: Path
) -> None:
    failing = [
        "python",
        "-c",
        "import sys; print('loading'); print('ValueError: bad lr', file=sys.stderr); sys.exit(3)",
    ]
    ref = provider.submit(submission(make_job(repo, "fails", failing)))
    obs = wait_for(provider, ref.run_id, Health.FAILED, Health.SUCCEEDED)

    assert (obs.health, obs.error, obs.retryable) == (
        Health.FAILED,
        "exit code 3: ValueError: bad lr",
        True,
    )
    assert status_of(provider, ref.run_id)["exit_code"] == 3
    assert provider.logs(ref.run_id, 10).splitlines() == ["loading", "ValueError: bad lr"]


def test_a_killed_supervisor_is_failed_as_vanished(provider: LocalProvider, repo: Path) -> None:
    ref = provider.submit(submission(make_job(repo, "orphan", SLEEP)))
    wait_for(provider, ref.run_id, Health.RUNNING)
    status = status_of(provider, ref.run_id)
    assert isinstance(status["supervisor_pid"], int) and isinstance(status["pgid"], int)

    os.kill(status["supervisor_pid"], signal.SIGKILL)
    obs = wait_for(provider, ref.run_id, Health.FAILED)
    assert status_of(provider, ref.run_id)["status"] == "running"  # observe only reads
    provider.reap([ref.run_id])
    assert (obs.error, obs.retryable) == (VANISHED, True)
    assert wait_until_gone(status["pgid"]) == []  # the command does not train on unrecorded
    assert status_of(provider, ref.run_id)["status"] == "failed"  # recorded for good


@pytest.mark.parametrize(
    ("command", "workdir", "error"),
    [
        (
            ["no-such-trainer-xyz", "--fast"],
            ".",
            "command not found: 'no-such-trainer-xyz' "
            "(not on PATH, nor a file relative to workdir .)",
        ),
        (["python", "train.py"], "missing", "workdir missing does not exist"),
    ],
    ids=["command-not-found", "workdir-missing"],
)
def test_a_command_that_cannot_start_fails_for_good(
    provider: LocalProvider, repo: Path, command: list[str], workdir: str, error: str
) -> None:
    ref = provider.submit(submission(make_job(repo, "broken", command, workdir=workdir)))
    obs = wait_for(provider, ref.run_id, Health.FAILED, Health.SUCCEEDED)
    assert (obs.health, obs.error, obs.retryable) == (Health.FAILED, error, False)
    assert provider.logs(ref.run_id, 1) == f"trainops: {error}"


@pytest.mark.parametrize("verdict", ["canceled", "lost"])
def test_a_claim_whose_supervisor_never_ran_is_never_started_late(
    provider: LocalProvider, repo: Path, verdict: str
) -> None:
    """A submit that crashed between claiming the run and starting its supervisor."""
    run_id = f"crashed-{REVISION}-1"
    run_dir = record(provider, run_id)
    run_dir.mkdir(parents=True)
    (run_dir / "meta.json").write_text(
        json.dumps(
            {
                "created_at": time.time() - 60,
                "cwd": str(repo),
                "workdir": ".",
                "argv": [sys.executable, "-c", "open('late.txt', 'w')"],
            }
        )
    )
    if verdict == "canceled":
        provider.cancel(run_id)
        expected = (Health.CANCELED, "canceled")
    else:
        expected = (Health.FAILED, VANISHED)
        provider.reap([run_id])  # what apply does before it observes
    obs = provider.observe([run_id])[run_id]
    assert (obs.health, obs.error) == expected

    late = (
        f"from pathlib import Path; from trainops.providers._supervisor import _supervise; "
        f"raise SystemExit(_supervise(Path({str(run_dir)!r})))"
    )
    subprocess.run([sys.executable, "-c", late], check=True, timeout=20)
    assert not (repo / "late.txt").exists()
    assert (provider.observe([run_id])[run_id].health, obs.error) == expected


def test_find_adopts_exactly_the_run_of_the_intent(provider: LocalProvider, repo: Path) -> None:
    ref = provider.submit(submission(make_job(repo, "adopt", ["python", "-c", "pass"])))
    intent = Intent("adopt", REVISION, 1, "inputhash", ref.created_at - 1, "local")

    assert provider.find(intent) == ref
    assert provider.find(Intent("adopt", REVISION, 2, "inputhash", 0, "local")) is None
    assert provider.find(Intent("other", REVISION, 1, "inputhash", 0, "local")) is None


def test_unknown_run_ids_are_absent(provider: LocalProvider, repo: Path) -> None:
    record(provider, "x").mkdir(parents=True)
    assert provider.observe(["nope-0123456789ab-1", "../x", "", "."]) == {}
    assert provider.logs("nope-0123456789ab-1", 5) == ""


def test_check_finds_a_missing_workdir_or_command_path(provider: LocalProvider, repo: Path) -> None:
    assert provider.check(make_job(repo, "fine", ["python", "train/train.py"]), None) == []
    assert provider.check(make_job(repo, "bare", ["not-installed-here"]), None) == []
    [missing] = provider.check(make_job(repo, "gone", ["python"], workdir="nowhere"), None)
    [nofile] = provider.check(make_job(repo, "typo", ["./train/trian.sh"]), None)

    assert (missing.file, missing.message, missing.job) == (
        "jobs/gone.yaml",
        "workdir nowhere does not exist",
        "gone",
    )
    assert (nofile.message, nofile.line) == ("command './train/trian.sh' does not exist", 1)


def test_check_tells_every_job_of_a_shared_workdir_its_own_problem(
    provider: LocalProvider, repo: Path
) -> None:
    """Jobs sharing a workdir (or a manifest folder) are looked up once per validation: each
    still gets its own problem, named and located in its own manifest."""
    jobs = [make_job(repo, n, ["./run.sh"], workdir="shared") for n in ("one", "two")]
    gone = [provider.check(job, None) for job in jobs]
    (repo / "shared").mkdir()
    found = provider.check(make_job(repo, "three", ["./run.sh"], workdir=None), None)

    assert [(p.job, p.file, p.message) for [p] in gone] == [
        ("one", "jobs/one.yaml", "workdir shared does not exist"),
        ("two", "jobs/two.yaml", "workdir shared does not exist"),
    ]
    assert [(p.job, p.message) for p in found] == [("three", "command './run.sh' does not exist")]


def test_a_copied_clone_never_claims_the_originals_runs(tmp_path: Path) -> None:
    """DESIGN §10: a run belongs to the clone that started it. `cp -r` copies the git directory
    with its clone id; the copy sees that the id was made for another path and takes its own."""
    import shutil

    original = tmp_path / "original"
    original.mkdir()
    git(original, "init", "--quiet")
    first = LocalProvider(original)
    assert first.location().endswith("#unclaimed")  # read-only: nothing is made
    assert not (original / ".git" / "trainops").exists()
    here = first.location(claim=True)
    assert here.startswith(f"{socket.gethostname()}:{original}#")
    assert LocalProvider(original).location() == here  # stable

    shutil.copytree(original, tmp_path / "copy", symlinks=True)
    copy = LocalProvider(tmp_path / "copy")
    assert copy.location() not in (here,) and copy.location().endswith("#unclaimed")
    mine = copy.location(claim=True)
    assert mine != here and mine.rsplit("#", 1)[1] != here.rsplit("#", 1)[1]
    assert LocalProvider(original).location() == here


def test_a_run_whose_record_vanished_is_found_while_its_supervisor_lives(
    provider: LocalProvider, repo: Path
) -> None:
    """Its record deleted (not by git clean, which never reaches the git directory): the live
    supervisor still names the run, so it is Running, not lost, and nothing restarts it."""
    import shutil

    ref = provider.submit(submission(make_job(repo, "orphaned", SLEEP)))
    wait_for(provider, ref.run_id, Health.RUNNING)
    pgid = status_of(provider, ref.run_id)["pgid"]
    assert isinstance(pgid, int)
    try:
        shutil.rmtree(record(provider, ref.run_id))
        assert provider.observe([ref.run_id])[ref.run_id].health is Health.RUNNING
    finally:
        os.killpg(pgid, signal.SIGKILL)
    assert wait_until_gone(pgid) == []
    assert provider.observe([ref.run_id]) == {}
