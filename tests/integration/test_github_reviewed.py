"""Plan binding on merge, the GitHub side (DESIGN §20), against the GitHub emulator over real
HTTP: `publish_plan` records the reviewed actions in the sticky comment and their digest in the
`trainops/plan` status, and `reviewed_plans` finds them again for the merge commit; a block
written or edited by anyone but trainops counts for nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.emulators.github import GitHubEmulator
from trainops.github.client import GitHubClient
from trainops.github.comments import PLAN_MARKER
from trainops.github.plan_report import publish_plan
from trainops.github.reviewed import (
    DISPATCH,
    ReviewedAction,
    ReviewedPlan,
    embed,
    reviewed_plans,
    status_digest,
)

OWNER, NAME = "acme", "models"
REPO = f"{OWNER}/{NAME}"
HEAD, MERGE, OTHER = "c" * 40, "d" * 40, "e" * 40
TOKEN = "ghs_" + "Rev1ewT0ken" * 3
PLAN = "### trainops plan\n\n**Plan: 1 to submit.**\n"
REVIEWED = {"portraits": ReviewedAction("portraits", "3f2c9a1b7d4e", 1, 5.49, ("HF_TOKEN",))}


@pytest.fixture
def emu() -> Iterator[GitHubEmulator]:
    with GitHubEmulator(token=TOKEN) as emulator:
        yield emulator
    assert emulator.errors == []


@pytest.fixture
def gh(emu: GitHubEmulator) -> Iterator[GitHubClient]:
    with GitHubClient(TOKEN, api_url=emu.url, backoff_base=0, write_interval=0) as client:
        yield client


def env(emu: GitHubEmulator, tmp_path: Path, event: str = "pull_request") -> dict[str, str]:
    path = tmp_path / "event.json"
    path.write_text(json.dumps({"pull_request": {"number": 7, "head": {"sha": HEAD}}}))
    return {
        **emu.env(),
        "GITHUB_REPOSITORY": REPO,
        "GITHUB_EVENT_NAME": event,
        "GITHUB_EVENT_PATH": str(path),
        "GITHUB_SHA": MERGE,
        "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"),
        "TRAINOPS_GITHUB_BACKOFF": "0",
        "TRAINOPS_GITHUB_WRITE_INTERVAL": "0",
    }


def planned_and_merged(emu: GitHubEmulator, tmp_path: Path) -> None:
    assert publish_plan(PLAN, False, [], reviewed=REVIEWED, env=env(emu, tmp_path)) == []
    emu.add_pull(OWNER, NAME, 7, head_sha=HEAD, merge_commit_sha=MERGE, state="closed")


def test_the_plan_of_the_merged_pull_request_is_found_for_its_merge_commit(
    emu: GitHubEmulator, gh: GitHubClient, tmp_path: Path
) -> None:
    planned_and_merged(emu, tmp_path)
    [status] = emu.statuses(HEAD)
    assert status["description"] == (
        f"plan {status_digest(REVIEWED, HEAD)}: 1 to submit, up to $5.49"
    )
    assert reviewed_plans(gh, REPO, MERGE) == ([ReviewedPlan(7, HEAD, REVIEWED)], "")


def test_a_direct_push_has_no_reviewed_plan(
    emu: GitHubEmulator, gh: GitHubClient, tmp_path: Path
) -> None:
    planned_and_merged(emu, tmp_path)
    emu.push(OWNER, NAME, OTHER)
    assert reviewed_plans(gh, REPO, OTHER) == ([], "")


def test_an_open_pull_request_holding_the_commit_is_not_a_merge(
    emu: GitHubEmulator, gh: GitHubClient, tmp_path: Path
) -> None:
    assert publish_plan(PLAN, False, [], reviewed=REVIEWED, env=env(emu, tmp_path)) == []
    emu.add_pull(OWNER, NAME, 7, head_sha=HEAD)
    assert reviewed_plans(gh, REPO, HEAD) == ([], "")


def test_a_pull_request_merged_as_another_commit_counts_only_through_ancestry(
    emu: GitHubEmulator, gh: GitHubClient, tmp_path: Path
) -> None:
    planned_and_merged(emu, tmp_path)
    # HEAD is the merged pull request's head: GitHub names #7 for it, but it is not MERGE.
    assert reviewed_plans(gh, REPO, HEAD) == ([], "")
    found = reviewed_plans(gh, REPO, HEAD, ancestor=lambda head, sha: head == sha)
    assert found == ([ReviewedPlan(7, HEAD, REVIEWED)], "")


def test_a_block_forged_by_the_pull_request_author_counts_for_nothing(
    emu: GitHubEmulator, gh: GitHubClient, tmp_path: Path
) -> None:
    planned_and_merged(emu, tmp_path)
    cheap = {"portraits": ReviewedAction("portraits", "9a1b2c3d4e5f", 1, 99.0, ())}
    forged = f"{PLAN_MARKER}\n{embed(cheap, HEAD)}\nlooks reviewed"
    emu.add_issue_comment(OWNER, NAME, 7, forged, login="octocat")
    emu.add_issue_comment(OWNER, NAME, 7, forged, login="mallory-bot[bot]")
    assert reviewed_plans(gh, REPO, MERGE) == ([ReviewedPlan(7, HEAD, REVIEWED)], "")


def test_a_block_forged_alone_counts_for_nothing(emu: GitHubEmulator, gh: GitHubClient) -> None:
    forged = f"{PLAN_MARKER}\n{embed(REVIEWED, HEAD)}\n"
    emu.add_issue_comment(OWNER, NAME, 7, forged, login="octocat")
    emu.add_pull(OWNER, NAME, 7, head_sha=HEAD, merge_commit_sha=MERGE, state="closed")
    assert reviewed_plans(gh, REPO, MERGE) == ([], "#7: trainops posted no plan")


def test_our_comment_edited_to_another_block_counts_for_nothing(
    emu: GitHubEmulator, gh: GitHubClient, tmp_path: Path
) -> None:
    planned_and_merged(emu, tmp_path)
    [comment] = emu.issue_comments(OWNER, NAME, 7)
    dearer = {"portraits": ReviewedAction("portraits", "3f2c9a1b7d4e", 1, 11.02, ("HF_TOKEN",))}
    emu.edit_issue_comment(comment["id"], f"{PLAN_MARKER}\n{embed(dearer, HEAD)}\nedited")
    plans, note = reviewed_plans(gh, REPO, MERGE)
    assert plans == [] and "does not match the trainops/plan status" in note


def test_a_failed_gate_counts_for_nothing(
    emu: GitHubEmulator, gh: GitHubClient, tmp_path: Path
) -> None:
    assert publish_plan(PLAN, True, [], reviewed=REVIEWED, env=env(emu, tmp_path)) == []
    emu.add_pull(OWNER, NAME, 7, head_sha=HEAD, merge_commit_sha=MERGE, state="closed")
    assert reviewed_plans(gh, REPO, MERGE) == (
        [],
        "#7: its trainops/plan status is failure, not success",
    )


def test_a_plan_of_an_older_head_counts_for_nothing(
    emu: GitHubEmulator, gh: GitHubClient, tmp_path: Path
) -> None:
    assert publish_plan(PLAN, False, [], reviewed=REVIEWED, env=env(emu, tmp_path)) == []
    # The pull request moved on to OTHER (its plan never posted), then was merged.
    emu.add_pull(OWNER, NAME, 7, head_sha=OTHER, merge_commit_sha=MERGE, state="closed")
    with GitHubClient(TOKEN, api_url=emu.url, backoff_base=0, write_interval=0) as ours:
        ours.create_commit_status(
            REPO, OTHER, "success", context="trainops/plan", description="plan 0123"
        )
    assert reviewed_plans(gh, REPO, MERGE) == (
        [],
        f"#7: the last plan is of {HEAD[:12]}, not of its last commit {OTHER[:12]}",
    )


def test_a_status_set_by_someone_else_counts_for_nothing(
    emu: GitHubEmulator, gh: GitHubClient, tmp_path: Path
) -> None:
    planned_and_merged(emu, tmp_path)
    emu.user = {**emu.user, "login": "octocat", "type": "User", "id": 583231}
    other = GitHubClient(TOKEN, api_url=emu.url, backoff_base=0, write_interval=0)
    with other:
        other.create_commit_status(
            REPO, HEAD, "success", context="trainops/plan", description="plan 0000: forged"
        )
    emu.user = {**emu.user, "login": "github-actions[bot]", "type": "Bot", "id": 41898282}
    assert reviewed_plans(gh, REPO, MERGE) == (
        [],
        f"#7: no trainops/plan status by trainops on {HEAD[:12]}",
    )


def test_a_dispatched_plan_of_the_commit_itself_counts(
    emu: GitHubEmulator, gh: GitHubClient, tmp_path: Path
) -> None:
    emu.push(OWNER, NAME, MERGE)
    dispatched = env(emu, tmp_path, event="workflow_dispatch")
    assert publish_plan(PLAN, False, [], reviewed=REVIEWED, env=dispatched) == []
    assert publish_plan(PLAN, False, [], reviewed=REVIEWED, env=dispatched) == []
    [comment] = emu.commit_comments(MERGE)  # repeated: posted once
    assert comment["body"].startswith(PLAN_MARKER)
    assert reviewed_plans(gh, REPO, MERGE) == ([ReviewedPlan(DISPATCH, MERGE, REVIEWED)], "")
