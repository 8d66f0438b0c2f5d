"""The project's CI workflow, the workflows `trainops init` writes, and the composite action.

Each file is validated with check-jsonschema's bundled GitHub schemas, then the properties DESIGN
§11 and §13 rely on are asserted: minimal permissions, no secrets on pull requests, applies that
never overlap and are never canceled, apply only from the default branch.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "src/trainops/templates/workflows"
CI = ROOT / ".github/workflows/ci.yml"
ACTION = ROOT / "action.yml"
WORKFLOWS = [CI, TEMPLATES / "plan.yml", TEMPLATES / "apply.yml", TEMPLATES / "reconcile.yml"]
WRITERS = ["apply.yml", "reconcile.yml"]


def load(path: Path) -> dict[str, Any]:
    doc = yaml.safe_load(path.read_text())
    if True in doc:  # YAML 1.1 reads the key `on` as a boolean
        doc["on"] = doc.pop(True)
    return doc


def steps(path: Path, job: str | None = None) -> list[dict[str, Any]]:
    jobs = load(path)["jobs"]
    [only] = jobs.values() if job is None else [jobs[job]]
    return only["steps"]


def action_step(path: Path, job: str | None = None) -> dict[str, Any]:
    [step] = [s for s in steps(path, job) if s.get("uses", "").endswith("/trainops@v1")]
    return step


def check_jsonschema(schema: str, *files: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", schema, *map(str, files)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_workflows_match_githubs_workflow_schema() -> None:
    result = check_jsonschema("vendor.github-workflows", *WORKFLOWS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_action_matches_githubs_action_schema() -> None:
    result = check_jsonschema("vendor.github-actions", ACTION)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_schema_check_rejects_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text("on: push\njobs:\n  x:\n    runs-on: ubuntu-latest\n    steps: nope\n")
    assert check_jsonschema("vendor.github-workflows", broken).returncode != 0


def test_every_workflow_declares_minimal_permissions() -> None:
    expected = {
        "ci.yml": {"contents": "read"},
        "plan.yml": {},  # two jobs: each names its own (zizmor's excessive-permissions)
        "apply.yml": {"contents": "write", "statuses": "write", "pull-requests": "read"},
        "reconcile.yml": {"contents": "write", "statuses": "write", "pull-requests": "read"},
    }
    assert {path.name: load(path)["permissions"] for path in WORKFLOWS} == expected
    for path in WORKFLOWS:
        for job in load(path)["jobs"].values():
            if path.name == "plan.yml":
                continue
            assert "permissions" not in job, f"{path.name}: a job widens the permissions"
    plan = load(TEMPLATES / "plan.yml")["jobs"]
    assert plan["plan"]["permissions"] == {
        "contents": "read",
        "pull-requests": "write",
        "statuses": "write",
    }
    # The plan of a commit on the default branch (workflow_dispatch, DESIGN §20) is a commit
    # comment, which needs contents: write; it runs only on dispatch, and never on a pull request.
    commit = plan["plan-commit"]
    assert commit["permissions"] == {"contents": "write", "statuses": "write"}
    assert commit["if"] == (
        "github.event_name == 'workflow_dispatch' && "
        "github.ref_name == github.event.repository.default_branch"
    )


def test_plan_runs_on_pull_requests_without_secrets() -> None:
    plan = load(TEMPLATES / "plan.yml")

    assert list(plan["on"]) == ["pull_request", "workflow_dispatch"]
    assert "secrets." not in (TEMPLATES / "plan.yml").read_text()
    assert plan["concurrency"] == {
        "group": "trainops-plan-${{ github.event.pull_request.number || github.sha }}",
        "cancel-in-progress": True,
    }
    assert plan["jobs"]["plan"]["if"] == "github.event_name == 'pull_request'"
    for job in ("plan", "plan-commit"):
        assert action_step(TEMPLATES / "plan.yml", job)["with"] == {"command": "plan"}


def test_apply_and_reconcile_share_one_group_never_canceled() -> None:
    groups = [load(TEMPLATES / name)["concurrency"] for name in WRITERS]

    assert groups[0] == groups[1] == {"group": "trainops-apply", "cancel-in-progress": False}
    assert groups[0]["group"] != load(TEMPLATES / "plan.yml")["concurrency"]["group"]


@pytest.mark.parametrize("name", WRITERS)
def test_apply_and_reconcile_apply_with_the_replicate_secret(name: str) -> None:
    step = action_step(TEMPLATES / name)

    assert step["with"] == {"command": "apply"}
    assert step["env"] == {"REPLICATE_API_TOKEN": "${{ secrets.REPLICATE_API_TOKEN }}"}


def test_apply_runs_on_pushes_to_the_default_branch_only() -> None:
    apply = load(TEMPLATES / "apply.yml")
    [job] = apply["jobs"].values()

    assert apply["on"] == {"push": {"branches": ["main"]}}  # `trainops init` creates `main`
    assert job["if"] == "github.ref_name == github.event.repository.default_branch"


def test_reconcile_runs_every_30_minutes_off_the_hour_and_on_demand() -> None:
    reconcile = load(TEMPLATES / "reconcile.yml")
    [job] = reconcile["jobs"].values()

    assert reconcile["on"] == {"schedule": [{"cron": "23,53 * * * *"}], "workflow_dispatch": None}
    assert "github.event.repository.default_branch" in job["if"]


@pytest.mark.parametrize("name", WRITERS)
def test_writers_say_why_local_jobs_are_blocked_on_github_hosted_runners(name: str) -> None:
    from trainops.providers.local import GITHUB_HOSTED

    comments = " ".join(
        line.strip().lstrip("#").strip()
        for line in (TEMPLATES / name).read_text().splitlines()
        if line.strip().startswith("#")
    )
    assert GITHUB_HOSTED in comments


CHECKOUT = "actions/checkout@11d5960a326750d5838078e36cf38b85af677262"  # v4.4.0
SETUP_PYTHON = "actions/setup-python@a26af69be951a213d495a4c3e4e4022e16d87065"  # v5.6.0


@pytest.mark.parametrize(
    ("name", "job"),
    [("plan.yml", "plan"), ("plan.yml", "plan-commit"), *((w, None) for w in WRITERS)],
)
def test_templates_check_out_full_history_before_the_action(name: str, job: str | None) -> None:
    checkout, action = steps(TEMPLATES / name, job)

    # Only the writers keep the token in .git/config: they push the state branch with it.
    pushes = name in WRITERS
    assert checkout == {
        "uses": CHECKOUT,
        "with": {"fetch-depth": 0, "persist-credentials": pushes},
    }
    assert action["uses"] == "trainops/trainops@v1"


def test_ci_runs_the_project_script_on_python_311_then_audits_the_workflows() -> None:
    checkout, python, run, audit = steps(CI)

    assert checkout == {"uses": CHECKOUT, "with": {"persist-credentials": False}}
    assert (python["uses"], python["with"]) == (SETUP_PYTHON, {"python-version": "3.11"})
    assert run == {"run": "bash .ci/run"}
    assert "zizmor --offline .github action.yml src/trainops/templates/workflows" in audit["run"]


def test_every_action_is_pinned_to_a_commit_with_its_version_beside_it() -> None:
    for path in [*WORKFLOWS, ACTION]:
        for line in path.read_text().splitlines():
            if not re.match(r"\s*(?:-\s+)?uses:", line):
                continue
            ref = line.split("uses:", 1)[1].split("#", 1)[0].strip()
            comment = line.split("#", 1)[1].strip() if "#" in line else ""
            if ref == "trainops/trainops@v1":  # our own action: the release's major tag
                assert comment == "zizmor: ignore[unpinned-uses]", f"{path.name}: {line}"
                continue
            assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", ref), f"{path.name}: {line}"
            assert re.fullmatch(r"v\d+\.\d+\.\d+", comment), f"{path.name}: {line}"


def test_zizmor_finds_nothing_in_the_workflows_or_the_action() -> None:
    zizmor = Path(sys.executable).with_name("zizmor")
    files = [".github", "action.yml", *(str(p) for p in sorted(TEMPLATES.glob("*.yml")))]
    result = subprocess.run(
        [str(zizmor), "--offline", "--no-progress", *files],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_zizmor_would_flag_an_unpinned_checkout(tmp_path: Path) -> None:
    bad = tmp_path / ".github/workflows/bad.yml"
    bad.parent.mkdir(parents=True)
    text = CI.read_text().replace(CHECKOUT, "actions/checkout@v4")
    bad.write_text(text.replace("persist-credentials: false", "fetch-depth: 1"))
    zizmor = Path(sys.executable).with_name("zizmor")
    result = subprocess.run(
        [str(zizmor), "--offline", "--no-progress", str(bad)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode != 0 and "unpinned-uses" in result.stdout + result.stderr


def test_action_is_composite_and_installs_from_its_own_path() -> None:
    action = load(ACTION)
    setup, install, run = action["runs"]["steps"]

    assert action["runs"]["using"] == "composite"
    assert set(action["inputs"]) == {"command", "args", "python-version", "github-token"}
    assert setup["with"] == {"python-version": "${{ inputs.python-version }}"}
    assert '"$GITHUB_ACTION_PATH"' in install["run"] and "pip install" in install["run"]
    assert run["env"]["GITHUB_TOKEN"] == "${{ inputs.github-token }}"
    assert "${{" not in run["run"], "inputs must reach the script through env, not its text"


@pytest.mark.parametrize(
    ("command", "args", "code", "argv"),
    [
        ("plan", "", 0, "plan --github"),
        ("apply", "--dir ml *", 0, "apply --github --dir ml *"),
        ("destroy", "", 2, None),
    ],
    ids=["plan", "apply-with-args", "unknown-command"],
)
def test_action_script_runs_trainops_with_github_and_args(
    tmp_path: Path, command: str, args: str, code: int, argv: str | None
) -> None:
    (tmp_path / "bin").mkdir()
    stub = tmp_path / "bin/trainops"
    stub.write_text('#!/bin/sh\necho "$@" > "$ARGV_FILE"\n')
    stub.chmod(0o755)
    [*_, run] = load(ACTION)["runs"]["steps"]
    env = {
        "PATH": f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}",
        "ARGV_FILE": str(tmp_path / "argv"),
        "TRAINOPS_COMMAND": command,
        "TRAINOPS_ARGS": args,
    }

    result = subprocess.run(
        ["bash", "-e", "-c", run["run"]], cwd=tmp_path, env=env, capture_output=True, text=True
    )

    assert result.returncode == code, result.stdout + result.stderr
    written = (tmp_path / "argv").read_text().strip() if (tmp_path / "argv").exists() else None
    assert written == argv
