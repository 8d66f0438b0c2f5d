"""Saved plans (DESIGN §20, issue 29 item 1): `plan --out FILE`, `apply FILE`, `show FILE`, as a
user runs them against the Replicate emulator. A saved plan applies exactly its actions, or is
refused with exit 1 and what went stale, one staleness cause per test, with the trainings counted
at the emulator: a refused plan starts and cancels nothing. A hostile file (truncated, edited,
from another repository, an action the current plan does not have) is refused likewise.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.emulators.replicate import (
    CANCEL_PATH,
    CREATE_PATH,
    ReplicateEmulator,
    simulated,
)
from tests.support.workspace import UserRepo, config, explain
from trainops.savedplan.model import saved_plan_schemas

R8_TOKEN = "r8_" + "SavedPlanT0ken" * 3
PROJECT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((PROJECT / "schemas" / "plan.v1.json").read_text())
OUTPUT_SCHEMA = json.loads((PROJECT / "schemas" / "output.v1.json").read_text())
PRICES = {"gpu-h100": 0.0015}


def job(name: str, **input: Any) -> str:
    spec = {
        "provider": "replicate",
        "trainer": "ostris/flux-dev-lora-trainer",
        "destination": f"acme/{name}",
        "hardware": "gpu-h100",
        "budget": {"max_duration": "1h"},
        "retries": 1,
        "input": {"input_images": "https://example.com/portraits.zip", "steps": 1000, **input},
    }
    doc = {"apiVersion": "trainops/v1", "kind": "TrainingJob", "metadata": {"name": name}}
    return yaml.safe_dump({**doc, "spec": spec}, sort_keys=False)


class User:
    def __init__(self, repo: UserRepo, emu: ReplicateEmulator) -> None:
        self.repo, self.emu = repo, emu
        self.plan_file = repo.signals / "plan.json"  # outside the repository: no dirty tree

    def run(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return self.repo.trainops(*args, env={"REPLICATE_API_TOKEN": R8_TOKEN, **env})

    def ok(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        result = self.run(*args, **env)
        assert result.returncode == 0, explain(result)
        return result

    def save(self) -> dict[str, Any]:
        self.ok("plan", "--out", str(self.plan_file))
        doc = json.loads(self.plan_file.read_text())
        jsonschema.Draft202012Validator(SCHEMA).validate(doc)
        return dict(doc)

    def refused(self, *env: str) -> str:
        """`apply FILE` refused as stale (exit 1), nothing started or canceled; its stderr."""
        before = (self.creates(), self.emu.count("POST", CANCEL_PATH))
        result = self.run("apply", str(self.plan_file))
        assert result.returncode == 1, explain(result)
        assert "Traceback" not in result.stderr
        assert (self.creates(), self.emu.count("POST", CANCEL_PATH)) == before
        return result.stderr

    def creates(self) -> int:
        return self.emu.count("POST", CREATE_PATH)

    def remote_raced(self) -> bool:
        assert self.repo.remote is not None
        return (self.repo.remote / "raced").exists()

    def set_prices(self, prices: dict[str, float]) -> None:
        self.repo.write("trainops.yaml", config(prices_usd_per_second=prices))
        self.repo.commit("prices")


@pytest.fixture
def emu() -> Iterator[ReplicateEmulator]:
    with simulated(R8_TOKEN) as emulator:
        yield emulator


@pytest.fixture
def user(tmp_path: Path, emu: ReplicateEmulator) -> Iterator[User]:
    repo = UserRepo.create(
        tmp_path,
        {"a": job("a"), "b": job("b", trigger_word="B")},
        cfg=config(prices_usd_per_second=PRICES),
    )
    repo.env["REPLICATE_BASE_URL"] = emu.base_url
    made = User(repo, emu)
    made.ok("lock")
    repo.commit("trainops lock")
    yield made
    repo.cleanup()


def test_a_saved_plan_is_applied_exactly_and_shown_as_plan_showed_it(user: User) -> None:
    doc = user.save()
    assert [(a["op"], a["job"], a["attempt"], a["worst_case_usd"]) for a in doc["actions"]] == [
        ("submit", "a", 1, pytest.approx(5.4)),  # 1h at $0.0015/s
        ("submit", "b", 1, pytest.approx(5.4)),
    ]
    assert (
        doc["commit"]
        == subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=user.repo.root, capture_output=True, text=True
        ).stdout.strip()
    )
    assert R8_TOKEN not in user.plan_file.read_text()

    shown = user.ok("show", str(user.plan_file)).stdout
    assert "submit (attempt 1, timeout" not in shown  # Replicate sends no timeout
    assert shown.count("submit (attempt 1)") == 2 and "Plan: 2 to submit." in shown
    as_json = json.loads(user.ok("show", str(user.plan_file), "-o", "json").stdout)
    jsonschema.Draft202012Validator(OUTPUT_SCHEMA).validate(as_json)
    assert as_json == doc["report"]
    assert "**Plan: 2 to submit.**" in user.ok("show", str(user.plan_file), "-o", "markdown").stdout

    applied = user.ok("apply", str(user.plan_file), "-o", "json").stdout
    assert [(a["op"], a["job"], a["outcome"]["ok"]) for a in json.loads(applied)["actions"]] == [
        ("submit", "a", True),
        ("submit", "b", True),
    ]
    assert user.creates() == 2
    # Applied once: the state it was made from has moved, so the same file never runs twice.
    assert "state moved: job a now has run " in user.refused()


def test_the_committed_plan_schema_is_the_generated_one() -> None:
    assert (PROJECT / "schemas" / "plan.v1.json").read_text() == saved_plan_schemas()[
        "plan.v1.json"
    ]


def test_a_new_commit_makes_the_plan_stale(user: User) -> None:
    doc = user.save()
    user.repo.write_job("a", job("a", steps=1200))
    user.repo.commit("more steps")
    err = user.refused()
    assert f"commit moved: the plan is of {doc['commit'][:12]}" in err
    old = doc["actions"][0]["revision"]
    assert f"not in the current plan: submit a revision {old} attempt 1 (it has submit a" in err
    assert "nothing was submitted or canceled" in err and user.creates() == 0


def test_state_that_moved_makes_the_plan_stale(user: User) -> None:
    user.save()
    user.ok("apply")  # another apply got there first
    assert user.creates() == 2
    err = user.refused()
    assert "state moved: trainops/state is at " in err
    assert "state moved: job a now has run " in err and "the plan saw no run" in err
    assert "not in the current plan: submit a revision" in err


def test_a_changed_lock_makes_the_plan_stale(user: User) -> None:
    user.save()
    lock = user.repo.root / "trainops.lock"
    lock.write_text(lock.read_text() + "\n")
    user.repo.commit("touch the lock")
    assert "trainops.lock changed: " in user.refused()


def test_a_changed_price_makes_the_plan_stale(user: User) -> None:
    user.save()
    user.set_prices({"gpu-h100": 0.002})
    err = user.refused()
    assert "price of gpu-h100 changed: $0.0015/s -> $0.0020/s" in err
    assert "worst case of submit a revision" in err and "changed: $5.40 -> $7.20" in err


def test_a_run_that_failed_since_the_plan_changes_an_actions_attempt(user: User) -> None:
    user.repo.write_job("a", job("a", trigger_word="__fail__"))
    user.repo.commit("a fails")
    user.ok("apply")
    user.save()  # nothing to do while a trains
    user.emu.advance(200)  # a failed: the rules now retry it, attempt 2
    err = user.refused()
    assert "not in the saved plan: submit a revision " in err and "attempt 2" in err
    assert "since the plan: job a run " in err and "is now Failed (the plan saw " in err


# ---- hostile files ------------------------------------------------------------------------------


def resign(doc: dict[str, Any]) -> str:
    """A hand-edited plan with its digest recomputed, as an attacker who read the source would."""
    from trainops.savedplan.digest import sign

    return sign(json.dumps(doc, indent=2))


def test_hostile_plan_files_are_refused_with_where_and_why(user: User) -> None:
    # Each kind of bad file, located: tests/unit/test_savedplan.py; here, as the CLI says it.
    user.save()
    text = user.plan_file.read_text()
    cases = {
        "truncated": (text[: len(text) // 2], "not a plan file: "),
        "edited": (text.replace('"attempt": 1', '"attempt": 2', 1), "digest does not match"),
    }
    for name, (bad, what) in cases.items():
        user.plan_file.write_text(bad)
        result = user.run("apply", str(user.plan_file))
        assert (result.returncode, "Traceback" in result.stderr) == (1, False), name
        where = result.stderr.split("plan.json:", 1)[1].split(":")[:2]
        assert all(n.isdigit() for n in where) and what in result.stderr, (name, result.stderr)
    user.plan_file.unlink()
    result = user.run("show", str(user.plan_file))
    assert (result.returncode, "error: cannot read the plan file" in result.stderr) == (2, True)
    assert user.creates() == 0


def test_a_plan_file_only_narrows_what_apply_would_do(user: User) -> None:
    doc = user.save()
    extra = {**doc["actions"][0], "job": "c"}
    user.plan_file.write_text(resign({**doc, "actions": [*doc["actions"], extra]}))
    assert "not in the current plan: submit c revision" in user.refused()
    user.plan_file.write_text(resign({**doc, "actions": doc["actions"][:1]}))
    assert "not in the saved plan: submit b revision" in user.refused()
    user.plan_file.write_text(resign({**doc, "repository": "github.com/someone/else"}))
    assert "the plan is of another repository: github.com/someone/else" in user.refused()
    assert user.creates() == 0


# Another reconciler's state commit lands on the remote between this apply's read and its push
# (once): the remote's pre-receive hook writes it, then refuses the push, as a lost race does.
RACE_HOOK = """#!/bin/sh
[ -e "$GIT_DIR/raced" ] && exit 0
touch "$GIT_DIR/raced"
unset GIT_QUARANTINE_PATH GIT_OBJECT_DIRECTORY GIT_ALTERNATE_OBJECT_DIRECTORIES
ref=refs/heads/trainops/state
tip=$(git rev-parse -q --verify $ref)
tree=$(git hash-object -t tree -w /dev/null)
new=$(echo "trainops: another reconciler" | git commit-tree $tree ${tip:+-p $tip})
git update-ref $ref $new $tip
exit 1
"""


def test_the_state_version_check_is_the_compare_and_swap(user: User) -> None:
    assert user.repo.remote is not None
    hook = user.repo.remote / "hooks" / "pre-receive"
    user.save()
    hook.write_text(RACE_HOOK)
    hook.chmod(0o755)
    # The plan's state version still holds when the pass reads it; the intents' swap loses.
    err = user.refused()
    assert "state moved while applying: another reconciler wrote trainops/state first" in err
    assert (user.remote_raced(), user.creates()) == (True, 0)
    # A plain apply in the same race re-reads and plans again: the hook does race it.
    (user.repo.remote / "raced").unlink()
    user.ok("apply")
    assert (user.remote_raced(), user.creates()) == (True, 2)
