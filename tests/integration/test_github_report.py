"""github/plan_report and github/run_report against the GitHub emulator, in process: the sticky
plan comment, the review-gate status, fork and outage fallbacks, and run reports that are never
posted twice.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from tests.emulators.github import GitHubEmulator
from trainops.errors import Problem
from trainops.github.plan_report import PLAN_MARKER, publish_plan
from trainops.github.run_report import run_reporter
from trainops.github.transport import GitHubError
from trainops.manifest import Config
from trainops.state.model import Health, Run

OWNER, REPO = "acme", "models"
HEAD, MERGE, SOURCE = "c" * 40, "d" * 40, "e" * 40
TOKEN = "ghs_" + "Rep0rtT0ken" * 3
PLAN = "### trainops plan\n\n**Plan: 1 to submit.**\n"


@pytest.fixture
def emu() -> Iterator[GitHubEmulator]:
    with GitHubEmulator(token=TOKEN) as emulator:
        yield emulator


def actions_env(
    emu: GitHubEmulator,
    tmp_path: Path,
    event_name: str = "pull_request",
    head: str = HEAD,
    number: int = 7,
) -> dict[str, str]:
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"pull_request": {"number": number, "head": {"sha": head}}}))
    return {
        **emu.env(),
        "GITHUB_REPOSITORY": f"{OWNER}/{REPO}",
        "GITHUB_EVENT_NAME": event_name,
        "GITHUB_EVENT_PATH": str(event),
        "GITHUB_SHA": MERGE,
        "GITHUB_RUN_ID": "42",
        "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"),
        "TRAINOPS_GITHUB_BACKOFF": "0",
        "TRAINOPS_GITHUB_WRITE_INTERVAL": "0",
        "TRAINOPS_GITHUB_MAX_ATTEMPTS": "2",
    }


def test_plan_comment_is_created_once_then_edited_in_place(
    emu: GitHubEmulator, tmp_path: Path
) -> None:
    assert publish_plan(PLAN, False, [], env=actions_env(emu, tmp_path)) == []
    first = emu.issue_comments(OWNER, REPO, 7)
    newer = "d0" * 20
    notes = publish_plan(
        PLAN.replace("1 to submit", "2 to submit"),
        False,
        [],
        env=actions_env(emu, tmp_path, head=newer),
    )
    assert notes == []
    [comment] = emu.issue_comments(OWNER, REPO, 7)
    assert comment["id"] == first[0]["id"]
    assert comment["body"].startswith(PLAN_MARKER) and "2 to submit" in comment["body"]
    assert [(s["context"], s["state"]) for s in emu.statuses(newer)] == [
        ("trainops/plan", "success")
    ]
    assert emu.statuses(HEAD)[0]["target_url"] == comment["html_url"]
    assert emu.statuses(MERGE) == []  # never the merge commit GITHUB_SHA names
    assert (tmp_path / "summary.md").read_text().count("### trainops plan") == 2


def test_plan_edits_the_newest_of_ours_and_never_a_quoting_reply(
    emu: GitHubEmulator, tmp_path: Path
) -> None:
    bot = "github-actions[bot]"  # whom the Actions token posts as
    old = emu.add_issue_comment(OWNER, REPO, 7, f"{PLAN_MARKER}\nold", login=bot)
    newest = emu.add_issue_comment(OWNER, REPO, 7, f"{PLAN_MARKER}\nnewer", login=bot)
    reply = emu.add_issue_comment(OWNER, REPO, 7, f"> {PLAN_MARKER}\n> newer\n\nwhy?")
    publish_plan(
        PLAN,
        True,
        [Problem("jobs/a.yaml", 2, 1, "bad")],
        status_context="ml",
        env=actions_env(emu, tmp_path),
    )
    bodies = {c["id"]: c["body"] for c in emu.issue_comments(OWNER, REPO, 7)}
    assert bodies[old["id"]] == old["body"] and bodies[reply["id"]] == reply["body"]
    assert "1 to submit" in bodies[newest["id"]]
    assert len(bodies) == 3
    [status] = emu.statuses(HEAD)
    assert (status["context"], status["state"], status["description"]) == (
        "ml/plan",
        "failure",
        "Plan: 1 to submit; 1 problem(s) in 1 file(s)",
    )


def test_fork_pull_request_falls_back_to_the_job_summary(
    emu: GitHubEmulator, tmp_path: Path
) -> None:
    emu.fail_all(403, method="POST")  # a fork's read-only token: reading works, writing does not
    notes = publish_plan(PLAN, False, [], env=actions_env(emu, tmp_path))
    assert len(notes) == 1 and "403" in notes[0] and "job summary" in notes[0]
    assert emu.issue_comments(OWNER, REPO, 7) == [] and emu.statuses(HEAD) == []
    assert "**Plan: 1 to submit.**" in (tmp_path / "summary.md").read_text()


def test_plan_on_an_outage_raises_after_writing_the_summary(
    emu: GitHubEmulator, tmp_path: Path
) -> None:
    emu.fail_all(500)
    with pytest.raises(GitHubError, match="500"):
        publish_plan(PLAN, False, [], env=actions_env(emu, tmp_path))
    assert "1 to submit" in (tmp_path / "summary.md").read_text()
    assert len(emu.requests) == 2  # TRAINOPS_GITHUB_MAX_ATTEMPTS


@pytest.mark.parametrize("event_name", ["push", "schedule"])
def test_outside_a_pull_request_only_the_summary_is_written(
    emu: GitHubEmulator, tmp_path: Path, event_name: str
) -> None:
    assert publish_plan(PLAN, True, [], env=actions_env(emu, tmp_path, event_name)) == []
    assert emu.requests == []
    assert (tmp_path / "summary.md").read_text() == PLAN


def test_without_github_context_nothing_is_posted(emu: GitHubEmulator, tmp_path: Path) -> None:
    env = actions_env(emu, tmp_path)
    del env["GITHUB_REPOSITORY"]
    [note] = publish_plan(PLAN, False, [], env=env)
    assert "no GitHub context" in note
    notes: list[str] = []
    assert run_reporter(Config(), notes.append, env=env) is None
    del env["GITHUB_TOKEN"]
    assert (
        run_reporter(Config(), notes.append, env={**env, "GITHUB_REPOSITORY": "acme/models"})
        is None
    )
    assert "GITHUB_TOKEN is not set" in notes[1]
    assert emu.requests == []


RUN = Run(
    revision="3f2c9a1b7d4e",
    attempt=1,
    provider="local",
    input_hash="h",
    created_at=1704067200.0,
    source_commit=SOURCE,
    run_id="tiny-3f2c9a1b7d4e-1",
    health=Health.PENDING,
    snapshot="snapshots/tiny/3f2c9a1b7d4e.yaml",
)


def test_run_reports_statuses_and_one_comment_even_when_repeated(
    emu: GitHubEmulator, tmp_path: Path
) -> None:
    env = {**actions_env(emu, tmp_path, "push"), "REPLICATE_API_TOKEN": "r8_fake_value_123"}
    reporter = run_reporter(Config(), lambda _n: None, env=env)
    assert reporter is not None
    assert reporter.report("tiny", RUN, "")
    done = replace(
        RUN,
        health=Health.SUCCEEDED,
        started_at=1.0,
        completed_at=61.0,
        cost_usd=0.0,
        outputs={"weights": "/runs/w.bin"},
    )
    log = f"token {TOKEN} and r8_fake_value_123\nfinished"
    assert reporter.report("tiny", done, log)
    reporter.close()
    # apply crashed before recording `reported`: the next apply (a new reporter) sends it again
    again = run_reporter(Config(), lambda _n: None, env=env)
    assert again is not None and again.report("tiny", done, log)
    again.close()
    assert [(s["context"], s["state"]) for s in emu.statuses(SOURCE)] == [
        ("trainops/tiny", "success"),
        ("trainops/tiny", "pending"),
    ]
    [comment] = emu.commit_comments(SOURCE)
    assert comment["body"].startswith("<!-- trainops:run:tiny:tiny-3f2c9a1b7d4e-1:Succeeded -->")
    assert "token *** and ***\nfinished" in comment["body"]
    assert TOKEN not in json.dumps([r.json for r in emu.requests])


def test_run_report_failure_raises_and_notes(emu: GitHubEmulator, tmp_path: Path) -> None:
    notes: list[str] = []
    reporter = run_reporter(Config(), notes.append, env=actions_env(emu, tmp_path, "schedule"))
    assert reporter is not None
    emu.fail_all(502)
    with pytest.raises(GitHubError):
        reporter.report("tiny", RUN, "")
    reporter.close()
    assert len(notes) == 1 and "next apply" in notes[0]
    assert emu.statuses(SOURCE) == []


@pytest.mark.parametrize("stored", [False, True])
def test_a_comment_post_with_an_unknown_outcome_leaves_one_comment_and_one_status(
    emu: GitHubEmulator, tmp_path: Path, stored: bool
) -> None:
    env = actions_env(emu, tmp_path, "schedule")
    done = replace(RUN, health=Health.FAILED, error="exit status 1")
    if stored:  # GitHub stored the comment, then answered 502
        emu.fail_after_storing(502, method="POST", path="/comments$")
    else:  # the connection breaks mid-post, before anything is stored
        emu.drop_next(1, method="POST", path="/comments$")
    first = run_reporter(Config(), lambda _n: None, env=env)
    assert first is not None and first.report("tiny", done, "boom")  # looked, then (re)posted
    first.close()
    assert len(emu.commit_comments(SOURCE)) == 1
    second = run_reporter(Config(), lambda _n: None, env=env)
    assert second is not None and second.report("tiny", done, "boom")
    second.close()
    assert [s["state"] for s in emu.statuses(SOURCE)] == ["failure"]
    [comment] = emu.commit_comments(SOURCE)
    assert "**Error:** exit status 1" in comment["body"]


def _settled_set() -> tuple[Any, str]:
    """A settled set of two members (lr 1 and 2) and a member's run: lr 2 wins."""
    from tests.support.factories import run
    from tests.support.sweeps import sweep
    from trainops.plan import set_outcome
    from trainops.state.model import JobState

    desired = sweep("lora", [1, 2], select=("eval_loss", "minimize"))
    state = {
        m: JobState(
            m,
            (
                run(
                    desired.targets[m],
                    Health.SUCCEEDED,
                    metrics={"eval_loss": 0.5 / (i + 1)},
                    source_commit=SOURCE,
                ),
            ),
        )
        for i, m in enumerate(desired.sets["lora"].members)
    }
    outcome = set_outcome(desired.sets["lora"], desired, state)
    assert outcome is not None and outcome.winner
    return outcome, outcome.winner


def test_a_settled_set_is_one_comment_and_its_members_have_none(
    emu: GitHubEmulator, tmp_path: Path
) -> None:
    outcome, winner = _settled_set()
    env = actions_env(emu, tmp_path, "push")
    # someone else's comment with the set's marker does not count as trainops's
    from trainops.github.set_report import set_marker

    emu.add_commit_comment(OWNER, REPO, SOURCE, set_marker(outcome) + "\nforged", login="octocat")
    for _ in range(2):  # a second apply (a new reporter) after a crash posts nothing more
        reporter = run_reporter(Config(), lambda _n: None, env=env)
        assert reporter is not None
        member_run = outcome.members[0].run
        assert member_run is not None
        assert reporter.report(winner, member_run, "log")
        assert reporter.report_set(outcome, SOURCE) and reporter.report_set(outcome, SOURCE)
        reporter.close()
    bodies = [c["body"] for c in emu.commit_comments(SOURCE)]
    assert len(bodies) == 2 and bodies[0].endswith("forged")
    assert bodies[1].startswith(set_marker(outcome)) and f"| **winner** | `{winner}` |" in bodies[1]
    assert [s["context"] for s in emu.statuses(SOURCE)] == [f"trainops/{winner}"]
