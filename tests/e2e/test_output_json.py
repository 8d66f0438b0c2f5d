"""The one JSON shape of `plan`, `apply` and `status` (`--output json`), checked on real command
output against the committed `schemas/output.v1.json` (generated from `trainops.output`)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from tests.support.workspace import UserRepo, explain, manifest
from trainops.output import output_schemas

PROJECT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((PROJECT / "schemas" / "output.v1.json").read_text())
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


@pytest.fixture
def repo(tmp_path: Path) -> Iterator[UserRepo]:
    made = UserRepo.create(
        tmp_path, {"a": manifest("a"), "paused": manifest("paused", suspend=True)}
    )
    yield made
    made.cleanup()


def run_json(repo: UserRepo, *args: str) -> dict[str, Any]:
    result = repo.trainops(*args, "--output", "json")
    assert result.returncode == 0, explain(result)
    doc = json.loads(result.stdout)
    jsonschema.Draft202012Validator(SCHEMA).validate(doc)
    return dict(doc)


def test_the_committed_output_schema_is_the_generated_one() -> None:
    assert (PROJECT / "schemas" / "output.v1.json").read_text() == output_schemas()[
        "output.v1.json"
    ]


def test_plan_apply_and_status_print_one_shape(repo: UserRepo) -> None:
    plan = run_json(repo, "plan")
    assert plan["command"] == "plan"
    assert [(a["op"], a["job"], a["attempt"], a["outcome"]) for a in plan["actions"]] == [
        ("submit", "a", 1, None)
    ]

    applied = run_json(repo, "apply", "--wait", "--interval", "0.1")
    # every action with its outcome, not only the failures
    assert [(a["op"], a["job"], a["outcome"]["ok"]) for a in applied["actions"]] == [
        ("submit", "a", True)
    ]

    status = run_json(repo, "status")
    assert set(plan) == set(applied) == set(status)
    jobs = {j["job"]: j for j in status["jobs"]}
    a, paused = jobs["a"], jobs["paused"]
    assert (a["health"], paused["health"]) == ("Succeeded", "Suspended")
    assert ISO.match(a["created_at"]) and ISO.match(a["completed_at"])
    assert isinstance(a["age_seconds"], int) and a["age_seconds"] >= 0
    assert isinstance(a["cost_usd"], float) and isinstance(status["money"]["spent_usd"], float)
    assert (paused["run_id"], paused["created_at"], paused["age_seconds"]) == (None, None, None)
