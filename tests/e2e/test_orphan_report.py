"""A scheduled reconcile reports orphaned runs once (DESIGN §20, issue 29 part 3): `apply
--github` from reconcile.yml takes the census of runs nobody declared and posts one commit
comment on the job's source commit naming each orphaned run, its age and cost so far and the
`trainops adopt` that binds it. The Replicate and GitHub emulators over HTTP, the CLI in a real
repository."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.e2e.test_replicate_cli import R8_TOKEN, Replicated
from tests.e2e.test_undeclared_runs import emu, provider_setup, strays, user
from tests.emulators.github import GitHubEmulator
from tests.support.gitrepo import git
from tests.support.reviewed import run_comments
from tests.support.undeclared import undeclared_repo
from tests.support.workspace import explain
from trainops.github.orphan_report import ORPHAN_MARKER

# The Replicate emulator an hour behind and the locked repository, as test_undeclared_runs.py
# makes them (its `strays` are the runs reported here).
__all__ = ["emu", "provider_setup", "undeclared_repo", "user"]

GH_TOKEN = "ghs_" + "Orph4nT0ken" * 3
OWNER, NAME = "acme", "models"


@pytest.fixture
def gh() -> Iterator[GitHubEmulator]:
    with GitHubEmulator(token=GH_TOKEN) as emulator:
        yield emulator
        assert emulator.errors == []


def reconcile(user: Replicated, gh: GitHubEmulator, event: str = "schedule") -> str:
    """One `apply --github` as reconcile.yml runs it; returns the commit it applied."""
    sha = git(user.repo.root, "rev-parse", "HEAD")
    event_path = user.repo.root.parent / "event.json"
    event_path.write_text(json.dumps({"schedule": "23,53 * * * *"}))
    env = {
        **gh.env(),
        "GITHUB_ACTIONS": "true",
        "GITHUB_REPOSITORY": f"{OWNER}/{NAME}",
        "GITHUB_EVENT_NAME": event,
        "GITHUB_EVENT_PATH": str(event_path),
        "GITHUB_SHA": sha,
        "REPLICATE_API_TOKEN": R8_TOKEN,
        "TRAINOPS_GITHUB_BACKOFF": "0",
        "TRAINOPS_GITHUB_WRITE_INTERVAL": "0",
    }
    result = user.repo.trainops("apply", "--github", env=env)
    user.outputs += [result.stdout, result.stderr]
    assert result.returncode == 0, explain(result)
    return sha


def orphan_comments(gh: GitHubEmulator, sha: str) -> list[dict[str, object]]:
    return [
        c
        for c in gh.commit_comments(sha)
        if str(c["body"]).startswith(ORPHAN_MARKER) and c["user"] == gh.user  # type: ignore[index]
    ]


def test_two_scheduled_passes_report_an_orphaned_run_once_on_its_source_commit(
    user: Replicated, gh: GitHubEmulator
) -> None:
    ours, theirs = strays(user.emu)
    sha = reconcile(user, gh)
    [comment] = orphan_comments(gh, sha)
    body = str(comment["body"])
    assert f"`trainops adopt portraits {ours}`" in body and "$0.15" in body  # 100 s of gpu-h100
    row = next(line for line in body.splitlines() if f"| `{ours}` |" in line)
    assert "| replicate | Succeeded | 1h" in row  # its age: made an hour ago
    assert theirs not in body  # a foreign run is no one's to adopt
    [run] = user.state_file("portraits")["runs"]
    assert run["source_commit"] == sha
    reconcile(user, gh)
    assert len(orphan_comments(gh, sha)) == 1
    # One orphan comment POST in all: the second pass found its own comment and posted
    # nothing. The other is the first pass's list of submissions no reviewed plan showed.
    assert run_comments(gh, sha, pushed=[{"portraits"}]) == [comment]
    assert len(gh.requests_to("POST", "/comments")) == 2


def test_a_forged_report_by_another_login_does_not_suppress_it(
    user: Replicated, gh: GitHubEmulator
) -> None:
    ours, _theirs = strays(user.emu)
    sha = git(user.repo.root, "rev-parse", "HEAD")
    forged = f'{ORPHAN_MARKER}\n<!-- trainops:orphaned-runs ["{ours}"] -->\nnothing to see'
    gh.add_commit_comment(OWNER, NAME, sha, forged, login="octocat")
    reconcile(user, gh)
    [comment] = orphan_comments(gh, sha)
    assert f"trainops adopt portraits {ours}" in str(comment["body"])


def test_a_push_apply_reports_no_orphans(user: Replicated, gh: GitHubEmulator) -> None:
    strays(user.emu)
    sha = reconcile(user, gh, event="push")
    assert orphan_comments(gh, sha) == []
