"""`validate` is the gate (issue 32): what it passes must mean what the reviewer read, and what
it cannot read is a located problem (exit 1), never an internal error (exit 3) or silence."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.support.workspace import run_cli
from trainops.manifest import json_schemas
from trainops.workspace import validate_workspace

HEAD = "apiVersion: trainops/v1\nkind: TrainingJob\nmetadata: {name: job}\n"
SPEC = "spec:\n  provider: local\n  command: [python, train.py]\n"


def problems(root: Path, text: str, name: str = "jobs/job.yaml") -> list[str]:
    (root / name).parent.mkdir(parents=True, exist_ok=True)
    (root / name).write_text(text)
    return [str(p) for p in validate_workspace(root).problems]


def cli_validate(root: Path, text: str) -> tuple[int, str]:
    (root / "jobs").mkdir(parents=True, exist_ok=True)
    (root / "jobs/job.yaml").write_text(text)
    result = run_cli(root, "validate")
    return result.returncode, result.stdout + result.stderr


# ---- 1, 2: tags whose value PyYAML cannot construct: exit 1 at the value, not exit 3 --------


@pytest.mark.parametrize(
    "value",
    ["!!map foo", "!!seq foo", "!!bool foo", '!!int ""', '!!float ""', '!!int "-"'],
)
def test_a_tag_its_value_cannot_have_is_a_located_problem(tmp_path: Path, value: str) -> None:
    code, output = cli_validate(tmp_path, HEAD + SPEC + f"  retries: {value}\n")
    assert code == 1, output
    assert "jobs/job.yaml:7:12: " in output and "internal error" not in output


# ---- 3: the loader refuses what PyYAML refuses, and never goes silent -----------------------


@pytest.mark.parametrize(
    ("extra", "where", "says"),
    [
        pytest.param(
            "  command: !!str [a, b]\n", "6:12", "tag !!str stands on a list", id="str-seq"
        ),
        pytest.param(
            "  input: !!int {a: 1}\n", "6:10", "tag !!int stands on a mapping", id="int-map"
        ),
        pytest.param(
            "  input: {a: &x 1, b: &x 2}\n", "6:23", "anchor &x is defined twice", id="anchor"
        ),
        pytest.param("  input: {day: 2024-13-45}\n", "6:16", "not a valid timestamp", id="date"),
        pytest.param("  input: {day: !!timestamp foo}\n", "6:16", "not a valid timestamp", id="ts"),
    ],
)
def test_what_pyyaml_refuses_is_refused_where_it_stands(
    tmp_path: Path, extra: str, where: str, says: str
) -> None:
    text = HEAD + "spec:\n  provider: local\n" + extra
    if "command" not in extra:
        text += "  command: [python, train.py]\n"
    with pytest.raises(Exception):  # noqa: B017 -- PyYAML refuses it too (some as a crash)
        yaml.safe_load(text)
    [problem] = problems(tmp_path, text)
    assert problem.startswith(f"jobs/job.yaml:{where}: ") and says in problem, problem


def test_a_valid_date_stays_text(tmp_path: Path) -> None:
    (tmp_path / "jobs").mkdir()
    (tmp_path / "jobs/job.yaml").write_text(HEAD + SPEC + "  input: {day: 2024-05-17}\n")
    validation = validate_workspace(tmp_path)
    assert validation.problems == []
    assert validation.jobs["job"].spec.input == {"day": "2024-05-17"}


def test_a_non_specific_tag_on_a_merge_key_merges_as_pyyaml_does(tmp_path: Path) -> None:
    text = (
        HEAD + SPEC + "  input:\n    base: &b {lr: 1}\n    run:\n      ! <<: *b\n      steps: 2\n"
    )
    assert yaml.safe_load(text)["spec"]["input"]["run"] == {"lr": 1, "steps": 2}
    (tmp_path / "jobs").mkdir()
    (tmp_path / "jobs/job.yaml").write_text(text)
    validation = validate_workspace(tmp_path)
    assert validation.problems == []
    assert validation.jobs["job"].spec.input["run"] == {"lr": 1, "steps": 2}


@pytest.mark.parametrize("empty", ["--- ~\n", "---\n"])
def test_an_empty_document_is_a_problem_not_silence(tmp_path: Path, empty: str) -> None:
    code, output = cli_validate(tmp_path, HEAD + SPEC + empty)
    assert code == 1, output
    assert "jobs/job.yaml:4:" not in output  # not the first document
    assert "document 2 of this file is empty" in output


def test_a_problem_in_a_later_document_points_into_it(tmp_path: Path) -> None:
    text = HEAD + SPEC + "---\napiVersion: trainops/v1\nkind: TrainingJob\nmetadata: {name: b}\n"
    [problem] = problems(tmp_path, text)
    assert problem.startswith("jobs/job.yaml:8:1: missing required key 'spec'"), problem


def test_a_plain_equals_sign_key_gets_a_hint(tmp_path: Path) -> None:
    [problem] = problems(tmp_path, HEAD + SPEC + "  input: {=: v}\n")
    assert problem.startswith("jobs/job.yaml:7:11: ") and "!!value" in problem
    assert 'hint: quote it to pass the text: "="' in problem


# ---- 4: the models do not coerce: a string is never a bool or a number ----------------------


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        pytest.param('  suspend: "no"\n', 'spec.suspend: "no" is a string; write false', id="no"),
        pytest.param("  suspend: 1\n", "spec.suspend: 1 is an integer; write true", id="one"),
        pytest.param("  retries: true\n", "spec.retries: true is a boolean; write 1", id="retry"),
        pytest.param(
            '  rerun: "1_000"\n', 'spec.rerun: "1_000" is a string; write 1000', id="rerun"
        ),
        pytest.param(
            "  budget: {max_cost_usd: true}\n",
            "spec.budget.max_cost_usd: true is a boolean; write 1",
            id="budget",
        ),
        pytest.param(
            "  command: [python, 1]\n", 'spec.command.1: 1 is an integer; write "1"', id="arg"
        ),
    ],
)
def test_a_value_of_the_wrong_type_is_refused_not_coerced(
    tmp_path: Path, extra: str, says: str
) -> None:
    text = HEAD + "spec:\n  provider: local\n" + extra
    if "command" not in extra:
        text += "  command: [python, train.py]\n"
    [problem] = problems(tmp_path, text)
    assert problem.startswith("jobs/job.yaml:") and says in problem, problem


def test_a_config_value_of_the_wrong_type_is_refused(tmp_path: Path) -> None:
    (tmp_path / "trainops.yaml").write_text('policy:\n  prune: "no"\n')
    [problem] = problems(tmp_path, HEAD + SPEC)
    assert problem.startswith('trainops.yaml:2:3: policy.prune: "no" is a string; write false')


# ---- 5: an integral float is an integer for the models as for the schema ---------------------


def test_an_integral_float_is_the_integer_it_equals(tmp_path: Path) -> None:
    (tmp_path / "jobs").mkdir()
    text = HEAD + SPEC + "  retries: 2.0\n  budget: {max_duration: 600.0}\n"
    (tmp_path / "jobs/job.yaml").write_text(text)
    validation = validate_workspace(tmp_path)
    assert validation.problems == []
    spec = validation.jobs["job"].spec
    assert (spec.retries, spec.budget.max_duration) == (2, 600)
    assert problems(tmp_path / "b", HEAD + SPEC + "  retries: 2.5\n")


@pytest.mark.parametrize(
    ("extra", "valid"),
    [
        pytest.param("  budget: {max_duration: 600.0}\n", True, id="integral-float"),
        pytest.param('  env: [""]\n', False, id="empty-env-name"),
        pytest.param("  workdir: /abs/train\n", False, id="absolute-workdir"),
    ],
)
def test_check_jsonschema_and_validate_agree_on_what_the_schema_passed(
    tmp_path: Path, extra: str, valid: bool
) -> None:
    """Finding 5: `check-jsonschema` with the schema the code generates (`trainops schema`)
    passed these three and `validate` refused them. Now both say the same: 600.0 is 600 in
    both, an empty env name and an absolute workdir are refused by both."""
    (tmp_path / "schema.json").write_text(json_schemas()["trainingjob.v1.json"])
    (tmp_path / "job.yaml").write_text(HEAD + SPEC + extra)
    argv = [sys.executable, "-m", "check_jsonschema", "--schemafile", "schema.json", "job.yaml"]
    checked = subprocess.run(
        argv, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False
    )
    assert checked.returncode in (0, 1), checked.stderr
    found = problems(tmp_path / "repo", HEAD + SPEC + extra)
    assert (checked.returncode == 0, found == []) == (valid, valid), (checked.stdout, found)


# ---- 6: every path from a file is bounded ---------------------------------------------------


@pytest.mark.parametrize("field", ["workdir", "data"])
def test_a_path_too_long_for_the_system_is_a_located_problem(tmp_path: Path, field: str) -> None:
    long = "w" * 300
    extra = f"  workdir: {long}\n" if field == "workdir" else f"  data: {{set: {long}}}\n"
    code, output = cli_validate(tmp_path, HEAD + SPEC + extra)
    assert code == 1, output
    assert "jobs/job.yaml:7:" in output and "a file or folder name is at most 255" in output


def test_a_runs_dir_too_long_for_the_system_is_a_located_problem(tmp_path: Path) -> None:
    (tmp_path / "trainops.yaml").write_text(f"providers:\n  local:\n    runs_dir: {'r' * 300}\n")
    [problem] = problems(tmp_path, HEAD + SPEC)
    assert problem.startswith("trainops.yaml:3:5: ") and "at most 255" in problem
