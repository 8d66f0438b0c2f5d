"""`trainops` as a user runs it, against real git repositories with a bare remote and the local
provider: every reconcile rule of DESIGN §7 that issue 3 lists, observed where it happens (run
directories, process groups, the state branch), one `apply` pass at a time.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.workspace import (
    UserRepo,
    config,
    explain,
    group_alive,
    kill_run_groups,
    manifest,
    run_cli,
)

README = Path(__file__).resolve().parents[2] / "README.md"
MakeRepo = Callable[..., UserRepo]


@pytest.fixture
def make(tmp_path: Path) -> Iterator[MakeRepo]:
    repos: list[UserRepo] = []

    def factory(jobs: dict[str, str], **kwargs: Any) -> UserRepo:
        repo = UserRepo.create(tmp_path, jobs, **kwargs)
        repos.append(repo)
        return repo

    yield factory
    for repo in repos:
        repo.cleanup()


def jobs_json(repo: UserRepo) -> dict[str, dict[str, Any]]:
    result = repo.trainops("status", "--output", "json")
    assert result.returncode == 0, explain(result)
    return {row["job"]: row for row in json.loads(result.stdout)["jobs"]}


def only_run(repo: UserRepo, job: str) -> str:
    runs = [r for r in repo.run_ids() if r.startswith(f"{job}-")]
    assert len(runs) == 1, runs
    return runs[0]


def running(repo: UserRepo, run_id: str) -> int:
    """Wait until the run's command runs; return its process group."""
    pgid = repo.wait_status(run_id, {"running"})["pgid"]
    assert group_alive(pgid)
    return int(pgid)


# ---- the README ------------------------------------------------------------------------------


def readme_first_command() -> list[list[str]]:
    block = re.search(r"```sh\n(.*?)\n```", README.read_text(), re.S)
    assert block, "README has no sh block"
    return [shlex.split(step) for step in block.group(1).split("&&")]


def test_readme_first_command_trains_and_a_second_apply_submits_nothing(tmp_path: Path) -> None:
    cwd, outputs = tmp_path, []
    try:
        for argv in readme_first_command():
            if argv[0] == "pip":
                continue  # this environment is installed already
            if argv[0] == "cd":
                cwd = cwd / argv[1]
                continue
            assert argv[0] == "trainops", argv
            result = run_cli(cwd, *argv[1:], timeout=90)
            assert result.returncode == 0, explain(result)
            outputs.append(result.stdout)
        demo = UserRepo(cwd, None, tmp_path, cwd / ".trainops" / "runs")
        (run_id,) = demo.run_ids()
        assert run_id.startswith("tiny-regression-")
        weights = json.loads((demo.run_dir(run_id) / "outputs" / "weights.json").read_text())
        assert set(weights) == {"w", "b"}
        status_row = next(
            line for line in outputs[-1].splitlines() if line.startswith("tiny-regression")
        )
        assert status_row.split()[1:3] == ["Synced", "Succeeded"]

        commits = demo.state_commits()
        again = run_cli(cwd, "apply")
        assert again.returncode == 0, explain(again)
        assert "submitted" not in again.stdout
        assert demo.run_ids() == [run_id]
        assert demo.state_commits() == commits
    finally:
        kill_run_groups(cwd)


# ---- a spec changes while its run is going ----------------------------------------------------


def test_spec_edit_replaces_the_running_run(make: MakeRepo) -> None:
    repo = make({})
    repo.write_job("a", manifest("a", {"hold": repo.hold_path("a"), "step": 1}))
    repo.commit()
    repo.apply_ok()
    old = only_run(repo, "a")
    pgid = running(repo, old)

    repo.write_job("a", manifest("a", {"hold": repo.hold_path("a"), "step": 2}))
    repo.commit()
    repo.apply_ok()

    new = f"a-{repo.revisions()['a']}-1"
    assert repo.run_ids() == sorted([old, new])
    assert repo.status(old)["status"] == "canceled"
    assert not group_alive(pgid)
    recorded = {r.run_id: r for r in repo.state()["a"].runs}
    assert recorded[old].reason == f"replaced by revision {repo.revisions()['a']}"
    assert set(recorded) == {old, new}


def test_spec_edit_with_on_change_queue_waits_for_the_run_to_end(make: MakeRepo) -> None:
    repo = make({}, cfg=config(policy={"on_change": "queue"}))
    repo.write_job("a", manifest("a", {"hold": repo.hold_path("a"), "step": 1}))
    repo.commit()
    repo.apply_ok()
    old = only_run(repo, "a")
    pgid = running(repo, old)

    repo.write_job("a", manifest("a", {"step": 2}))
    repo.commit()
    repo.apply_ok()
    assert repo.run_ids() == [old]
    assert repo.status(old)["status"] == "running" and group_alive(pgid)
    row = jobs_json(repo)["a"]
    assert (row["sync"], row["action"]) == ("OutOfSync", "-")
    assert row["reason"].startswith("queued")

    repo.release("a")
    repo.wait_status(old, {"succeeded"})
    repo.apply_ok()
    new = f"a-{repo.revisions()['a']}-1"
    assert repo.run_ids() == sorted([old, new])
    assert repo.wait_status(new, {"succeeded"})


# ---- jobs leaving git, or leaving validity -------------------------------------------------


def test_deleted_manifest_cancels_its_run(make: MakeRepo) -> None:
    repo = make({"keep": manifest("keep")})
    repo.write_job("gone", manifest("gone", {"hold": repo.hold_path("gone")}))
    repo.commit()
    repo.apply_ok()
    gone = only_run(repo, "gone")
    pgid = running(repo, gone)

    repo.remove_job("gone")
    repo.commit()
    repo.apply_ok()

    assert repo.status(gone)["status"] == "canceled"
    assert not group_alive(pgid)
    assert len(repo.run_ids()) == 2  # nothing new submitted, `keep` untouched
    assert repo.state()["gone"].runs[-1].reason == "removed from git"


def test_a_pruned_job_leaves_status_once_its_end_was_reported(make: MakeRepo) -> None:
    repo = make({"keep": manifest("keep")})
    repo.write_job("gone", manifest("gone", {"hold": repo.hold_path("gone")}))
    repo.commit()
    repo.apply_ok()
    running(repo, only_run(repo, "gone"))
    repo.remove_job("gone")
    repo.commit()
    repo.apply_ok()  # cancels the run
    repo.wait_all_terminal()

    seen = jobs_json(repo)["gone"]  # the end is shown once...
    assert (seen["sync"], seen["health"], seen["reason"]) == (
        "Synced",
        "Canceled",
        "removed from git",
    )
    final = repo.apply_ok()
    assert "gone" in final.stdout  # ...by the apply that records it, then never again
    assert set(jobs_json(repo)) == {"keep"}
    assert "gone" not in repo.apply_ok().stdout
    assert repo.state()["gone"].pruned  # the record stays: cost and history read it

    repo.write_job("gone", manifest("gone"))  # back in git: shown and started again
    repo.commit()
    repo.apply_ok()
    assert "gone" in jobs_json(repo)
    assert not repo.state()["gone"].pruned


BROKEN_YAML = """\
apiVersion: trainops/v1
kind: TrainingJob
metadata:
  name: a
spec:
  provider: local
  command: [python, train.py]
  input: {step: 2
  workdir: .
"""

BAD_SCHEMA = """\
apiVersion: trainops/v1
kind: TrainingJob
metadata:
  name: a
spec:
  provider: local
  command: [python, train.py]
  workdir: .
  retries: many
"""


@pytest.mark.parametrize(
    ("text", "line"),
    [
        pytest.param(BROKEN_YAML, 9, id="yaml-syntax-error"),
        pytest.param(BAD_SCHEMA, 9, id="schema-error"),
    ],
)
def test_invalid_manifest_leaves_its_running_run_alone(
    make: MakeRepo, text: str, line: int
) -> None:
    repo = make({"b": manifest("b")})
    repo.write_job("a", manifest("a", {"hold": repo.hold_path("a")}))
    repo.commit()
    repo.apply_ok()
    run = only_run(repo, "a")
    pgid = running(repo, run)
    commits = repo.state_commits()

    repo.write_job("a", text)
    repo.commit()
    result = repo.trainops("apply")

    assert result.returncode == 1, explain(result)
    assert re.search(rf"jobs/a\.yaml:{line}:\d+: ", result.stderr), result.stderr
    assert repo.status(run)["status"] == "running" and group_alive(pgid)
    assert len(repo.run_ids()) == 2
    recorded = repo.state()["a"].runs
    assert [(r.run_id, r.reason) for r in recorded] == [(run, "")]
    assert repo.state_commits() <= commits + 1  # at most the refresh of `b`'s success


# ---- suspend, rerun, retries, after ------------------------------------------------------------


def test_suspend_cancels_and_unsuspend_submits_again(make: MakeRepo) -> None:
    repo = make({})
    spec = {"hold": repo.hold_path("a")}
    repo.write_job("a", manifest("a", spec))
    repo.commit()
    repo.apply_ok()
    first = only_run(repo, "a")
    pgid = running(repo, first)

    repo.write_job("a", manifest("a", spec, suspend=True))
    repo.commit()
    repo.apply_ok()
    assert repo.status(first)["status"] == "canceled"
    assert not group_alive(pgid)
    assert jobs_json(repo)["a"]["sync"] == "Synced"

    repo.write_job("a", manifest("a", spec, suspend=False))
    repo.commit()
    repo.apply_ok()
    revision = repo.revisions()["a"]  # suspend is not part of the revision: same training
    assert repo.run_ids() == [f"a-{revision}-1", f"a-{revision}-2"]
    running(repo, f"a-{revision}-2")


def test_rerun_bump_runs_an_unchanged_spec_again(make: MakeRepo) -> None:
    repo = make({"a": manifest("a")})
    repo.apply_ok()
    first = only_run(repo, "a")
    repo.wait_status(first, {"succeeded"})

    repo.write_job("a", manifest("a", rerun=1))
    repo.commit()
    repo.apply_ok()

    second = f"a-{repo.revisions()['a']}-1"
    assert repo.run_ids() == sorted([first, second])
    repo.wait_status(second, {"succeeded"})
    runs = {r.run_id: r.health.value for r in repo.state()["a"].runs}
    assert runs == {first: "Succeeded", second: "Pending"}


def test_retries_resubmit_exactly_as_many_times_as_allowed(make: MakeRepo) -> None:
    repo = make({})
    repo.write_job(
        "flaky",
        manifest("flaky", {"fail_times": 1, "counter": repo.counter_path("flaky")}, retries=2),
    )
    repo.write_job(
        "broken",
        manifest("broken", {"fail_times": 99, "counter": repo.counter_path("broken")}, retries=1),
    )
    repo.commit()
    rev = repo.revisions()

    for _ in range(3):  # the third pass would be the one to submit a third attempt
        repo.trainops("apply")
        repo.wait_all_terminal()

    assert repo.run_ids() == sorted(
        [
            f"broken-{rev['broken']}-1",
            f"broken-{rev['broken']}-2",
            f"flaky-{rev['flaky']}-1",
            f"flaky-{rev['flaky']}-2",
        ]
    )
    assert repo.status(f"flaky-{rev['flaky']}-2")["status"] == "succeeded"
    assert repo.status(f"broken-{rev['broken']}-2")["status"] == "failed"
    rows = jobs_json(repo)
    assert (rows["flaky"]["sync"], rows["flaky"]["health"]) == ("Synced", "Succeeded")
    assert (rows["broken"]["sync"], rows["broken"]["health"]) == ("Synced", "Failed")
    assert "failed after 2 attempt(s)" in rows["broken"]["reason"]


def test_after_starts_a_job_only_once_its_upstream_succeeded(make: MakeRepo) -> None:
    repo = make({"b": manifest("b", after=["a"])})
    repo.write_job("a", manifest("a", {"hold": repo.hold_path("a")}))
    repo.commit()
    repo.apply_ok()
    a = only_run(repo, "a")
    running(repo, a)
    assert repo.run_ids() == [a]
    row = jobs_json(repo)["b"]
    assert row["sync"] == "Blocked" and "waiting for a" in row["reason"]

    repo.release("a")
    a_done = repo.wait_status(a, {"succeeded"})
    repo.apply_ok()
    b = only_run(repo, "b")
    assert repo.meta(b)["created_at"] >= a_done["completed_at"]
    repo.wait_status(b, {"succeeded"})


# ---- the CLI contract ------------------------------------------------------------------------

DIRTY_EDITS = {
    "modified": lambda repo: repo.write_job("a", manifest("a", {"step": 2})),
    "added": lambda repo: repo.write_job("b", manifest("b")),
    "deleted": lambda repo: repo.remove_job("a"),
    "config": lambda repo: repo.write("trainops.yaml", config(policy={"prune": False})),
}


@pytest.mark.parametrize("edit", list(DIRTY_EDITS))
def test_apply_refuses_uncommitted_manifest_changes(make: MakeRepo, edit: str) -> None:
    repo = make({"a": manifest("a", {"step": 1})})
    DIRTY_EDITS[edit](repo)

    refused = repo.trainops("apply")
    assert refused.returncode == 2, explain(refused)
    path = {"added": "jobs/b.yaml", "config": "trainops.yaml"}.get(edit, "jobs/a.yaml")
    assert path in refused.stderr and "--allow-dirty" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert repo.run_ids() == [] and repo.state_commits() == 0


def test_apply_ignores_uncommitted_files_that_are_not_manifests(make: MakeRepo) -> None:
    repo = make({"a": manifest("a")})
    repo.write("jobs/NOTES.md", "not a manifest\n")
    repo.apply_ok()
    assert len(repo.run_ids()) == 1


def test_allow_dirty_applies_head_not_the_working_tree(make: MakeRepo) -> None:
    repo = make({"a": manifest("a", {"step": 1})})
    repo.write_job("a", manifest("a", {"step": 2}))  # not committed
    repo.apply_ok("--allow-dirty")
    run = only_run(repo, "a")
    assert run == f"a-{repo.revisions()['a']}-1"
    assert json.loads((repo.run_dir(run) / "input.json").read_text()) == {"step": 1}


def test_plan_exit_codes_json_output_and_logs(make: MakeRepo) -> None:
    repo = make({"a": manifest("a")})
    planned = repo.trainops("plan", "--detailed-exitcode", "--output", "json")
    assert planned.returncode == 4, explain(planned)
    plan = json.loads(planned.stdout)
    revision = repo.revisions()["a"]
    assert [(a["op"], a["job"], a["revision"], a["attempt"]) for a in plan["actions"]] == [
        ("submit", "a", revision, 1)
    ]
    assert repo.run_ids() == []  # plan acts on nothing

    applied = repo.trainops("apply", "--output", "json")
    assert applied.returncode == 0, explain(applied)
    assert [
        (a["op"], a["job"], a["outcome"]["ok"]) for a in json.loads(applied.stdout)["actions"]
    ] == [("submit", "a", True)]
    run = only_run(repo, "a")
    repo.wait_status(run, {"succeeded"})
    repo.apply_ok()

    settled = repo.trainops("plan", "--detailed-exitcode")
    assert settled.returncode == 0, explain(settled)
    assert "No changes" in settled.stdout
    row = jobs_json(repo)["a"]
    assert (row["sync"], row["health"], row["run_id"]) == ("Synced", "Succeeded", run)
    logs = repo.trainops("logs", "a")
    assert logs.returncode == 0, explain(logs)
    assert f"trained {run}" in logs.stdout


def test_logs_follow_prints_until_the_run_ends(make: MakeRepo) -> None:
    repo = make({})
    repo.write_job("a", manifest("a", {"hold": repo.hold_path("a")}))
    repo.commit()
    repo.apply_ok()
    run = only_run(repo, "a")
    running(repo, run)

    follower = repo.start("logs", "a", "--follow")
    assert follower.stdout is not None
    first = follower.stdout.readline()  # printed while the run still holds: nothing ended yet
    assert first.strip() == f"training {run}"
    repo.release("a")
    rest, err = follower.communicate(timeout=30)  # returns only because the run ended
    assert follower.returncode == 0, err
    assert rest.count(f"trained {run}") == 1 and "training" not in rest


def test_terminal_plan_shows_each_changed_jobs_field_diff(make: MakeRepo) -> None:
    repo = make({"a": manifest("a", {"steps": 500}), "b": manifest("b")})
    repo.apply_ok()
    repo.wait_all_terminal()
    repo.write_job("a", manifest("a", {"steps": 600}, retries=2))
    planned = repo.trainops("plan")
    assert planned.returncode == 0, explain(planned)
    assert (
        "Changed spec fields (since the last submitted revision):\n"
        "  a\n"
        "    ~ input.steps: 500 -> 600\n"
        "    ~ retries: 0 -> 2\n"
    ) in planned.stdout
    assert "  b\n" not in planned.stdout  # unchanged jobs are not listed
    doc = json.loads(repo.trainops("plan", "-o", "json").stdout)
    changes = {j["job"]: j["spec_changes"] for j in doc["jobs"]}
    assert changes == {"a": ["input.steps: 500 -> 600", "retries: 0 -> 2"], "b": []}


def test_terminal_plan_marks_the_credentials_a_changed_job_would_get(make: MakeRepo) -> None:
    repo = make({"a": manifest("a", {"steps": 500})})
    repo.apply_ok()
    repo.wait_all_terminal()
    repo.write_job("a", manifest("a", {"steps": 600}, env=["HF_TOKEN", "EPOCHS"]))
    planned = repo.trainops("plan")
    assert planned.returncode == 0, explain(planned)
    assert (
        "  a\n"
        "    ~ input.steps: 500 -> 600\n"
        "    ~ env: + EPOCHS\n"
        "    ! env: + HF_TOKEN (credential: passes HF_TOKEN to the job)\n"
    ) in planned.stdout + "\n"
    doc = json.loads(repo.trainops("plan", "-o", "json").stdout)
    [job] = doc["jobs"]
    assert job["spec_changes"][1:] == [
        "env: + EPOCHS",
        "env: + HF_TOKEN (credential: passes HF_TOKEN to the job)",
    ]


def test_logs_of_a_job_without_runs_is_a_usage_error(make: MakeRepo) -> None:
    repo = make({"a": manifest("a")})
    result = repo.trainops("logs", "a")
    assert result.returncode == 2, explain(result)
    assert "no run yet" in result.stderr and "Traceback" not in result.stderr


def test_status_before_any_apply_reports_every_job(make: MakeRepo) -> None:
    repo = make({"a": manifest("a"), "b": manifest("b", suspend=True)})
    rows = jobs_json(repo)
    assert {n: (r["sync"], r["health"]) for n, r in rows.items()} == {
        "a": ("OutOfSync", "Missing"),
        "b": ("Synced", "Suspended"),  # suspended with no run: not missing one (DESIGN §6)
    }
    assert repo.run_ids() == [] and repo.state_commits() == 0
