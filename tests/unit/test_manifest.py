"""The manifest models: revision identity (DESIGN §3), durations, output references, schemas."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from trainops.manifest import (
    CONTENT_FIELDS,
    REVISION_FIELDS,
    Config,
    HuggingFaceSpec,
    LocalSpec,
    ReplicateSpec,
    SageMakerSpec,
    TrainingJob,
    format_duration,
    json_schemas,
    output_refs,
    parse_duration,
    revision,
)

# Fields that steer a run in place: changing a budget must never restart a paid training.
# A set's template fields (DESIGN §21): never on a member (expanded away in validate), so they
# reach no revision; the members' substituted fields do.
SET_FIELDS = ("matrix", "sweep")
OPERATIONAL_FIELDS = (
    "budget",
    "retries",
    "after",
    "suspend",
    "deliver",
    "promote",
    "estimate",
    "env",
)

REPLICATE: dict[str, Any] = {
    "provider": "replicate",
    "trainer": "acme/trainer:abcdef12",
    "destination": "acme/model",
    "hardware": "gpu-h100",
    "input": {"steps": 1000, "images": "https://example.com/a.zip"},
}
LOCAL: dict[str, Any] = {"provider": "local", "command": ["python", "train.py"], "workdir": "."}


def manifest(spec: dict[str, Any], labels: dict[str, str] | None = None) -> TrainingJob:
    return TrainingJob.model_validate(
        {
            "apiVersion": "trainops/v1",
            "kind": "TrainingJob",
            "metadata": {"name": "job", "labels": labels or {}},
            "spec": spec,
        }
    )


HF = {
    "provider": "huggingface",
    "image": "python:3.12",
    "command": ["python", "train.py"],
    "output_repo": "acme/out",
}
SM = {"provider": "sagemaker", "hardware": "ml.g5.2xlarge", "algorithm": "xgboost"}


def rev(spec: dict[str, Any], trainer: str | None = None) -> str:
    return revision(manifest(spec).spec, trainer)


def test_every_spec_field_is_either_identity_or_operational() -> None:
    # A new spec field must be placed deliberately: does changing it start a new training?
    fields = set(LocalSpec.model_fields) | set(ReplicateSpec.model_fields)
    fields |= set(HuggingFaceSpec.model_fields) | set(SageMakerSpec.model_fields)
    known = set(REVISION_FIELDS) | set(OPERATIONAL_FIELDS) | set(CONTENT_FIELDS)
    assert fields == known | set(SET_FIELDS)
    assert not set(REVISION_FIELDS) & set(OPERATIONAL_FIELDS)
    assert not set(CONTENT_FIELDS) & (set(REVISION_FIELDS) | set(OPERATIONAL_FIELDS))


def test_revision_is_12_hex_and_ignores_labels() -> None:
    job = manifest(REPLICATE, labels={"team": "vision"})
    relabeled = manifest(REPLICATE, labels={"team": "audio", "cost-center": "42"})
    assert revision(job.spec) == revision(relabeled.spec)
    assert len(revision(job.spec)) == 12
    assert int(revision(job.spec), 16) >= 0


@pytest.mark.parametrize(
    ("base", "change"),
    [
        pytest.param(REPLICATE, {"trainer": "acme/trainer:abcdef13"}, id="trainer"),
        pytest.param(REPLICATE, {"destination": "acme/other"}, id="destination"),
        pytest.param(REPLICATE, {"hardware": "gpu-a100-large"}, id="hardware"),
        pytest.param(REPLICATE, {"input": {**REPLICATE["input"], "steps": 1001}}, id="input-value"),
        pytest.param(REPLICATE, {"input": {**REPLICATE["input"], "lr": 1e-4}}, id="input-key"),
        pytest.param(REPLICATE, {"rerun": 1}, id="rerun"),
        pytest.param(LOCAL, {"command": ["python", "train2.py"]}, id="command"),
        pytest.param(LOCAL, {"workdir": "train"}, id="workdir"),
        pytest.param(LOCAL, {**REPLICATE, "workdir": None, "command": None}, id="provider"),
        pytest.param(HF, {"image": "python:3.13"}, id="image"),
        pytest.param(HF, {"output_repo": "acme/other"}, id="output_repo"),
        pytest.param(SM, {"algorithm": "blazingtext"}, id="algorithm"),
        pytest.param(SM, {"instance_count": 2}, id="instance_count"),
    ],
)
def test_each_revision_field_changes_the_revision(
    base: dict[str, Any], change: dict[str, Any]
) -> None:
    changed = {k: v for k, v in {**base, **change}.items() if v is not None}
    assert rev(changed) != rev(base)


def test_the_revision_table_covers_every_revision_field() -> None:
    ids = {"trainer", "destination", "hardware", "input", "rerun", "command", "workdir", "provider"}
    ids |= {"image", "output_repo", "algorithm", "instance_count"}
    assert ids == set(REVISION_FIELDS)


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"budget": {"max_cost_usd": 50, "max_duration": "4h"}}, id="budget"),
        pytest.param({"retries": 3}, id="retries"),
        pytest.param({"after": ["other"]}, id="after"),
        pytest.param({"suspend": True}, id="suspend"),
        pytest.param({"deliver": [{"s3": {"uri": "s3://bucket/x/"}}]}, id="deliver"),
        pytest.param({"estimate": {"duration": "40m"}}, id="estimate"),
    ],
)
def test_operational_fields_do_not_change_the_revision(change: dict[str, Any]) -> None:
    assert rev({**REPLICATE, **change}) == rev(REPLICATE)


@pytest.mark.parametrize(
    ("one", "other"),
    [
        pytest.param(
            {"budget": {"max_duration": "90m"}},
            {"budget": {"max_duration": "1h30m"}},
            id="90m-vs-1h30m",
        ),
        pytest.param(
            {}, {"rerun": 0, "input": {}, "hardware": None, "workdir": None}, id="defaults-explicit"
        ),
        pytest.param(
            {"input": {"a": 1, "b": {"x": 1, "y": 2}}},
            {"input": {"b": {"y": 2, "x": 1}, "a": 1}},
            id="key-order",
        ),
    ],
)
def test_normalized_specs_have_one_revision(one: dict[str, Any], other: dict[str, Any]) -> None:
    bare = {"provider": "local", "command": ["python", "train.py"]}
    first, second = manifest({**bare, **one}), manifest({**bare, **other})
    assert first.spec.model_dump(mode="json") == second.spec.model_dump(mode="json")
    assert revision(first.spec) == revision(second.spec)


def test_trainer_resolution_through_the_lock_is_part_of_the_revision() -> None:
    unpinned = {**REPLICATE, "trainer": "acme/trainer"}
    assert rev(unpinned, "acme/trainer:abcdef12") == rev(REPLICATE)
    assert rev(unpinned, "acme/trainer:abcdef12") != rev(unpinned, "acme/trainer:999999aa")
    assert rev(unpinned, "acme/trainer:abcdef12") != rev(unpinned)


@pytest.mark.parametrize(
    ("text", "seconds", "canonical"),
    [
        ("90m", 5400, "1h30m"),
        ("1h30m", 5400, "1h30m"),
        ("2h", 7200, "2h"),
        ("45s", 45, "45s"),
        ("1h0m5s", 3605, "1h5s"),
        (600, 600, "10m"),
    ],
)
def test_durations(text: str | int, seconds: int, canonical: str) -> None:
    assert (parse_duration(text), format_duration(seconds)) == (seconds, canonical)


@pytest.mark.parametrize("text", ["", "0m", "1d", "h", "1.5h", "1m1h", 0, -3, True, None, 1.5])
def test_bad_durations(text: Any) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


@pytest.mark.parametrize(
    ("value", "refs"),
    [
        pytest.param("${{ jobs.a.output.weights }}", [("a", "weights")], id="plain"),
        pytest.param("${{jobs.a-b.output.version}}", [("a-b", "version")], id="no-spaces"),
        pytest.param(
            {
                "x": ["pre ${{ jobs.a.output.w }} and ${{ jobs.b.output.v }}"],
                "y": {"z": "${{ jobs.c.output.m.bin }}"},
            },
            [("a", "w"), ("b", "v"), ("c", "m.bin")],
            id="nested",
        ),
        pytest.param(
            {"x": "${ jobs.a.output.w }", "y": "{{ jobs.a.output.w }}", "z": 3},
            [],
            id="not-references",
        ),
    ],
)
def test_output_refs(value: Any, refs: list[tuple[str, str]]) -> None:
    assert output_refs(value) == refs


@pytest.mark.parametrize(
    "deliver",
    [
        pytest.param({}, id="none"),
        pytest.param({"huggingface": {"repo": "a/b"}, "s3": {"uri": "s3://bucket/x"}}, id="both"),
    ],
)
def test_deliver_names_exactly_one_target(deliver: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match="exactly one target"):
        manifest({**LOCAL, "deliver": [deliver]})


def test_models_are_frozen() -> None:
    job = manifest(LOCAL)
    with pytest.raises(ValidationError):
        job.spec.retries = 3  # type: ignore[misc]


def test_config_defaults_match_the_design() -> None:
    config = Config()
    assert (
        config.jobs,
        config.state.backend,
        config.state.branch,
        config.policy.prune,
        config.policy.on_change,
        config.providers.replicate.token_env,
    ) == (
        ["jobs/**/*.yaml", "jobs/**/*.yml"],
        "git",
        "trainops/state",
        True,
        "replace",
        "REPLICATE_API_TOKEN",
    )


def test_json_schemas_are_generated_from_the_models() -> None:
    schemas = {name: json.loads(text) for name, text in json_schemas().items()}
    assert sorted(schemas) == ["config.v1.json", "trainingjob.v1.json"]
    job = schemas["trainingjob.v1.json"]
    assert (job["$id"], job["additionalProperties"], sorted(job["required"])) == (
        "https://trainops.dev/schemas/trainingjob.v1.json",
        False,
        ["apiVersion", "kind", "metadata", "spec"],
    )


PIN = "sha256:" + "a" * 64


def test_a_digest_pin_is_a_new_revision_and_no_pin_keeps_the_old_one() -> None:
    pinned = {**REPLICATE, "digests": {"images": PIN}}
    repinned = {**REPLICATE, "digests": {"images": "sha256:" + "b" * 64}}
    assert rev(pinned) != rev(REPLICATE) and rev(repinned) != rev(pinned)
    assert rev({**REPLICATE, "digests": {}}) == rev(REPLICATE)


@pytest.mark.parametrize(
    ("digests", "error"),
    [
        pytest.param({"steps": PIN}, "not a remote URL", id="not-a-url"),
        pytest.param({"missing": PIN}, "not a remote URL", id="no-such-input"),
        pytest.param({"images": "sha256:abc"}, "sha256", id="not-a-digest"),
        pytest.param({"images": "md5:" + "a" * 32}, "sha256", id="other-algorithm"),
    ],
)
def test_a_digest_pin_must_name_a_remote_input_and_a_sha256(
    digests: dict[str, str], error: str
) -> None:
    with pytest.raises(ValidationError, match=error):
        manifest({**REPLICATE, "digests": digests})


def test_equal_budgets_and_estimates_are_one_instance() -> None:
    # Frozen values most manifests repeat: one model for all of them, not one per job (issue 13).
    a = manifest({**LOCAL, "budget": {"max_duration": "10m"}, "estimate": {"duration": "5m"}})
    b = manifest({**LOCAL, "budget": {"max_duration": 600}, "estimate": {"duration": 300}})
    other = manifest({**LOCAL, "budget": {"max_duration": "11m"}})
    assert a.spec.budget is b.spec.budget and a.spec.estimate is b.spec.estimate
    assert other.spec.budget.max_duration == 660 and a.spec.budget.max_duration == 600
    # the same number in another field, or in the other model, is another value
    cost = manifest({**LOCAL, "budget": {"max_cost_usd": 600}, "estimate": {"duration": 600}})
    assert cost.spec.budget.max_cost_usd == 600 and cost.spec.budget.max_duration is None
    assert cost.spec.budget is not a.spec.budget and cost.spec.estimate is not a.spec.budget
