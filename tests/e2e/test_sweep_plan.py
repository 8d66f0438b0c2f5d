"""`trainops plan` of a sweep set (DESIGN §21, issue 30) as a user and a pull request see it: a
real git repository, the CLI as a subprocess, the local provider, and (for `plan --github`) the
GitHub emulator, which refuses a comment over GitHub's 65,536 characters as GitHub does.

What these tests pin down: the set is one line with its members under it in the set's order,
each member's worst case and the set's total against `budget.max_cost_usd_total`; members beyond
`max_parallel` wait (Blocked, not refused: exit 0); a total over `max_cost_usd_total` refuses
every new submission of the set (exit 1, nothing submitted); a change of the template is one
field diff under the set; `-o json` is the committed schema's shape; the plan comment stays
readable at 50 members (totals first, members collapsed) and under the limit at 500; growing an
axis submits only the new members and renames none, shrinking it prunes the removed members.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.emulators.github import COMMENT_MAX_CHARS, GitHubEmulator
from tests.support.gitrepo import git
from tests.support.workspace import UserRepo, config, explain
from trainops.manifest import member_name

PROJECT = Path(__file__).resolve().parents[2]
OUTPUT_SCHEMA = json.loads((PROJECT / "schemas" / "output.v1.json").read_text())
OWNER, NAME = "acme", "models"
GH_TOKEN = "ghs_" + "SweepPlanT0ken" * 3
PLAN_MARKER = "<!-- trainops:plan -->"
PRICED = config(prices_usd_per_second={"cpu-x": 0.001})  # 10 minutes: $0.60 a member


def sweep(lrs: list[float], ranks: list[int] | None = None, **spec: Any) -> str:
    """The set `lora` over `lr` x `rank`; `spec` adds or replaces the template's fields."""
    body: dict[str, Any] = {
        "provider": "local",
        "command": ["python", "train.py"],
        "workdir": ".",
        "matrix": {"lr": lrs, "rank": ranks or [8, 16]},
        "input": {"lr": "${{ matrix.lr }}", "rank": "${{ matrix.rank }}"},
    }
    body.update(spec)
    doc = {"apiVersion": "trainops/v1", "kind": "TrainingJob", "metadata": {"name": "lora"}}
    return yaml.safe_dump({**doc, "spec": body}, sort_keys=False)


def names(lrs: list[float], ranks: list[int] | None = None) -> list[str]:
    """The members' names in the set's order (the first axis slowest)."""
    return [member_name("lora", {"lr": lr, "rank": r}) for lr in lrs for r in ranks or [8, 16]]


PRICED_SET = {
    "hardware": "cpu-x",
    "sweep": {"max_parallel": 2, "select": {"metric": "loss", "goal": "minimize"}},
    "budget": {"max_duration": "10m", "max_cost_usd_total": 5},
}


@pytest.fixture
def repo(tmp_path: Path) -> Iterator[UserRepo]:
    made = UserRepo.create(tmp_path, {}, cfg=PRICED)
    yield made
    made.cleanup()


def plan(repo: UserRepo, *args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
    result = repo.trainops("plan", *args)
    assert result.returncode == code, explain(result)
    return result


def plan_json(repo: UserRepo, code: int = 0) -> dict[str, Any]:
    doc = json.loads(plan(repo, "--output", "json", code=code).stdout)
    jsonschema.Draft202012Validator(OUTPUT_SCHEMA).validate(doc)
    return dict(doc)


def table(text: str) -> list[list[str]]:
    """The rows of the plan table (cells split on two spaces or more), header first."""
    rows = []
    for line in text.splitlines():
        if not line.strip():
            break
        indent = "  " if line.startswith("  ") else ""
        rows.append([indent + line.split()[0], *re.split(r"\s{2,}", line.strip())[1:]])
    return rows


def test_plan_shows_the_set_as_one_line_with_its_members_and_their_worst_cases(
    repo: UserRepo,
) -> None:
    repo.write_job("lora", sweep([0.1, 0.2], **PRICED_SET))
    repo.commit("a sweep of four")
    members = names([0.1, 0.2])

    rows = table(plan(repo).stdout)
    assert rows[0][:2] == ["JOB", "ACTION"]
    head, *under = rows[1:]
    assert head[:4] == ["lora", "set of 4: 2 submit", "2 OutOfSync, 2 Blocked", "4 Missing"]
    assert "$2.40 of $5.00" in head and "max_parallel 2" in head[-1]
    assert [r[0] for r in under] == [f"  {m}" for m in members]  # under it, in the set's order
    assert all("$0.60" in r for r in under)
    assert [r[1] for r in under] == ["submit (attempt 1)"] * 2 + ["-"] * 2
    waiting = "max_parallel 2 of the set lora: waiting for a member"
    assert [(r[2], r[-1]) for r in under[2:]] == [("Blocked", waiting)] * 2

    doc = plan_json(repo)
    assert [(a["op"], a["job"]) for a in doc["actions"]] == [("submit", m) for m in members[:2]]
    [one] = doc["sets"]
    assert (one["set"], one["members"]) == ("lora", members)
    assert (one["estimate_usd"], one["max_cost_usd_total"], one["max_parallel"]) == (2.4, 5.0, 2)
    assert (one["sync"], one["refused"]) == ({"OutOfSync": 2, "Blocked": 2}, "")
    jobs = {j["job"]: j for j in doc["jobs"]}
    assert set(jobs) == set(members)
    assert {(j["set"], j["estimate_usd"]) for j in jobs.values()} == {("lora", 0.6)}
    assert [jobs[m]["reason"] for m in members[2:]] == [waiting] * 2
    assert doc["money"]["new_usd"] == 1.2  # what is submitted now: two members


def test_a_total_over_max_cost_usd_total_refuses_every_new_submission(repo: UserRepo) -> None:
    over = {**PRICED_SET, "budget": {"max_duration": "10m", "max_cost_usd_total": 2}}
    repo.write_job("lora", sweep([0.1, 0.2], **over))
    repo.commit("a sweep over its total")
    why = "worst case of the set lora $2.40 (4 members) is over max_cost_usd_total $2.00"

    rows = table(plan(repo, code=1).stdout)
    assert rows[1][:4] == ["lora", "set of 4", "4 Blocked", "4 Missing"]
    assert "$2.40 of $2.00" in rows[1] and rows[1][-1] == why
    assert [(r[1], r[2], r[-1]) for r in rows[2:]] == [("-", "Blocked", why)] * 4
    doc = plan_json(repo, code=1)
    assert doc["actions"] == [] and doc["sets"][0]["refused"] == why
    applied = repo.trainops("apply")
    assert applied.returncode == 1, explain(applied)
    assert applied.stderr.count(f": {why}") == 4
    assert repo.run_ids() == []  # not one member ran: no winner of half a grid


def test_growing_an_axis_submits_only_the_new_members_and_shrinking_prunes(
    repo: UserRepo,
) -> None:
    hold = {"hold": repo.hold_path("all")}
    template = {"input": {"lr": "${{ matrix.lr }}", "rank": "${{ matrix.rank }}", **hold}}
    repo.write_job("lora", sweep([0.1, 0.2], **template))
    repo.commit("a sweep of four")
    repo.apply_ok()
    before = {j["job"]: j["run_id"] for j in plan_json(repo)["jobs"]}
    assert sorted(before) == sorted(names([0.1, 0.2])) and all(before.values())

    repo.write_job("lora", sweep([0.1, 0.2, 0.3], **template))  # a value more
    repo.commit("grow lr")
    doc = plan_json(repo)
    assert [(a["op"], a["job"]) for a in doc["actions"]] == [("submit", m) for m in names([0.3])]
    jobs = {j["job"]: j for j in doc["jobs"]}
    assert {m: (j["sync"], j["run_id"]) for m, j in jobs.items() if m in before} == {
        m: ("Synced", run) for m, run in before.items()
    }
    assert doc["sets"][0]["members"] == names([0.1, 0.2, 0.3])  # nobody renamed

    repo.write_job("lora", sweep([0.2], **template))  # two values fewer
    repo.commit("shrink lr")
    doc = plan_json(repo)
    removed = names([0.1])
    assert sorted((a["op"], a["job"], a["reason"]) for a in doc["actions"]) == sorted(
        ("cancel", m, "removed from git") for m in removed
    )
    kept, *gone = [doc["sets"][0]["members"][:2], *doc["sets"][0]["members"][2:]]
    assert kept == names([0.2]) and sorted(gone) == sorted(removed)  # shown until pruned
    repo.apply_ok()
    health = {j["job"]: j["health"] for j in plan_json(repo)["jobs"]}
    assert health == {
        **dict.fromkeys(removed, "Canceled"),
        **dict.fromkeys(names([0.2]), "Running"),
    }
    repo.release("all")
    repo.wait_all_terminal()


def test_a_change_of_the_template_is_one_field_diff_under_the_set(repo: UserRepo) -> None:
    repo.write_job("lora", sweep([0.1, 0.2]))
    repo.commit("a sweep of four")
    repo.apply_ok("--wait", "--interval", "0.1")
    spec = {"input": {"lr": "${{ matrix.lr }}", "rank": "${{ matrix.rank }}", "steps": 5}}
    repo.write_job("lora", sweep([0.1, 0.2], **spec))
    repo.commit("five steps")
    out = plan(repo).stdout
    diff = out[out.index("Changed spec fields") :]
    assert diff.count("~ input.steps: (unset) -> 5") == 1, diff
    assert "  lora (set, 4 members: " in diff
    assert not any(f"  {m}\n" in diff for m in names([0.1, 0.2]))


# ---- the pull request comment ----------------------------------------------------------------


@pytest.fixture
def emu() -> Iterator[GitHubEmulator]:
    with GitHubEmulator(token=GH_TOKEN) as emulator:
        yield emulator
        assert emulator.errors == []


def plan_on_pull_request(
    repo: UserRepo, emu: GitHubEmulator, tmp: Path, number: int
) -> dict[str, Any]:
    """`trainops plan --github` as Actions runs it on a pull request: its one plan comment."""
    git(repo.root, "checkout", "--quiet", "-B", f"pr-{number}")
    head = repo.commit(f"pull request {number}")
    event = tmp / f"event-{number}.json"
    payload = {
        "action": "synchronize",
        "number": number,
        "pull_request": {
            "number": number,
            "head": {"sha": head, "ref": "f"},
            "base": {"ref": "main"},
        },
    }
    event.write_text(json.dumps(payload))
    env = {
        **emu.env(),
        "GITHUB_ACTIONS": "true",
        "GITHUB_EVENT_NAME": "pull_request",
        "GITHUB_EVENT_PATH": str(event),
        "GITHUB_SHA": "f" * 40,
        "GITHUB_REPOSITORY": f"{OWNER}/{NAME}",
        "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_RUN_ID": str(2000 + number),
        "GITHUB_STEP_SUMMARY": str(tmp / "summary.md"),
        "TRAINOPS_GITHUB_BACKOFF": "0",
        "TRAINOPS_GITHUB_WRITE_INTERVAL": "0",
    }
    result = repo.trainops("plan", "--github", env=env, timeout=180)
    assert result.returncode == 0, explain(result)
    [comment] = emu.issue_comments(OWNER, NAME, number)
    assert comment["body"].startswith(PLAN_MARKER)
    return dict(comment)


def test_the_plan_comment_of_50_members_is_readable(
    repo: UserRepo, emu: GitHubEmulator, tmp_path: Path
) -> None:
    lrs = [round(0.01 * i, 2) for i in range(1, 26)]  # 25 x 2 = 50 members
    repo.write_job("lora", sweep(lrs, **PRICED_SET | {"budget": {"max_duration": "10m"}}))
    body = plan_on_pull_request(repo, emu, tmp_path, 5)["body"]
    assert len(body) < COMMENT_MAX_CHARS
    rows = [ln for ln in body.splitlines() if ln.startswith("| `lora")]
    assert rows[0].startswith("| `lora` (set) | set of 50: 2 submit | 2 OutOfSync, 48 Blocked |")
    section = body[body.index("#### Set `lora`: 50 members") :]
    details = section.index("<details><summary>50 members of lora</summary>")
    # the totals first, then the counts, then the members' table, collapsed
    totals = section.index("**worst case $30.00 · spent $0.00 · max_parallel 2 · 2 to submit**")
    assert totals < section.index("- sync: 2 OutOfSync, 48 Blocked") < details
    assert [r.split(" | ")[0] for r in rows[1:]] == [f"| `{m}`" for m in names(lrs)]
    assert body.index(rows[1]) > body.index("<details>") and "more members" not in body
    assert len(body) < 10_000


def test_the_plan_comment_of_500_members_stays_under_githubs_limit(
    repo: UserRepo, emu: GitHubEmulator, tmp_path: Path
) -> None:
    lrs = [round(0.001 * i, 3) for i in range(1, 251)]  # 250 x 2 = 500 members
    repo.write_job("lora", sweep(lrs, **PRICED_SET | {"budget": {"max_duration": "10m"}}))
    body = plan_on_pull_request(repo, emu, tmp_path, 6)["body"]
    assert len(body) < COMMENT_MAX_CHARS
    shown = [m for m in names(lrs) if f"`{m}`" in body]
    more = re.search(r"\| … \| (\d+) more members: run `trainops plan` to see all", body)
    assert more is not None and len(shown) + int(more.group(1)) == 500
    assert shown == names(lrs)[: len(shown)] and len(shown) > 300
