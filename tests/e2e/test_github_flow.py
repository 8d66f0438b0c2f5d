"""The GitHub flow as Actions runs it: `trainops plan --github` on a pull request and
`trainops apply --github` after the merge and on a schedule, each a subprocess with an event file
and the Actions environment, against the GitHub emulator, a real git repository with a bare
remote, and the local provider (one variant trains on the Replicate emulator).

Decisions these tests pin down: a GitHub outage never fails an apply (exit 0 when the providers
are fine, a note on stderr) and the runs stay unreported in state until a later apply delivers
each report once; a canceled run's status is `error`; tokens never leave the process.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.emulators.github import GitHubEmulator
from tests.emulators.replicate import FLUX_LORA_VERSION, ReplicateEmulator
from tests.support.gitrepo import git
from tests.support.reviewed import run_comments
from tests.support.workspace import UserRepo, explain, manifest
from trainops.github.client import GitHubClient
from trainops.github.reviewed import reviewed_plans, status_digest
from trainops.state.layout import snapshot_path

OWNER, NAME = "acme", "models"
GH_TOKEN = "ghs_" + "E2eGitHubT0ken" * 3
R8_TOKEN = "r8_" + "FakeReplicateT0ken" * 2
PLAN_MARKER = "<!-- trainops:plan -->"
# The trainops/plan status names the digest of the reviewed actions (DESIGN §20).
PLAN_STATUS = r"plan [0-9a-f]{16}: 1 to submit, up to \$0\.00"

DATA_SECRET = "plain-secret-value-0001"  # no token shape: only its variable's name marks it

# A training that prints every secret it can get: a variable trainops passes on (named like a
# secret) and, read from a file, the tokens trainops withholds from trainings. Whatever reaches
# GitHub from its log must have been scrubbed.
LEAKY = """\
import json, os, runpy, sys
params = json.load(open(os.environ["TRAINOPS_INPUT"]))
print("leaked: " + open(params["leak"]).read(), flush=True)
print("TRAINING_DATA_SECRET=" + os.environ.get("TRAINING_DATA_SECRET", ""), flush=True)
sys.argv = ["train.py"]
runpy.run_path("train.py", run_name="__main__")
"""
SECRETS = (GH_TOKEN, R8_TOKEN, DATA_SECRET)


class Actions:
    """GitHub Actions around one repository: writes event files, sets the environment, runs the
    CLI, and keeps every output for the secret check."""

    def __init__(self, repo: UserRepo, emu: GitHubEmulator, tmp: Path) -> None:
        self.repo, self.emu, self.tmp = repo, emu, tmp
        self.summary = tmp / "step-summary.md"
        self.outputs: list[str] = []
        self.runs = 0

    def run(
        self,
        *args: str,
        event: str,
        payload: dict[str, Any],
        sha: str,
        context: bool = True,
        timeout: float = 60,
    ) -> subprocess.CompletedProcess[str]:
        self.runs += 1
        event_path = self.tmp / f"event-{self.runs}.json"
        event_path.write_text(json.dumps(payload))
        env = {
            **self.emu.env(),
            "GITHUB_ACTIONS": "true",
            "GITHUB_EVENT_NAME": event,
            "GITHUB_EVENT_PATH": str(event_path),
            "GITHUB_SHA": sha,
            "GITHUB_STEP_SUMMARY": str(self.summary),
            "GITHUB_SERVER_URL": "https://github.com",
            "GITHUB_RUN_ID": str(1000 + self.runs),
            "REPLICATE_API_TOKEN": R8_TOKEN,
            "TRAINING_DATA_SECRET": DATA_SECRET,
            # fast retries: these runs must not sleep through the emulator's faults
            "TRAINOPS_GITHUB_BACKOFF": "0",
            "TRAINOPS_GITHUB_WRITE_INTERVAL": "0",
            "TRAINOPS_GITHUB_MAX_ATTEMPTS": "2",
        }
        if context:
            env["GITHUB_REPOSITORY"] = f"{OWNER}/{NAME}"
        result = self.repo.trainops(*args, env=env, timeout=timeout)
        self.outputs += [result.stdout, result.stderr]
        return result

    def plan_pr(self, number: int, head: str) -> subprocess.CompletedProcess[str]:
        payload = {
            "action": "synchronize",
            "number": number,
            "pull_request": {
                "number": number,
                "head": {"sha": head, "ref": "feature"},
                "base": {"ref": "main"},
            },
        }
        # GITHUB_SHA of a pull_request event is a merge commit nobody sees: never report on it
        return self.run("plan", "--github", event="pull_request", payload=payload, sha="f" * 40)

    def apply(self, event: str = "schedule", **kwargs: Any) -> subprocess.CompletedProcess[str]:
        sha = git(self.repo.root, "rev-parse", "HEAD")
        return self.run(
            "apply", "--github", event=event, payload={"ref": "refs/heads/main"}, sha=sha, **kwargs
        )

    def statuses(self, sha: str, context: str) -> list[tuple[str, str]]:
        """(state, description) of `context` on `sha`, newest first."""
        return [
            (s["state"], s["description"])
            for s in self.emu.statuses(sha)
            if s["context"] == context
        ]

    def assert_no_secrets(self) -> None:
        texts = [*self.outputs, self.summary.read_text() if self.summary.exists() else ""]
        texts += [json.dumps([r.json, r.response]) for r in self.emu.requests]
        assert self.repo.remote is not None
        if git(self.repo.remote, "branch", "--list", "trainops/state"):
            texts.append(git(self.repo.remote, "log", "-p", "--format=%B", "trainops/state"))
        for text in texts:
            assert not [secret for secret in SECRETS if secret in text], text


@pytest.fixture
def emu() -> Iterator[GitHubEmulator]:
    with GitHubEmulator(token=GH_TOKEN) as emulator:
        yield emulator
        assert emulator.errors == []


@pytest.fixture
def repo(tmp_path: Path) -> Iterator[UserRepo]:
    user = UserRepo.create(tmp_path, {})
    user.write("leaky.py", LEAKY)
    user.commit("leaky training")
    yield user
    user.cleanup()


@pytest.fixture
def actions(repo: UserRepo, emu: GitHubEmulator, tmp_path: Path) -> Actions:
    return Actions(repo, emu, tmp_path)


def tiny(repo: UserRepo, **input: Any) -> str:
    leak = repo.signals / "leak.txt"
    leak.write_text(f"{GH_TOKEN} {R8_TOKEN}")
    return manifest(
        "tiny",
        input={"hold": repo.hold_path("tiny"), "leak": str(leak), **input},
        command=["python", "leaky.py"],
        env=["TRAINING_DATA_SECRET"],  # passed on purpose (DESIGN §13): the scrubber's case
    )


def commit_on(repo: UserRepo, branch: str, message: str) -> str:
    if git(repo.root, "branch", "--show-current") != branch:
        git(repo.root, "checkout", "--quiet", "-B", branch)
    git(repo.root, "add", "--all")
    git(repo.root, "commit", "--quiet", "-m", message)
    return git(repo.root, "rev-parse", "HEAD")


def merge(repo: UserRepo, branch: str = "feature") -> str:
    """Merge the pull request as GitHub does (a merge commit on main) and push main."""
    git(repo.root, "checkout", "--quiet", "main")
    git(repo.root, "merge", "--quiet", "--no-ff", branch, "-m", f"Merge branch '{branch}'")
    git(repo.root, "push", "--quiet", "origin", "main")
    return git(repo.root, "rev-parse", "HEAD")


# ---- the pull request: sticky plan comment and the review gate -------------------------------


def test_pull_request_plan_is_one_sticky_comment_and_a_status_gate(
    repo: UserRepo, actions: Actions
) -> None:
    emu = actions.emu
    repo.write_job("tiny", tiny(repo))
    opened = commit_on(repo, "feature", "add tiny")
    result = actions.plan_pr(7, opened)
    assert result.returncode == 0, explain(result)
    [comment] = emu.issue_comments(OWNER, NAME, 7)
    assert comment["body"].startswith(PLAN_MARKER) and "1 to submit" in comment["body"]
    [(state, description)] = actions.statuses(opened, "trainops/plan")
    assert state == "success" and re.fullmatch(PLAN_STATUS, description)
    assert emu.statuses("f" * 40) == []

    repo.write_job("tiny", tiny(repo, steps=2))  # the author pushes again
    updated = commit_on(repo, "feature", "more steps")
    result = actions.plan_pr(7, updated)
    assert result.returncode == 0, explain(result)
    [edited] = emu.issue_comments(OWNER, NAME, 7)
    new_revision = repo.revisions()["tiny"]
    assert edited["id"] == comment["id"] and new_revision in edited["body"]
    assert new_revision not in comment["body"]
    [(state, description)] = actions.statuses(updated, "trainops/plan")
    assert state == "success" and re.fullmatch(PLAN_STATUS, description)
    # What the reviewer saw, as apply reads it back after the merge (DESIGN §20).
    merge = "9" * 40
    emu.add_pull(OWNER, NAME, 7, head_sha=updated, merge_commit_sha=merge, state="closed")
    with GitHubClient(emu.token, api_url=emu.url) as gh:
        [reviewed], note = reviewed_plans(gh, f"{OWNER}/{NAME}", merge)
    assert note == "" and (reviewed.pull, reviewed.head_sha) == (7, updated)
    [(job, action)] = reviewed.actions.items()
    assert (job, action.revision, action.attempt) == ("tiny", new_revision, 1)
    assert description.startswith(f"plan {status_digest(reviewed.actions, updated)}: ")

    bad = manifest("bad").replace("  provider: local\n", "  provider: local\n  stepz: 3\n")
    repo.write_job("bad", bad)
    invalid = commit_on(repo, "feature", "a typo")
    result = actions.plan_pr(7, invalid)
    assert result.returncode == 1, explain(result)
    line = bad.splitlines().index("  stepz: 3") + 1
    assert f"::error file=jobs/bad.yaml,line={line}," in result.stdout
    [(state, description)] = actions.statuses(invalid, "trainops/plan")
    assert state == "failure"
    assert re.fullmatch(PLAN_STATUS + r"; 1 problem\(s\) in 1 file\(s\)", description)
    assert len(emu.issue_comments(OWNER, NAME, 7)) == 1
    assert actions.summary.read_text().count("### trainops plan") == 3
    assert [r.method for r in emu.requests_to("POST", "/issues/")] == ["POST"]
    actions.assert_no_secrets()


def test_pull_request_plan_shows_the_credentials_a_change_passes_to_a_job(
    repo: UserRepo, actions: Actions
) -> None:
    repo.write_job("tiny", tiny(repo))
    commit_on(repo, "feature", "add tiny")
    merge(repo)
    assert actions.apply(event="push").returncode == 0
    repo.release("tiny")
    repo.wait_all_terminal()
    assert actions.apply().returncode == 0
    # The change only hands other variables to the job: same revision, nothing to run, yet the
    # reviewer must see which credentials its next run would get.
    doc = yaml.safe_load(tiny(repo))
    doc["spec"]["env"] = ["HF_TOKEN", "WANDB_PROJECT"]
    repo.write_job("tiny", yaml.safe_dump(doc, sort_keys=False))
    head = commit_on(repo, "more-env", "pass HF_TOKEN to tiny")
    result = actions.plan_pr(8, head)
    assert result.returncode == 0, explain(result)
    [comment] = actions.emu.issue_comments(OWNER, NAME, 8)
    assert (
        "- `tiny`\n"
        "  - `env: + HF_TOKEN` ⚠️ **credential: passes HF_TOKEN to the job**\n"
        "  - `env: - TRAINING_DATA_SECRET` ⚠️ **credential: no longer passes"
        " TRAINING_DATA_SECRET to the job**\n"
        "  - `env: + WANDB_PROJECT`\n"
    ) in comment["body"]
    actions.assert_no_secrets()


# ---- after the merge: statuses and one comment on the source commit --------------------------


def test_merge_apply_reports_per_job_statuses_and_one_comment_each(
    repo: UserRepo, actions: Actions
) -> None:
    emu = actions.emu
    repo.write_job("tiny", tiny(repo))
    repo.write_job(
        "broken",
        manifest("broken", input={"fail_times": 1, "counter": repo.counter_path("broken")}),
    )
    commit_on(repo, "feature", "add tiny and broken")
    source = merge(repo)
    result = actions.run("plan", "--github", event="push", payload={}, sha=source)
    assert result.returncode == 0, explain(result)
    assert "2 to submit" in actions.summary.read_text()  # not a pull request: the summary only
    assert emu.requests == []

    result = actions.apply(event="push")
    assert result.returncode == 0, explain(result)
    [broken_id, run_id] = repo.run_ids()
    for job in ("tiny", "broken"):
        assert actions.statuses(source, f"trainops/{job}") == [
            ("pending", "Pending: waiting to start")
        ]
    actions_run = f"https://github.com/{OWNER}/{NAME}/actions/runs/{1000 + actions.runs}"
    assert emu.statuses(source)[0]["target_url"] == actions_run
    # pushed straight to main: the one comment says no reviewed plan showed them (DESIGN §20)
    assert run_comments(emu, source, pushed=[{"tiny", "broken"}]) == []

    repo.release("tiny")
    repo.wait_all_terminal()
    log = (repo.run_dir(run_id) / "log.txt").read_text()
    assert all(secret in log for secret in SECRETS)  # the training leaked them all
    for _ in range(2):  # scheduled reconciles: the second has nothing new to say
        result = actions.apply()
        assert result.returncode == 0, explain(result)
    [(state, description), (pending, _)] = actions.statuses(source, "trainops/tiny")
    assert (state, pending) == ("success", "pending")
    assert description.startswith("Succeeded in ")
    [(state, description), _pending] = actions.statuses(source, "trainops/broken")
    assert state == "failure" and description.startswith("Failed after ")
    comments = run_comments(emu, source, pushed=[{"tiny", "broken"}])
    failed, succeeded = sorted(comments, key=lambda c: c["body"])
    assert failed["body"].startswith(f"<!-- trainops:run:broken:{broken_id}:Failed -->")
    assert "failing on purpose (1 of 1)" in failed["body"]
    revision = repo.revisions()["tiny"]
    body = succeeded["body"]
    assert body.startswith(f"<!-- trainops:run:tiny:{run_id}:Succeeded -->")
    assert f"`{snapshot_path('tiny', revision)}` on branch `trainops/state`" in body
    assert "leaked: *** ***" in body and "TRAINING_DATA_SECRET=***" in body
    assert f"trained {run_id}" in body
    assert repo.state()["tiny"].runs[-1].reported == "Succeeded"
    actions.assert_no_secrets()


# ---- GitHub down during an apply -------------------------------------------------------------


def test_github_outage_never_blocks_apply_and_reports_arrive_once(
    repo: UserRepo, actions: Actions
) -> None:
    emu = actions.emu
    repo.write_job("tiny", tiny(repo))
    source = repo.commit("add tiny")
    emu.fail_all(500)

    result = actions.apply(event="push")
    assert result.returncode == 0, explain(result)
    assert "not reported" in result.stderr
    [run_id] = repo.run_ids()  # the provider action happened
    [run] = repo.state()["tiny"].runs
    assert (run.run_id, run.reported) == (run_id, "")  # recorded, still in the outbox
    # Besides the review phase's reads (DESIGN §20: the commit's pull requests and comments,
    # each tried twice and failed), the two tries of the status report, where reporting stopped.
    review = [r for r in emu.requests if r.path.endswith(("/pulls", "/comments"))]
    assert [r.method for r in review] == ["GET"] * 6  # pulls, dispatch plan, unreviewed list
    assert emu.statuses(source) == [] and len(emu.requests) - len(review) == 2
    assert "not reviewed, submitted: tiny: no reviewed plan: cannot list" in result.stderr

    emu.clear_faults()
    repo.wait_status(run_id, {"running"})
    result = actions.apply()  # GitHub is back: the missed report goes out, once
    assert result.returncode == 0, explain(result)
    [(state, description)] = actions.statuses(source, "trainops/tiny")
    assert state == "pending" and description.startswith("Running since ")

    repo.release("tiny")
    repo.wait_status(run_id, {"succeeded"})
    result = actions.apply()
    assert result.returncode == 0, explain(result)
    assert [s for s, _d in actions.statuses(source, "trainops/tiny")] == ["success", "pending"]
    # the unreviewed list was not posted while GitHub was down (stderr said it), never later
    assert len(run_comments(emu, source)) == 1
    actions.assert_no_secrets()


# ---- a Replicate training: the produced model version on the commit --------------------------


def test_replicate_run_reports_its_produced_version(tmp_path: Path, emu: GitHubEmulator) -> None:
    with ReplicateEmulator(token=R8_TOKEN, queue_seconds=5, run_seconds=100) as replicate:
        job = yaml.safe_dump(
            {
                "apiVersion": "trainops/v1",
                "kind": "TrainingJob",
                "metadata": {"name": "portraits"},
                "spec": {
                    "provider": "replicate",
                    "hardware": "gpu-h100",
                    "trainer": f"ostris/flux-dev-lora-trainer:{FLUX_LORA_VERSION}",
                    "destination": "acme/portraits",
                    "input": {"input_images": "https://example.com/p.zip", "steps": 1000},
                },
            }
        )
        repo = UserRepo.create(tmp_path, {"portraits": job})
        repo.env["REPLICATE_BASE_URL"] = replicate.base_url
        actions = Actions(repo, emu, tmp_path)
        source = git(repo.root, "rev-parse", "HEAD")
        result = actions.apply(event="push")
        assert result.returncode == 0, explain(result)
        assert actions.statuses(source, "trainops/portraits") == [
            ("pending", "Pending: waiting to start")
        ]

        replicate.advance(200)  # the training queues, runs 100 s on an H100 and succeeds
        result = actions.apply()
        assert result.returncode == 0, explain(result)
        [training] = replicate.trainings
        [run] = repo.state()["portraits"].runs
        version = run.outputs["version"]
        assert version.startswith("acme/portraits:")
        [(state, description), _pending] = actions.statuses(source, "trainops/portraits")
        assert (state, description) == ("success", f"Succeeded in 1m40s · $0.15 · {version}")
        [comment] = run_comments(emu, source, pushed=[{"portraits"}])
        assert f"| produced version | `{version}` |" in comment["body"]
        assert f"| run | `{training.id}` (replicate) |" in comment["body"]
        actions.assert_no_secrets()
