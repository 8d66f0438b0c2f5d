"""Plan binding on merge, the apply side (DESIGN §20), as Actions runs it: `plan --github` on
a pull request, the merge pushed, then `apply --github` on the push and on a schedule, each a
subprocess against the GitHub emulator, a real git repository with a bare remote, and the local
provider. What is asserted is what a user would see: runs started (or not) at the provider, the
commit comment, the job summary, `-o json`, and the exit code.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.emulators.github import GitHubEmulator
from tests.support.gitrepo import git
from tests.support.workspace import UserRepo, config, explain, manifest
from trainops.github.comments import PLAN_MARKER
from trainops.github.reviewed import ReviewedAction, embed, parse
from trainops.github.unreviewed import UNREVIEWED_MARKER

OWNER, NAME = "acme", "models"
GH_TOKEN = "ghs_" + "B1ndReviewT0ken" * 3
PRICE = 0.000225  # gpu-t4, $ per second: a worst case of 600 s is $0.14
PRICED = {"hardware": "gpu-t4", "budget": {"max_duration": "10m"}}


class Actions:
    """GitHub Actions around one repository: event files, the environment, the CLI."""

    def __init__(self, repo: UserRepo, emu: GitHubEmulator, tmp: Path) -> None:
        self.repo, self.emu, self.tmp = repo, emu, tmp
        self.summary = tmp / "step-summary.md"
        self.runs = 0

    def run(
        self, *args: str, event: str, payload: dict[str, Any], sha: str
    ) -> subprocess.CompletedProcess[str]:
        self.runs += 1
        event_path = self.tmp / f"event-{self.runs}.json"
        event_path.write_text(json.dumps(payload))
        env = {
            **self.emu.env(),
            "GITHUB_ACTIONS": "true",
            "GITHUB_REPOSITORY": f"{OWNER}/{NAME}",
            "GITHUB_EVENT_NAME": event,
            "GITHUB_EVENT_PATH": str(event_path),
            "GITHUB_SHA": sha,
            "GITHUB_STEP_SUMMARY": str(self.summary),
            "GITHUB_RUN_ID": str(2000 + self.runs),
            "TRAINOPS_GITHUB_BACKOFF": "0",
            "TRAINOPS_GITHUB_WRITE_INTERVAL": "0",
            "TRAINOPS_GITHUB_MAX_ATTEMPTS": "2",
        }
        return self.repo.trainops(*args, env=env)

    def plan_pr(self, number: int, head: str) -> subprocess.CompletedProcess[str]:
        pull = {"number": number, "head": {"sha": head, "ref": "feature"}, "base": {"ref": "main"}}
        payload = {"action": "synchronize", "number": number, "pull_request": pull}
        return self.run("plan", "--github", event="pull_request", payload=payload, sha="f" * 40)

    def plan_commit(self) -> subprocess.CompletedProcess[str]:
        """The plan workflow run by hand on the default branch (`workflow_dispatch`)."""
        sha = git(self.repo.root, "rev-parse", "HEAD")
        return self.run("plan", "--github", event="workflow_dispatch", payload={}, sha=sha)

    def apply(self, event: str = "push") -> subprocess.CompletedProcess[str]:
        sha = git(self.repo.root, "rev-parse", "HEAD")
        payload = {"ref": "refs/heads/main"}
        return self.run("apply", "--github", "-o", "json", event=event, payload=payload, sha=sha)

    def unreviewed_comments(self, sha: str) -> list[str]:
        return [
            c["body"]
            for c in self.emu.commit_comments(sha)
            if c["body"].startswith(UNREVIEWED_MARKER)
        ]


@pytest.fixture
def emu() -> Iterator[GitHubEmulator]:
    with GitHubEmulator(token=GH_TOKEN) as emulator:
        yield emulator
        assert emulator.errors == []


def make_repo(tmp_path: Path, mode: str) -> UserRepo:
    cfg = config(policy={"require_reviewed_plan": mode}, prices_usd_per_second={"gpu-t4": PRICE})
    return UserRepo.create(tmp_path, {}, cfg=cfg)


@pytest.fixture(params=["warn", "block"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def commit_on(repo: UserRepo, branch: str, message: str) -> str:
    if git(repo.root, "branch", "--show-current") != branch:
        git(repo.root, "checkout", "--quiet", "-B", branch)
    git(repo.root, "add", "--all")
    git(repo.root, "commit", "--quiet", "-m", message)
    return git(repo.root, "rev-parse", "HEAD")


def merge(repo: UserRepo, emu: GitHubEmulator, number: int, head: str) -> str:
    """Merge the pull request as GitHub does (a merge commit on main), push, register it."""
    git(repo.root, "checkout", "--quiet", "main")
    git(repo.root, "merge", "--quiet", "--no-ff", "feature", "-m", "Merge branch 'feature'")
    git(repo.root, "push", "--quiet", "origin", "main")
    sha = git(repo.root, "rev-parse", "HEAD")
    emu.add_pull(OWNER, NAME, number, head_sha=head, merge_commit_sha=sha, state="closed")
    return sha


def job(name: str, input: dict[str, Any] | None = None, **spec: Any) -> str:
    """A priced local job; `suspend` written first, so edits further down stay apart for git."""
    first = {"suspend": spec.pop("suspend")} if "suspend" in spec else {}
    return manifest(name, input=input, **first, **PRICED, **spec)


def views(result: subprocess.CompletedProcess[str]) -> dict[str, dict[str, Any]]:
    return {j["job"]: j for j in json.loads(result.stdout)["jobs"]}


def test_a_merge_the_reviewed_plan_showed_applies_silently(
    tmp_path: Path, emu: GitHubEmulator
) -> None:
    repo = make_repo(tmp_path, "block")
    actions = Actions(repo, emu, tmp_path)
    repo.write_job("tiny", job("tiny"))
    head = commit_on(repo, "feature", "add tiny")
    assert actions.plan_pr(12, head).returncode == 0
    sha = merge(repo, emu, 12, head)

    result = actions.apply()
    assert result.returncode == 0, explain(result)
    assert len(repo.run_ids()) == 1
    assert "not reviewed" not in result.stderr
    assert not [n for n in json.loads(result.stdout)["notes"] if "review" in n]
    assert actions.unreviewed_comments(sha) == []
    assert "no reviewed plan showed" not in actions.summary.read_text()
    repo.cleanup()


TINY = {"alpha": 1, "mid": 0, "steps": 1}  # `mid` keeps the two sides' edits apart for git


def diverged_merge(repo: UserRepo, actions: Actions, kind: str) -> str:
    """tiny (suspended) on main; a pull request unsuspends it with 2 steps and is planned;
    meanwhile main changes what tiny will cost (the price), what it runs (another input) or
    which credentials it gets (spec.env). The merge is not what was reviewed."""
    repo.write_job("tiny", job("tiny", input=TINY, suspend=True))
    repo.commit("tiny, suspended")
    git(repo.root, "checkout", "--quiet", "-b", "feature")
    repo.write_job("tiny", job("tiny", input={**TINY, "steps": 2}, suspend=False))
    head = commit_on(repo, "feature", "two steps, unsuspended")
    assert actions.plan_pr(12, head).returncode == 0
    git(repo.root, "checkout", "--quiet", "main")
    if kind == "cost":
        prices = {"gpu-t4": PRICE * 2}
        mode = yaml.safe_load((repo.root / "trainops.yaml").read_text())["policy"]
        repo.write("trainops.yaml", config(policy=mode, prices_usd_per_second=prices))
    elif kind == "revision":
        repo.write_job("tiny", job("tiny", input={**TINY, "alpha": 3}, suspend=True))
    else:
        repo.write_job("tiny", job("tiny", input=TINY, suspend=True, env=["WANDB_API_KEY"]))
    repo.commit(f"main moves: {kind}")
    return merge(repo, actions.emu, 12, head)


@pytest.mark.parametrize("kind", ["cost", "revision", "credentials"])
def test_a_merge_that_differs_from_the_reviewed_plan_warns_or_blocks(
    tmp_path: Path, emu: GitHubEmulator, mode: str, kind: str
) -> None:
    repo = make_repo(tmp_path, mode)
    actions = Actions(repo, emu, tmp_path)
    sha = diverged_merge(repo, actions, kind)

    result = actions.apply()
    [why] = [n.split("tiny: ", 1)[1] for n in json.loads(result.stdout)["notes"] if "tiny: " in n]
    said = {
        "cost": r"\(cost \$0\.14 -> \$0\.27\)",
        "revision": r"\(revision [0-9a-f]{12} -> [0-9a-f]{12}\)",
        # spec.env is not in the revision: only the binding tells a reviewer it changed
        "credentials": r"\(credentials \+WANDB_API_KEY\)",
    }[kind]
    assert re.fullmatch(r"not in the reviewed plan of #12 " + said, why), why
    [comment] = actions.unreviewed_comments(sha)
    assert f"- `tiny`: {why}" in comment.replace("\\>", ">")  # markdown escapes `>`
    assert f"- `tiny`: {why}" in actions.summary.read_text().replace("\\>", ">")
    view = views(result)["tiny"]
    if mode == "warn":
        assert result.returncode == 0, explain(result)
        assert len(repo.run_ids()) == 1
        assert f"note: not reviewed, submitted: tiny: {why}" in result.stderr
        assert "Started although no reviewed plan" in comment
    else:
        assert result.returncode == 1, explain(result)
        assert repo.run_ids() == []  # no run started
        assert (view["sync"], view["reason"]) == ("Blocked", why)
        assert f"refused by policy: tiny: {why}" in result.stderr
        assert "Held under `policy.require_reviewed_plan: block`" in comment
    repo.cleanup()


def test_a_direct_push_is_held_until_a_plan_of_its_commit_is_reviewed(
    tmp_path: Path, emu: GitHubEmulator
) -> None:
    repo = make_repo(tmp_path, "block")
    actions = Actions(repo, emu, tmp_path)
    repo.write_job("tiny", job("tiny"))
    sha = repo.commit("tiny, pushed straight to main")
    emu.push(OWNER, NAME, sha)

    result = actions.apply()
    assert result.returncode == 1, explain(result)
    assert repo.run_ids() == []
    view = views(result)["tiny"]
    assert (view["sync"], view["reason"]) == ("Blocked", "no reviewed plan: pushed directly")
    [comment] = actions.unreviewed_comments(sha)
    assert "- `tiny`: no reviewed plan: pushed directly" in comment

    # A scheduled reconcile of the same commit does not bypass `block`, nor post again.
    result = actions.apply(event="schedule")
    assert result.returncode == 1, explain(result)
    assert repo.run_ids() == []
    assert views(result)["tiny"]["reason"] == "no reviewed plan: pushed directly"
    assert len(actions.unreviewed_comments(sha)) == 1

    # The plan workflow run by hand on the commit: its plan, once passed, is the review.
    assert actions.plan_commit().returncode == 0
    result = actions.apply(event="schedule")
    assert result.returncode == 0, explain(result)
    assert len(repo.run_ids()) == 1
    assert views(result)["tiny"]["sync"] != "Blocked"
    assert not [n for n in json.loads(result.stdout)["notes"] if "review" in n]
    repo.cleanup()


def forge(actions: Actions, head: str, how: str) -> None:
    """What a pull request's author (or a maintainer) can do to make a plan look reviewed."""
    emu, repo = actions.emu, actions.repo
    revision = repo.revisions()["tiny"]
    block = embed({"tiny": ReviewedAction("tiny", revision, 1, PRICE * 600, ())}, head)
    if how == "by-the-author":  # trainops never planned; the author writes what it would
        emu.add_issue_comment(OWNER, NAME, 12, f"{PLAN_MARKER}\n{block}\n", login="mallory")
        return
    assert actions.plan_pr(12, head).returncode == 0
    if how == "another-login-after-the-plan":  # trainops's plan is older; the newest is forged
        emu.add_issue_comment(OWNER, NAME, 12, f"{PLAN_MARKER}\n{block}\n", login="mallory")
        return
    # edited: trainops's own comment, its block rewritten by a maintainer to a cheaper plan
    [ours] = emu.issue_comments(OWNER, NAME, 12)
    made_of, shown = parse(ours["body"]) or ("", {})
    assert made_of == head and shown["tiny"].worst_case_usd == pytest.approx(0.135)
    real = embed(shown, head)
    cheap = embed({"tiny": replace(shown["tiny"], worst_case_usd=0.01)}, head)
    assert real in ours["body"]
    emu.edit_issue_comment(ours["id"], ours["body"].replace(real, cheap))


@pytest.mark.parametrize("how", ["by-the-author", "another-login-after-the-plan", "edited"])
def test_a_forged_or_edited_reviewed_plan_counts_for_nothing(
    tmp_path: Path, emu: GitHubEmulator, how: str
) -> None:
    repo = make_repo(tmp_path, "block")
    actions = Actions(repo, emu, tmp_path)
    git(repo.root, "checkout", "--quiet", "-b", "feature")
    repo.write_job("tiny", job("tiny"))
    head = commit_on(repo, "feature", "add tiny")
    forge(actions, head, how)
    merge(repo, emu, 12, head)
    result = actions.apply()
    if how == "another-login-after-the-plan":  # the forged comment is ignored, not the plan
        assert result.returncode == 0, explain(result)
        assert len(repo.run_ids()) == 1
        return
    assert result.returncode == 1, explain(result)
    assert repo.run_ids() == []
    reason = views(result)["tiny"]["reason"]
    assert (
        reason
        == {
            "by-the-author": "no reviewed plan: #12: trainops posted no plan",
            "edited": "no reviewed plan: #12: its plan comment does not match the trainops/plan "
            "status (edited?)",
        }[how]
    )
    repo.cleanup()
