"""The SageMaker provider's manifest and configuration (issue 31): image or algorithm, the
instance type and count, input as HyperParameters strings (a value that would not read back as
written is refused at validate, at its position), s3:// values as channels, trainops.yaml's
providers.sagemaker (no region, endpoint or credential there), prices per instance type."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from tests.unit.test_validate import found, validate
from trainops import cost
from trainops import hyperparameters as hp
from trainops.manifest import DEFAULT_PRICES, Config, SageMakerSpec


def sagemaker(name: str, extra: str = "") -> str:
    return (
        "apiVersion: trainops/v1\nkind: TrainingJob\n"
        f"metadata: {{name: {name}}}\n"
        "spec:\n  provider: sagemaker\n  hardware: ml.g5.2xlarge\n"
        "  image: 123456789012.dkr.ecr.us-east-1.amazonaws.com/train:1\n" + extra
    )


def spec(**fields: object) -> SageMakerSpec:
    base: dict[str, object] = {"provider": "sagemaker", "hardware": "ml.g5.2xlarge"}
    return SageMakerSpec.model_validate({**base, **fields})


def test_a_job_names_exactly_one_of_image_or_algorithm() -> None:
    assert spec(image="acct.dkr.ecr.us-east-1.amazonaws.com/x:1").algorithm is None
    assert spec(algorithm="xgboost").image is None
    with pytest.raises(ValidationError, match="exactly one of image or algorithm"):
        spec()
    with pytest.raises(ValidationError, match="exactly one of image or algorithm"):
        spec(image="x", algorithm="xgboost")


@pytest.mark.parametrize("hardware", ["gpu-h100", "ml.g5", "ML.G5.2XLARGE", "ml.g5.2xlarge "])
def test_hardware_is_an_instance_type(hardware: str) -> None:
    with pytest.raises(ValidationError):
        spec(image="x", hardware=hardware)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("adam", "adam"),
        (True, "true"),
        (3, "3"),
        (0.001, "0.001"),
        (1e-05, "1e-05"),
        ([1, 2], "[1,2]"),
        ({"b": 1, "a": "x"}, '{"a":"x","b":1}'),
    ],
)
def test_input_values_become_strings_that_read_back(value: object, text: str) -> None:
    assert hp.encode(value) == text
    assert hp.problem("k", value) == ""


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("3", "reads back as 3"),
        ("true", "reads back as true"),
        ({1: "a"}, 'reads back as {"1": "a"}'),
        ("x" * 2501, "at most 2500"),
    ],
)
def test_values_that_do_not_round_trip_are_refused(value: object, why: str) -> None:
    assert why in hp.problem("k", value)


def test_s3_values_are_channels_not_hyperparameters() -> None:
    params, channels = hp.convert({"train": "s3://acme/data/train/", "epochs": 3})
    assert params == {"epochs": "3"}
    assert channels == {"train": "s3://acme/data/train/"}
    assert hp.preview({"train": "s3://acme/d/", "lr": 0.1}) == [
        'hyperparameter lr = "0.1"',
        "channel train <- s3://acme/d/",
    ]


def test_validate_points_at_the_value_that_does_not_round_trip(tmp_path: Path) -> None:
    text = sagemaker("sm", "  input:\n    epochs: 3\n    lr: '0.001'\n")
    result = validate(tmp_path, {"jobs/sm.yaml": text})
    assert [(line, msg.split(":")[0]) for _f, line, _c, msg in found(result)] == [(10, "input.lr")]
    assert "sm" in result.invalid


def test_validate_accepts_a_sagemaker_job(tmp_path: Path) -> None:
    text = sagemaker("sm", "  instance_count: 2\n  input: {epochs: 3, train: 's3://acme/t/'}\n")
    result = validate(tmp_path, {"jobs/sm.yaml": text})
    assert found(result) == [] and "sm" in result.jobs


def test_a_sagemaker_job_output_is_weights_only(tmp_path: Path) -> None:
    files = {
        "jobs/a.yaml": sagemaker("a"),
        "jobs/b.yaml": sagemaker("b", "  input: {m: '${{ jobs.a.output.version }}'}\n"),
    }
    messages = [msg for *_rest, msg in found(validate(tmp_path, files))]
    assert any("has no output 'version'" in m for m in messages), messages


def config(**sm: object) -> Config:
    return Config.model_validate({"providers": {"sagemaker": sm}})


def test_providers_sagemaker() -> None:
    role = "arn:aws:iam::123456789012:role/trainops-sagemaker"
    c = config(role_arn=role, output_uri="s3://acme-models/sm/", spot={"max_wait": "3h"})
    assert c.providers.sagemaker.output_uri == "s3://acme-models/sm"
    assert c.providers.sagemaker.spot is not None and c.providers.sagemaker.spot.max_wait == 10800
    with pytest.raises(ValidationError):
        config(role_arn="AKIAIOSFODNN7EXAMPLE")
    with pytest.raises(ValidationError, match="SageMaker writes its outputs to S3"):
        config(output_uri="/mnt/shared")


@pytest.mark.parametrize("key", ["region", "endpoint_url", "access_key_id", "secret_access_key"])
def test_region_endpoint_and_credentials_never_come_from_the_repository(key: str) -> None:
    with pytest.raises(ValidationError, match="standard AWS environment"):
        config(**{key: "x"})


def test_the_worst_case_counts_every_instance() -> None:
    one = spec(image="x", budget={"max_duration": "1h"})
    four = spec(image="x", instance_count=4, budget={"max_duration": "1h"})
    price = DEFAULT_PRICES["ml.g5.2xlarge"]
    assert cost.estimate(one, DEFAULT_PRICES).worst_usd == pytest.approx(price * 3600)
    assert cost.estimate(four, DEFAULT_PRICES).worst_usd == pytest.approx(price * 3600 * 4)
    overridden = Config.model_validate({"prices_usd_per_second": {"ml.g5.2xlarge": 0.001}})
    assert overridden.prices_usd_per_second["ml.g5.2xlarge"] == 0.001
    assert overridden.prices_usd_per_second["ml.p4d.24xlarge"] > 0  # the others stay priced
