"""Input that would fail on every apply, or reach a job as something it cannot read, is refused
by `validate` at file:line:col: numbers JSON cannot carry, Hub repo ids and S3 buckets the
services reject, a runs folder outside the repository."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from trainops.workspace import validate_workspace

JOB = {
    "apiVersion": "trainops/v1",
    "kind": "TrainingJob",
    "metadata": {"name": "job"},
    "spec": {"provider": "local", "command": ["python", "train.py"]},
}


def problems(tmp_path: Path, job_text: str, config: str = "") -> list[str]:
    (tmp_path / "jobs").mkdir()
    (tmp_path / "jobs/job.yaml").write_text(job_text)
    if config:
        (tmp_path / "trainops.yaml").write_text(config)
    return [str(p) for p in validate_workspace(tmp_path).problems]


@pytest.mark.parametrize("number", [".nan", ".NaN", ".inf", "-.inf", "+.Inf"])
def test_numbers_json_cannot_carry_are_input_errors(tmp_path: Path, number: str) -> None:
    text = yaml.safe_dump(JOB, sort_keys=False) + f"  input:\n    lr: {number}\n"
    [problem] = problems(tmp_path, text)
    line = text.splitlines().index(f"    lr: {number}") + 1
    assert problem.startswith(f"jobs/job.yaml:{line}:9: {number} is not a number JSON can carry")


def deliver(target: dict[str, object]) -> str:
    job = {**JOB, "spec": {**JOB["spec"], "deliver": [target]}}  # type: ignore[dict-item]
    return yaml.safe_dump(job, sort_keys=False)


@pytest.mark.parametrize(
    "repo",
    [
        "acme/..",
        "acme/a..b",
        "acme/x.git",
        "acme/-x",
        "-acme/x",
        "acme/.x",
        "a--b/x",
        "acme/" + "x" * 97,
        "acme",
        "acme/x/y",
    ],
)
def test_hub_repo_ids_the_hub_refuses(tmp_path: Path, repo: str) -> None:
    [found] = problems(tmp_path, deliver({"huggingface": {"repo": repo}}))
    assert re.match(r"jobs/job.yaml:\d+:\d+: spec.deliver.0.huggingface.repo: ", found), found
    assert "hint: a Hub repo id" in found or "a Hub repo id" in found.splitlines()[0]


def test_a_valid_hub_repo_id_passes(tmp_path: Path) -> None:
    assert problems(tmp_path, deliver({"huggingface": {"repo": "acme/flux_lora-v1.2"}})) == []


@pytest.mark.parametrize(
    "uri", ["s3://1.2.3.4/x", "s3://a..b/x", "s3://xn--bucket/x", "s3://b-s3alias/x", "s3://ab"]
)
def test_s3_uris_need_a_valid_bucket(tmp_path: Path, uri: str) -> None:
    [found] = problems(tmp_path, deliver({"s3": {"uri": uri}}))
    assert re.match(r"jobs/job.yaml:\d+:\d+: spec.deliver.0.s3.uri: ", found), found


@pytest.mark.parametrize("runs_dir", ["/tmp/runs", "../runs", "runs/../../x", "C:/runs"])
def test_runs_dir_stays_inside_the_repository(tmp_path: Path, runs_dir: str) -> None:
    config = yaml.safe_dump({"providers": {"local": {"runs_dir": runs_dir}}})
    [problem] = problems(tmp_path, yaml.safe_dump(JOB), config)
    assert problem.startswith("trainops.yaml:") and "leaves the repository" in problem, problem


def test_a_linked_config_is_an_error_never_read(tmp_path: Path) -> None:
    (tmp_path / "trainops.yaml").symlink_to("/proc/self/environ")
    [problem] = problems(tmp_path, yaml.safe_dump(JOB))
    assert problem.startswith("trainops.yaml: symlink is not followed")


def test_runs_dir_through_a_link_out_of_the_repository(tmp_path: Path) -> None:
    (tmp_path / "out").symlink_to(tmp_path.parent)
    config = yaml.safe_dump({"providers": {"local": {"runs_dir": "out/runs"}}})
    [problem] = problems(tmp_path, yaml.safe_dump(JOB), config)
    assert "runs_dir 'out/runs' leads outside the repository through a symlink" in problem


def test_a_lock_nested_too_deeply_is_an_input_error(tmp_path: Path) -> None:
    """A pull request can write trainops.lock: one nested past the JSON decoder's recursion is
    a problem naming the file, not an internal error."""
    (tmp_path / "trainops.lock").write_text("[" * 100_000 + "]" * 100_000)
    [problem] = problems(tmp_path, yaml.safe_dump(JOB))
    assert problem.startswith("trainops.lock: not valid JSON: nested too deeply"), problem
