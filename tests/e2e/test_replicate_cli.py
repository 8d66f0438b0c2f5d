"""`trainops` as a user runs it, on Replicate: the CLI as a subprocess in a real git repository
with a bare remote, against the Replicate emulator started by the test. Simulated time moves only
when a test advances it between two commands, so each `apply` sees exactly the trainings the test
expects, and every claim is checked where it happens: trainings and requests at the emulator, run
records on the state branch, exit codes and messages of the CLI.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.emulators.replicate import (
    CANCEL_PATH,
    CREATE_PATH,
    FLUX_LORA_OLD_VERSION,
    FLUX_LORA_VERSION,
    OpenAPIResponses,
    ReplicateEmulator,
    SimClock,
)
from tests.support.gitrepo import git
from tests.support.workspace import UserRepo, explain
from trainops.state.layout import fanout, snapshot_path, state_path

R8_TOKEN = "r8_" + "E2eReplicateT0ken" * 2
TRAINER = "ostris/flux-dev-lora-trainer"
IMAGES = "https://example.com/portraits.zip"


def job(
    name: str,
    trainer: str = TRAINER,
    destination: str = "acme/portraits",
    base: dict[str, Any] | None = None,
    **input: Any,
) -> str:
    """A Replicate TrainingJob; `input` adds to (or replaces keys of) `base`."""
    base = {"input_images": IMAGES, "steps": 1000} if base is None else base
    doc = {
        "apiVersion": "trainops/v1",
        "kind": "TrainingJob",
        "metadata": {"name": name},
        "spec": {
            "provider": "replicate",
            "trainer": trainer,
            "destination": destination,
            "hardware": "gpu-h100",
            "input": {**base, **input},
        },
    }
    return yaml.safe_dump(doc, sort_keys=False)


class Replicated:
    """A user's repository configured for the emulator, and the CLI run in it with the token in
    the environment. Every output is kept for the token check."""

    def __init__(self, repo: UserRepo, emu: ReplicateEmulator) -> None:
        self.repo, self.emu = repo, emu
        self.outputs: list[str] = []

    def run(self, *args: str, token: str = R8_TOKEN) -> subprocess.CompletedProcess[str]:
        result = self.repo.trainops(*args, env={"REPLICATE_API_TOKEN": token})
        self.outputs += [result.stdout, result.stderr]
        return result

    def ok(self, *args: str) -> subprocess.CompletedProcess[str]:
        result = self.run(*args)
        assert result.returncode == 0, explain(result)
        return result

    def creates(self) -> int:
        return self.emu.count("POST", CREATE_PATH)

    def statuses(self) -> list[str]:
        return [t.status for t in self.emu.trainings]

    def state_file(self, name: str) -> dict[str, Any]:
        assert self.repo.remote is not None
        text = git(self.repo.remote, "show", f"trainops/state:{state_path(name)}")
        return dict(json.loads(text))

    def status_json(self) -> dict[str, dict[str, Any]]:
        rows = json.loads(self.ok("status", "-o", "json").stdout)["jobs"]
        return {row["job"]: row for row in rows}


@pytest.fixture
def emu() -> Iterator[ReplicateEmulator]:
    # Simulated time starts at the real time: the CLI stamps intents with its own clock.
    with ReplicateEmulator(
        token=R8_TOKEN, queue_seconds=5, run_seconds=100, clock=SimClock(time.time())
    ) as emulator:
        yield emulator
        assert emulator.server_errors == []
        assert OpenAPIResponses().errors(emulator.requests) == []


@pytest.fixture
def make(tmp_path: Path, emu: ReplicateEmulator) -> Iterator[Any]:
    def factory(jobs: dict[str, str], *, lock: bool = True) -> Replicated:
        repo = UserRepo.create(tmp_path, jobs)
        repo.env["REPLICATE_BASE_URL"] = emu.base_url
        user = Replicated(repo, emu)
        if lock:
            user.ok("lock")
            user.repo.commit("trainops lock")
        return user

    yield factory


# ---- apply: once, never again, replaced on edit, canceled on removal -------------------------


def test_apply_creates_one_training_then_none_and_an_edit_replaces_it(make: Any) -> None:
    user = make({"portraits": job("portraits")})
    user.ok("apply")
    [first] = user.emu.trainings
    assert (user.creates(), first.version, first.input["steps"]) == (1, FLUX_LORA_VERSION, 1000)
    assert user.emu.has_model("acme/portraits")  # the destination, created on first submit

    user.emu.reset_requests()
    user.ok("apply")
    assert user.creates() == 0 and len(user.emu.trainings) == 1

    user.repo.write_job("portraits", job("portraits", steps=1200))
    user.repo.commit("more steps")
    user.ok("apply")
    old, new = user.emu.trainings
    assert (old.id, old.status, user.emu.count("POST", CANCEL_PATH)) == (first.id, "canceled", 1)
    assert (new.input["steps"], new.status, user.creates()) == (1200, "starting", 1)
    user.emu.reset_requests()
    user.ok("apply")
    assert user.creates() == 0 and user.statuses() == ["canceled", "starting"]


def test_a_removed_manifest_has_its_training_canceled(make: Any) -> None:
    user = make({"portraits": job("portraits"), "styles": job("styles", trigger_word="STY")})
    user.ok("apply")
    assert user.statuses() == ["starting", "starting"]
    styles = next(t for t in user.emu.trainings if t.input.get("trigger_word") == "STY")

    user.repo.remove_job("styles")
    user.repo.commit("drop styles")
    user.ok("apply")
    assert user.emu.training_json(styles.id)["status"] == "canceled"
    assert user.statuses().count("canceled") == 1 and user.creates() == 2


def test_success_records_the_produced_version_in_state_and_status(make: Any) -> None:
    user = make({"portraits": job("portraits")})
    user.ok("apply")
    user.emu.advance(200)  # queued 5 s, trained 100 s: succeeded
    user.ok("apply")
    [training] = user.emu.trainings
    produced = user.emu.training_json(training.id)["output"]["version"]
    assert produced == f"acme/portraits:{user.emu.versions('acme/portraits')[0]}"

    [run] = user.state_file("portraits")["runs"]
    assert (run["run_id"], run["health"]) == (training.id, "Succeeded")
    assert run["outputs"]["version"] == produced
    row = user.status_json()["portraits"]
    assert (row["health"], row["outputs"]["version"]) == ("Succeeded", produced)
    assert row["cost_usd"] == pytest.approx(100 * 0.001525, abs=1e-4)


def test_trace_of_the_produced_version_finds_the_job_and_its_commit(make: Any) -> None:
    user = make({"portraits": job("portraits")})
    user.emu.output_metrics = lambda input: {"loss": 0.25}
    source = git(user.repo.root, "rev-parse", "HEAD")
    user.ok("apply")
    user.emu.advance(200)
    user.ok("apply")
    [training] = user.emu.trainings
    produced = user.emu.training_json(training.id)["output"]["version"]
    [traced] = json.loads(user.ok("trace", produced, "-o", "json").stdout)["runs"]
    assert (traced["job"], traced["run_id"], traced["matched"]) == (
        "portraits",
        training.id,
        "model version",
    )
    assert traced["source_commit"] == source
    assert traced["snapshot"] == snapshot_path("portraits", traced["revision"])
    # The trainer's output metrics, not Replicate's timing (metrics.total_time, predict_time).
    assert traced["metrics"] == {"loss": 0.25}
    assert "| source_commit |" in user.ok("trace", produced, "-o", "markdown").stdout


# ---- a create the service rejects --------------------------------------------------------------


def test_a_create_rejected_with_422_fails_the_run_once_not_retryable(make: Any) -> None:
    # Pinned in the manifest and absent from the lock: only the service checks this input.
    pinned = f"{TRAINER}:{FLUX_LORA_VERSION}"
    user = make({"portraits": job("portraits", trainer=pinned, steps=99999)}, lock=False)
    user.ok("validate")
    result = user.run("apply")
    assert result.returncode == 3, explain(result)
    assert "422" in result.stderr and "input.steps: Must be less than or equal to 6000" in (
        result.stderr
    )
    assert "Traceback" not in result.stderr
    [run] = user.state_file("portraits")["runs"]
    assert (run["health"], run["retryable"], run["run_id"]) == ("Failed", False, "")

    user.emu.reset_requests()
    user.ok("apply")  # nothing to retry: the same input would be rejected again
    assert user.creates() == 0 and user.emu.trainings == []
    assert user.status_json()["portraits"]["reason"] == (
        "failed, not retryable: creating the training of portraits (attempt 1): "
        "422 - input.steps: Must be less than or equal to 6000"
    )


# ---- the lock ---------------------------------------------------------------------------------


def test_a_typo_in_an_input_key_fails_validate_at_its_line_with_a_did_you_mean(make: Any) -> None:
    user = make({"portraits": job("portraits")})
    text = job("portraits", lora_rnak=32)
    user.repo.write_job("portraits", text)
    result = user.run("validate")
    assert result.returncode == 1, explain(result)
    line = text.splitlines().index("    lora_rnak: 32") + 1
    assert f"jobs/portraits.yaml:{line}:5: unknown input 'lora_rnak'" in result.stderr
    assert "did you mean 'lora_rank'?" in result.stderr
    result = user.run("validate", "-o", "json")
    assert result.returncode == 1, explain(result)
    [problem] = json.loads(result.stdout)["problems"]
    assert (problem["line"], problem["col"]) == (line, 5)


def test_lock_check_fails_when_stale_and_passes_when_fresh(make: Any) -> None:
    user = make({"portraits": job("portraits")})
    user.ok("lock", "--check")
    older = f"{TRAINER}:{FLUX_LORA_OLD_VERSION[:8]}"
    fast = "replicate/fast-flux-trainer"
    changes = [  # (job, manifest, the trainer the lock then lacks)
        ("portraits", job("portraits", trainer=older), older),
        ("fast", job("fast", trainer=fast, base={"input_images": IMAGES}, trigger_word="T"), fast),
    ]
    for name, text, trainer in changes:
        user.repo.write_job(name, text)
        result = user.run("lock", "--check")
        assert result.returncode == 1, explain(result)
        assert f"stale: {trainer} is not in the lock" in result.stderr, explain(result)
        assert "run `trainops lock`" in result.stderr
        user.ok("lock")
        user.ok("lock", "--check")
    pinned = json.loads((user.repo.root / "trainops.lock").read_text())["trainers"]
    assert sorted(pinned) == [older, fast]
    assert pinned[older]["version"] == FLUX_LORA_OLD_VERSION


# ---- the token never leaves the process ---------------------------------------------------------


def test_the_token_appears_in_no_output_state_or_file(make: Any) -> None:
    user = make({"portraits": job("portraits")})
    for args in (
        ["validate"],
        ["validate", "-o", "json"],
        ["lock", "--check"],
        ["plan"],
        ["plan", "-o", "json"],
    ):
        user.ok(*args)
    # The create's answer is lost: apply fails with an unknown outcome, the next one adopts.
    user.emu.inject("lost_response", method="POST", path=CREATE_PATH)
    result = user.run("apply")
    assert result.returncode == 3 and "outcome unknown" in result.stderr, explain(result)
    user.ok("apply", "-o", "json")
    [training] = user.emu.trainings
    assert user.state_file("portraits")["runs"][0]["run_id"] == training.id
    user.emu.advance(200)
    for args in (
        ["apply"],
        ["status"],
        ["status", "-o", "json"],
        ["logs", "portraits"],
        ["cost"],
        ["cost", "-o", "json"],
    ):
        user.ok(*args)
    wrong = "r8_" + "WrongT0kenNotAccepted" * 2
    result = user.run("lock", token=wrong)
    assert result.returncode == 3 and "401" in result.stderr, explain(result)
    assert wrong not in "".join(user.outputs)

    texts = list(user.outputs)
    assert user.repo.remote is not None
    state_log = git(user.repo.remote, "log", "-p", "trainops/state")
    assert training.id in state_log and f"snapshots/{fanout('portraits')}/portraits/" in state_log
    texts.append(state_log)
    for where in (user.repo.root, user.repo.remote):  # every commit of every branch, both sides
        texts.append(git(where, "log", "-p", "--all"))
    # The working tree with .trainops/ (ignored by git) and the clone's own files (config, refs).
    texts += [
        p.read_text(errors="replace")
        for p in user.repo.root.rglob("*")
        if p.is_file() and "objects" not in p.parts
    ]
    assert [text[:200] for text in texts if R8_TOKEN in text] == []


def test_a_fork_pull_request_plans_without_a_token(make: Any) -> None:
    """A fork's pull request has no secrets: plan shows the recorded state with a note instead
    of failing, and inputs are still checked against the lock."""
    user = make({"portraits": job("portraits")})
    user.ok("apply")
    user.repo.write_job("portraits", job("portraits", steps=1200))
    user.emu.reset_requests()

    result = user.run("plan", token="")
    assert result.returncode == 0, explain(result)
    assert "note: replicate: showing recorded state, could not observe 1 run(s)" in result.stderr
    # What a call would meet: no token, so nothing can be canceled or submitted from here.
    assert "REPLICATE_API_TOKEN is not set" in result.stdout
    assert "submit (attempt" not in result.stdout and "cancel " not in result.stdout
    assert "~ input.steps: 1000 -> 1200" in result.stdout  # what the change is, all the same
    assert user.emu.requests == []  # nothing was asked without a token

    user.repo.write_job("portraits", job("portraits", stepz=1200))
    typo = user.run("plan", token="")
    assert typo.returncode == 1 and "did you mean 'steps'?" in typo.stderr, explain(typo)


def test_without_a_token_plan_and_apply_show_blocked_and_spend_no_attempt(make: Any) -> None:
    """DESIGN §12: a job whose provider has no credentials is Blocked with that reason, not
    "to submit"; apply sends nothing, records no intent, and is not an error (exit 0)."""
    user = make({"portraits": job("portraits")})
    user.emu.reset_requests()
    for command in ("plan", "apply", "apply"):
        result = user.run(command, token="")
        assert result.returncode == 0, explain(result)
        assert "REPLICATE_API_TOKEN is not set" in result.stdout
        assert "submit (attempt" not in result.stdout
    assert user.emu.requests == []
    assert user.repo.state() == {}  # no intent, no lost attempt
    rows = json.loads(user.run("status", "-o", "json", token="").stdout)["jobs"]
    assert [(r["job"], r["sync"], r["reason"]) for r in rows] == [
        ("portraits", "Blocked", "REPLICATE_API_TOKEN is not set")
    ]

    result = user.ok("plan")  # the token is back: the first attempt, not the third
    assert "submit (attempt 1)" in result.stdout
