"""trainops.lock: offline input checks against a locked schema, the file format, staleness."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trainops.errors import InvalidInput, Problem
from trainops.lockfile import Lock, LockedTrainer, check_input, is_stale, training_input_schema
from trainops.yamlsource import Document, load_text

TRAINERS = json.loads(
    (Path(__file__).parents[1] / "fixtures" / "replicate-trainers.json").read_text()
)
FLUX = TRAINERS["models"][0]["versions"][1]["schemas"]  # TrainingInput + the enums it refers to
SCHEMA = training_input_schema({"components": {"schemas": FLUX}})
assert SCHEMA is not None


def manifest(input_yaml: str) -> Document:
    text = "apiVersion: trainops/v1\nkind: TrainingJob\nmetadata:\n  name: a\nspec:\n" + input_yaml
    docs, problems = load_text(text, "jobs/a.yaml")
    assert problems == []
    return docs[0]


def check(input_yaml: str) -> list[tuple[int, int, str, str]]:
    doc = manifest(input_yaml)
    problems = check_input(doc.data["spec"]["input"], SCHEMA, doc.locate, doc.file)
    assert all(p.file == "jobs/a.yaml" for p in problems)
    return [(p.line, p.col, p.message, p.hint) for p in problems]


def test_a_valid_input_has_no_problems() -> None:
    yaml = "  input:\n    input_images: https://x/y.zip\n    steps: 1000\n    batch_size: 2\n"
    assert check(yaml) == []


def test_unknown_key_with_did_you_mean_at_its_line() -> None:
    yaml = "  input:\n    input_images: https://x/y.zip\n    stpes: 1000\n"
    assert check(yaml) == [(8, 5, "unknown input 'stpes'", "did you mean 'steps'?")]


def test_unknown_key_without_a_close_match_lists_known_inputs() -> None:
    [(_, _, message, hint)] = check("  input:\n    input_images: u\n    zzz: 1\n")
    assert message == "unknown input 'zzz'"
    assert hint.startswith("known inputs: autocaption, autocaption_prefix,")


@pytest.mark.parametrize(
    ("line", "message", "hint"),
    [
        ("steps: lots", "input 'steps' must be an integer, not a string", 'got "lots"'),
        ("autocaption: 1", "input 'autocaption' must be true or false, not an integer", "got 1"),
        ("steps: 2", "input 'steps' is 2, below the minimum 3", "allowed: 3 to 6000"),
        ("steps: 6001", "input 'steps' is 6001, above the maximum 6000", "allowed: 3 to 6000"),
        ("batch_size: 8", "input 'batch_size' must be one of: 1, 2, 3, 4", "got 8"),
        (
            "learning_rate: 1e-4",
            "input 'learning_rate' must be a number, not a string",
            'got "1e-4"; write it as a plain number, such as 0.0001',
        ),
        ("learning_rate: 0.0001", "", ""),
    ],
    ids=[
        "wrong-type",
        "bool-not-int",
        "below-min",
        "above-max",
        "enum-through-ref",
        "yaml-1e-4-is-text",
        "float-ok",
    ],
)
def test_types_and_ranges_are_reported_at_the_value_key(line, message, hint) -> None:
    found = check(f"  input:\n    input_images: https://x/y.zip\n    {line}\n")
    assert found == ([(8, 5, message, hint)] if message else [])


def test_missing_required_input_is_reported_at_the_input_mapping() -> None:
    assert check("  input:\n    steps: 10\n") == [
        (
            6,
            3,
            "missing required input 'input_images'",
            "A zip file containing the images that will be used for training.",
        )
    ]


def test_output_references_are_checked_at_submit_time() -> None:
    yaml = "  input:\n    input_images: u\n    steps: '${{ jobs.base.output.steps }}'\n"
    assert check(yaml) == []


def test_job_and_trainer_name_the_problem() -> None:
    doc = manifest("  input:\n    stepz: 1\n    input_images: u\n")
    [problem] = check_input(
        doc.data["spec"]["input"],
        SCHEMA,
        doc.locate,
        doc.file,
        job="a",
        trainer="ostris/flux-dev-lora-trainer",
    )
    assert problem == Problem(
        "jobs/a.yaml",
        7,
        5,
        "unknown input 'stepz' of ostris/flux-dev-lora-trainer",
        "did you mean 'steps'?",
    )
    assert problem.job == "a"


def test_training_input_schema_inlines_refs_and_reads_nullable() -> None:
    openapi = {
        "components": {
            "schemas": {
                "Input": {
                    "type": "object",
                    "properties": {
                        "mode": {"allOf": [{"$ref": "#/components/schemas/mode"}]},
                        "seed": {"type": "integer", "nullable": True},
                    },
                },
                "mode": {"enum": ["a", "b"], "type": "string"},
            }
        }
    }
    schema = training_input_schema(openapi)  # a legacy trainer: `Input`, no TrainingInput
    assert schema == {
        "type": "object",
        "properties": {
            "mode": {"allOf": [{"enum": ["a", "b"], "type": "string"}]},
            "seed": {"type": ["integer", "null"]},
        },
    }
    assert check_input({"seed": None, "mode": "c"}, schema, lambda p: (1, 1), "f")[0].message == (
        'input \'mode\' must be one of: "a", "b"'
    )
    assert training_input_schema({"components": {"schemas": {}}}) is None


LOCK = Lock(
    {
        "ostris/flux-dev-lora-trainer": LockedTrainer("26dce37a" + "0" * 56, SCHEMA),
        "acme/other:5c7d5dc6": LockedTrainer("5c7d5dc6" + "1" * 56, {"type": "object"}),
    }
)


def test_lock_round_trips_through_a_file(tmp_path) -> None:
    path = tmp_path / "trainops.lock"
    LOCK.dump(path)
    assert Lock.load(path) == LOCK
    text = path.read_text()
    assert text == LOCK.dumps() and text.endswith("\n")
    assert list(json.loads(text)["trainers"]) == [
        "acme/other:5c7d5dc6",
        "ostris/flux-dev-lora-trainer",
    ]
    assert json.loads(text)["lockVersion"] == 1


@pytest.mark.parametrize(
    ("text", "where", "message"),
    [
        (
            '{"lockVersion": 1,\n "trainers": {,}}',
            (2, 15),
            "not valid JSON: Expecting property name enclosed in double quotes",
        ),
        (
            '{"lockVersion": 2, "trainers": {}}',
            (0, 0),
            "not a trainops lock: at lockVersion: 1 was expected",
        ),
        (
            '{"lockVersion": 1, "trainers": {"a/b": {"version": "XYZ", "schema": {}}}}',
            (0, 0),
            "not a trainops lock: at trainers.a/b.version: 'XYZ' does not match '^[0-9a-f]{6,64}$'",
        ),
    ],
    ids=["bad-json", "other-format-version", "bad-version-id"],
)
def test_a_broken_lock_is_invalid_input_with_a_location(text, where, message) -> None:
    with pytest.raises(InvalidInput) as err:
        Lock.loads(text)
    [problem] = err.value.problems
    assert ((problem.line, problem.col), problem.message) == (where, message)
    assert problem.file == "trainops.lock" and "trainops lock" in problem.hint


def test_entries_are_found_by_reference_or_version_prefix() -> None:
    assert (
        LOCK.resolve("ostris/flux-dev-lora-trainer")
        == "ostris/flux-dev-lora-trainer:26dce37a" + "0" * 56
    )
    assert LOCK.key_for("ostris/flux-dev-lora-trainer:26dce3") == "ostris/flux-dev-lora-trainer"
    assert LOCK.key_for("ostris/flux-dev-lora-trainer:ffffff") is None
    assert LOCK.entry("acme/other:5c7d5dc6") is not None and LOCK.entry("acme/other") is None


@pytest.mark.parametrize(
    ("trainers", "reasons"),
    [
        (["ostris/flux-dev-lora-trainer", "acme/other:5c7d5dc6"], []),
        (["ostris/flux-dev-lora-trainer:26dce37a", "acme/other:5c7d5dc6"], []),
        (
            ["ostris/flux-dev-lora-trainer", "acme/other:5c7d5dc6", "acme/new"],
            ["acme/new is not in the lock"],
        ),
        (
            ["acme/other:5c7d5dc6"],
            ["ostris/flux-dev-lora-trainer is locked but no manifest uses it"],
        ),
    ],
    ids=["fresh", "prefix-pinned", "new-trainer", "unused-entry"],
)
def test_offline_staleness(trainers, reasons) -> None:
    assert is_stale(LOCK, trainers) == reasons
