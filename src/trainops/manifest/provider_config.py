"""`providers:` in `trainops.yaml` (DESIGN §4, §13): per-provider settings a repository may set
(Replicate's token variable, the local runs folder, the Hub namespace, Ray's hardware table and
output URI, SageMaker's role, output, VPC and spot). Endpoints and credentials never come from
here, only from the environment: each model refuses the keys that would redirect them."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, Field, model_validator

from trainops.manifest.fields import (
    HUB_PART,
    INTEGRAL,
    PATH_MAX,
    SCHEMA_INSIDE,
    CoreModel,
    Duration,
    inside,
)

# Credentials trainops or its CI hold for other services: `token_env` may never name one, or a
# pull request could make trainops send the GitHub token to Replicate as a bearer token.
_OTHER_CREDENTIALS = ("GITHUB_", "GH_", "HF_", "HUGGING_FACE_", "AWS_", "ACTIONS_", "RUNNER_")


def _replicate_token_env(name: str) -> str:
    if not re.fullmatch(r"[A-Z][A-Z0-9_]*", name) or "REPLICATE" not in name:
        raise ValueError(
            f"token_env {name!r} must name a Replicate token variable: upper-case letters, "
            "digits and '_', containing REPLICATE (like REPLICATE_API_TOKEN)"
        )
    if name.startswith(_OTHER_CREDENTIALS):
        raise ValueError(f"token_env {name!r} names another service's credential")
    return name


class ReplicateConfig(CoreModel):
    """The endpoint is never configured here: `REPLICATE_BASE_URL` in the environment (§13)."""

    token_env: Annotated[
        str,
        AfterValidator(_replicate_token_env),
        Field(
            json_schema_extra={
                "pattern": "^(?!"
                + "|".join(_OTHER_CREDENTIALS)
                + r")(?=.*REPLICATE)[A-Z][A-Z0-9_]*$"
            }
        ),
    ] = "REPLICATE_API_TOKEN"

    @model_validator(mode="before")
    @classmethod
    def _no_base_url(cls, data: Any) -> Any:
        if isinstance(data, dict) and "base_url" in data:
            raise ValueError(
                "base_url is not read from trainops.yaml (a pull request could point the token "
                "at its own host): set REPLICATE_BASE_URL in the environment instead"
            )
        return data


_RUNS_RULE = "runs_dir is a folder relative to its root, without '..'"


class LocalConfig(CoreModel):
    runs_dir: Annotated[
        str,
        Field(max_length=PATH_MAX, json_schema_extra={"pattern": SCHEMA_INSIDE}),
        AfterValidator(lambda path: inside(_RUNS_RULE, path)),
    ] = ".trainops/runs"


HF_DEFAULT_TIMEOUT = 24 * 3600  # providers.huggingface.default_timeout when unset


class HuggingFaceConfig(CoreModel):
    """The endpoint and token are never configured here: `HF_ENDPOINT` and `HF_TOKEN` in the
    environment (§13). `namespace` is the user or organization the jobs run under."""

    namespace: Annotated[str, Field(pattern=rf"^{HUB_PART}$")] | None = None
    # The service stops a job it was sent no timeout for after 30 minutes (huggingface_hub
    # docs/source/en/guides/jobs.md), so trainops always sends one: this, unless the manifest
    # sets budget.max_duration.
    default_timeout: Duration = Field(
        default=HF_DEFAULT_TIMEOUT,
        description="How long a Hugging Face job may run when its manifest sets no "
        "budget.max_duration (the service's own default, sent nothing, is 30 minutes). "
        "Also its duration in worst-case cost estimates.",
    )


class RayHardware(CoreModel):
    """What one `hardware` name reserves for a Ray job's entrypoint, and what an hour of it
    costs (on-prem GPUs cost money too)."""

    num_cpus: Annotated[float, Field(ge=0)] | None = None
    num_gpus: Annotated[float, Field(ge=0)] | None = None
    memory: Annotated[int, Field(ge=0, description="bytes"), INTEGRAL] | None = None
    resources: dict[
        Annotated[str, Field(min_length=1, max_length=128)], Annotated[float, Field(gt=0)]
    ] = Field(default_factory=dict, description="custom Ray resources, by name")
    price_per_hour: Annotated[float, Field(ge=0, description="USD")] | None = None


def _output_uri(uri: str) -> str:
    if uri.startswith("s3://"):
        bucket, _, _prefix = uri.removeprefix("s3://").partition("/")
        if not re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", bucket):
            raise ValueError(f"{uri!r}: not an S3 bucket name")
        return uri.rstrip("/")
    if "://" in uri or not uri.startswith("/"):
        raise ValueError(
            f"{uri!r} is neither an s3:// URI nor an absolute path every node of the cluster shares"
        )
    if ".." in uri.split("/"):
        raise ValueError(f"{uri!r}: no '..' in the output path")
    return uri.rstrip("/") or "/"


class RayConfig(CoreModel):
    """The cluster is never configured here: `RAY_ADDRESS` in the environment (§13)."""

    output_uri: (
        Annotated[
            str,
            AfterValidator(_output_uri),
            Field(
                # _output_uri as the schema's pattern: an S3 URI, or an absolute path without ..
                json_schema_extra={
                    "pattern": r"^(?:s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](?:/.*)?"
                    r"|(?!.*://)/(?!(?:.*/)?\.\.(?:/|$)).*)$"
                },
                description="Where Ray runs write their outputs: s3://bucket/prefix (boto3; "
                "credentials from the cluster's or the job's environment) or an absolute path "
                "every node of the cluster and this machine share. Each run writes under "
                "<output_uri>/<run-id>/outputs/.",
            ),
        ]
        | None
    ) = None
    hardware: dict[
        Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")], RayHardware
    ] = Field(
        default_factory=dict,
        description="spec.hardware names -> entrypoint resources and price (e.g. "
        "gpu-a100: {num_gpus: 1, price_per_hour: 2.5})",
    )

    @model_validator(mode="before")
    @classmethod
    def _no_address(cls, data: Any) -> Any:
        if isinstance(data, dict) and "address" in data:
            raise ValueError(
                "address is not read from trainops.yaml (a pull request could point jobs at "
                "its own cluster): set RAY_ADDRESS in the environment instead"
            )
        return data


SAGEMAKER_DEFAULT_TIMEOUT = 24 * 3600  # StoppingCondition.MaxRuntimeInSeconds's own default
_ROLE_ARN = r"^arn:aws[a-z\-]*:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-/]+$"  # botocore's RoleArn


def _s3_output_uri(uri: str) -> str:
    if not uri.startswith("s3://"):
        raise ValueError(f"{uri!r}: SageMaker writes its outputs to S3: an s3://bucket/prefix URI")
    return _output_uri(uri)


class SageMakerVpc(CoreModel):
    """`VpcConfig` of every training job: the subnets and security groups its instances use."""

    subnets: Annotated[
        list[Annotated[str, Field(pattern=r"^subnet-[0-9a-z]+$")]],
        Field(min_length=1, max_length=16),
    ]
    security_group_ids: Annotated[
        list[Annotated[str, Field(pattern=r"^sg-[0-9a-z]+$")]], Field(min_length=1, max_length=5)
    ]


class SageMakerSpot(CoreModel):
    """Managed spot training: `EnableManagedSpotTraining`, waiting at most `max_wait` in all."""

    max_wait: Duration = Field(
        description="MaxWaitTimeInSeconds: run time plus waiting for spot capacity; at least "
        "the job's max_duration"
    )


class SageMakerConfig(CoreModel):
    """Region and credentials are never configured here: the standard AWS environment (boto3's
    own chain: `AWS_REGION`, `AWS_PROFILE`, web identity, ...). `role_arn` is a role's name, not a
    credential: the role SageMaker assumes to run the jobs."""

    role_arn: Annotated[str, Field(pattern=_ROLE_ARN, max_length=2048)] | None = None
    output_uri: Annotated[str, AfterValidator(_s3_output_uri)] | None = None
    volume_gb: Annotated[int, Field(ge=1, le=16384), INTEGRAL] = 30
    default_timeout: Duration = Field(default=SAGEMAKER_DEFAULT_TIMEOUT)
    vpc: SageMakerVpc | None = None
    spot: SageMakerSpot | None = None

    @model_validator(mode="before")
    @classmethod
    def _no_endpoint(cls, data: Any) -> Any:
        for key in ("region", "endpoint", "endpoint_url", "access_key_id", "secret_access_key"):
            if isinstance(data, dict) and key in data:
                raise ValueError(
                    f"{key} is not read from trainops.yaml (a pull request could redirect the "
                    "AWS credentials): it comes from the standard AWS environment (AWS_REGION, "
                    "AWS_PROFILE, AWS_ENDPOINT_URL_SAGEMAKER, ...)"
                )
        return data


class ProvidersConfig(CoreModel):
    replicate: ReplicateConfig = Field(default_factory=ReplicateConfig)
    huggingface: HuggingFaceConfig = Field(default_factory=HuggingFaceConfig)
    local: LocalConfig = Field(default_factory=LocalConfig)
    ray: RayConfig = Field(default_factory=RayConfig)
    sagemaker: SageMakerConfig = Field(default_factory=SageMakerConfig)
