"""The state branch is input (DESIGN §9): whoever can push it may write anything there.

A damaged or forged `state/<job>.json` is an error naming the file, from every command that reads
state; its job is left alone (no submit, no cancel, no delivery) and every other job proceeds. A
run id must belong to its job and provider, and outputs must lie in the run's own output folder:
a delivery reads nothing else, whether the state branch or the job itself points elsewhere.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.emulators.huggingface import HubEmulator
from tests.support.workspace import UserRepo, explain, manifest
from trainops.state.git import GitStateStore


def forge(repo: UserRepo, files: dict[str, str]) -> None:
    """Push `files` onto the state branch of `repo`'s remote, as anyone with push rights can."""
    assert repo.remote is not None
    store = GitStateStore(repo.remote, branch=repo.branch, remote=None)
    store.save(store.load().version, files, "not trainops\n")


def forge_bytes(repo: UserRepo, path: str, data: bytes) -> None:
    """Push raw bytes (not text, as `forge` writes) onto the state branch with git plumbing."""
    assert repo.remote is not None

    def git(*args: str, stdin: bytes | None = None) -> str:
        return (
            subprocess.run(
                ["git", "-C", str(repo.remote), *args], input=stdin, capture_output=True, check=True
            )
            .stdout.decode()
            .strip()
        )

    ref = f"refs/heads/{repo.branch}"
    parent = git("rev-parse", "--verify", "--quiet", ref)
    entries = git("ls-tree", parent).splitlines()
    state = next(e for e in entries if e.endswith("\tstate")).split()[2]
    blob = git("hash-object", "-w", "--stdin", stdin=data)
    kept = [e for e in git("ls-tree", state).splitlines() if not e.endswith(f"\t{path}")]
    listing = [*kept, f"100644 blob {blob}\t{path}"]
    state = git("mktree", stdin="\n".join(listing).encode() + b"\n")
    others = [e for e in entries if not e.endswith("\tstate")]
    root = git("mktree", stdin="\n".join([*others, f"040000 tree {state}\tstate"]).encode() + b"\n")
    commit = git("commit-tree", root, "-p", parent, "-m", "not trainops")
    git("update-ref", ref, commit, parent)


def run_record(revision: str, run_id: str | None, **fields: Any) -> dict[str, Any]:
    return {
        "revision": revision,
        "attempt": 1,
        "provider": "local",
        "input_hash": "0" * 16,
        "created_at": 1_700_000_000.0,
        "run_id": run_id,
        "health": "Running",
        **fields,
    }


def state_text(job: str, *runs: dict[str, Any], **top: Any) -> str:
    return json.dumps({"format": 1, "job": job, "runs": list(runs), **top})


BAD: dict[str, Callable[[str], str]] = {
    "garbage": lambda rev: "{not json at all",
    "truncated": lambda rev: state_text("a", run_record(rev, f"a-{rev}-1"))[:60],
    "unknown-health": lambda rev: state_text("a", run_record(rev, f"a-{rev}-1", health="Zombie")),
    "missing-job": lambda rev: json.dumps({"format": 1, "runs": []}),
    "string-time": lambda rev: state_text(
        "a", run_record(rev, f"a-{rev}-1", created_at="yesterday")
    ),
    # a finite number, but no date: every month and age computed from it would crash
    "time-past-year-9999": lambda rev: state_text(
        "a", run_record(rev, f"a-{rev}-1", created_at=1e12)
    ),
    "job-not-its-name": lambda rev: state_text("b", run_record(rev, f"b-{rev}-1")),
    "run-of-another-job": lambda rev: state_text("a", run_record(rev, f"b-{rev}-1")),
    "list-not-object": lambda rev: "[1, 2, 3]",
    "nested-too-deep": lambda rev: "[" * 100_000 + "]" * 100_000,
}


@pytest.fixture
def repo(tmp_path: Path) -> Iterator[UserRepo]:
    user = UserRepo.create(tmp_path, {"a": manifest("a"), "b": manifest("b", input={"n": 2})})
    yield user
    user.cleanup()


def assert_named_and_left_alone(repo: UserRepo, *commands: list[str]) -> None:
    """Every read command, then apply, names the bad state file (exit 1, no internal error)."""
    for command in [*commands, ["apply"]]:
        result = repo.trainops(*command)
        assert result.returncode == 1, explain(result)
        assert "state/a.json: " in result.stderr, explain(result)
        assert "internal error" not in result.stderr + result.stdout


@pytest.mark.parametrize("make", BAD.values(), ids=BAD.keys())
def test_a_bad_state_file_is_named_and_only_its_job_is_left_alone(
    repo: UserRepo, make: Callable[[str], str]
) -> None:
    revisions = repo.revisions()
    forge(repo, {"state/a.json": make(revisions["a"])})
    assert_named_and_left_alone(
        repo, ["plan"], ["status"], ["status", "-o", "json"], ["cost"], ["logs", "a"]
    )
    assert repo.run_ids() == [f"b-{revisions['b']}-1"]  # b trained, a was left alone


def test_a_forged_state_file_cannot_cancel_another_jobs_run(repo: UserRepo) -> None:
    repo.remove_job("a")
    repo.remove_job("b")
    repo.write_job("victim", manifest("victim", input={"hold": repo.hold_path("victim")}))
    repo.commit("one long run")
    repo.apply_ok()
    victim = f"victim-{repo.revisions()['victim']}-1"
    repo.wait_status(victim, ["running"])
    # A job nobody wrote, "removed from git", whose run id is the victim's live run.
    forge(repo, {"state/ghost.json": state_text("ghost", run_record("0" * 12, victim))})

    result = repo.trainops("apply")
    assert result.returncode == 1 and "state/ghost.json: " in result.stderr, explain(result)
    assert repo.status(victim)["status"] == "running"
    repo.release("victim")
    repo.wait_status(victim, ["succeeded"])


@pytest.mark.parametrize(
    "outputs",
    [
        {"passwd": "/etc/passwd", "environ": "/proc/self/environ"},
        {"weights": "{runs}/{run}/outputs/../../../../../../etc/passwd"},
        {"weights": "{runs}/another-run/outputs/weights.bin"},
    ],
    ids=["system-files", "dot-dot", "another-runs-folder"],
)
def test_forged_outputs_upload_nothing(tmp_path: Path, outputs: dict[str, str]) -> None:
    deliver = [{"huggingface": {"repo": "acme/weights"}}]
    repo = UserRepo.create(tmp_path, {"pub": manifest("pub", deliver=deliver)})
    revision = repo.revisions()["pub"]
    run = f"pub-{revision}-1"
    values = {k: v.format(runs=repo.runs_dir, run=run) for k, v in outputs.items()}
    succeeded = run_record(revision, run, health="Succeeded", outputs=values)
    forge(repo, {"state/pub.json": state_text("pub", succeeded)})
    with HubEmulator(namespaces={"acme"}) as hub:
        result = repo.trainops("apply", env={**hub.env(), "HF_HOME": str(tmp_path / "hf")})
        assert hub.writes() == []
    assert result.returncode == 1 and "state/pub.json: " in result.stderr, explain(result)
    assert "root:" not in result.stdout + result.stderr


SYMLINKER = """\
import os
out = os.environ["TRAINOPS_OUTPUT_DIR"]
os.symlink("/proc/self/environ", os.path.join(out, "environ.txt"))  # trainops' own, at delivery
with open(os.path.join(out, "weights.bin"), "w") as f:
    f.write("weights")
"""


def test_an_output_symlinked_out_of_the_run_folder_uploads_nothing(tmp_path: Path) -> None:
    deliver = [{"huggingface": {"repo": "acme/weights"}}]
    job = manifest("pub", deliver=deliver, command=["python", "symlinker.py"])
    repo = UserRepo.create(tmp_path, {"pub": job})
    repo.write("symlinker.py", SYMLINKER)
    repo.commit("a job whose output is a link to the reconciler's environment")
    with HubEmulator(namespaces={"acme"}) as hub:
        env = {**hub.env(), "HF_HOME": str(tmp_path / "hf")}
        repo.trainops("apply", env=env)
        repo.wait_all_terminal()
        result = repo.trainops("apply", env=env)
        assert hub.writes() == []
    assert result.returncode == 3, explain(result)
    assert "output 'environ' of run pub-" in result.stderr
    assert "is not a file in the run's own output folder: nothing delivered" in result.stderr


@pytest.mark.parametrize(
    "data",
    [
        b'{"format": 1, "job": "a", "runs": []}\xff\xfe',
        # Valid, but never read into memory: a state file holds a few KiB.
        state_text("a", pad="x" * (9 * 1024 * 1024)).encode(),
    ],
    ids=["not-utf8", "too-large"],
)
def test_an_unreadable_state_file_is_named_and_only_its_job_is_left_alone(
    repo: UserRepo, data: bytes
) -> None:
    repo.apply_ok()  # a state branch to forge onto
    revisions = repo.revisions()
    repo.write_job("b", manifest("b", input={"n": 3}))
    repo.commit("b changes")
    forge_bytes(repo, "a.json", data)

    assert_named_and_left_alone(repo, ["plan"], ["status"], ["cost"], ["logs", "a"])
    assert f"b-{repo.revisions()['b']}-1" in repo.run_ids()  # b trained anyway
    assert f"a-{revisions['a']}-1" in repo.run_ids()


@pytest.mark.parametrize(
    "snapshot",
    [
        "spec:\n  a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n"
        + "".join(f"  a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]\n" for i in range(1, 9)),
        "spec: " + "[" * 5000 + "]" * 5000 + "\n",
    ],
    ids=["aliases", "nested"],
)
def test_a_forged_snapshot_cannot_stall_the_plan(repo: UserRepo, snapshot: str) -> None:
    """The plan compares a job with the snapshot its last run names: a forged one is read with
    the bounded loader, so a billion-laughs file is one more file that does not compare."""
    rev = "0" * 12
    record = run_record(rev, f"a-{rev}-1", health="Succeeded", snapshot="snapshots/a/forged.yaml")
    forge(repo, {"state/a.json": state_text("a", record), "snapshots/a/forged.yaml": snapshot})
    result = repo.trainops("plan", timeout=30)
    assert result.returncode == 0, explain(result)
    assert "internal error" not in result.stdout + result.stderr
