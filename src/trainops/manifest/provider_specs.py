"""One `spec` per provider (DESIGN §2, §10), told apart by `spec.provider`: local, Replicate,
Hugging Face Jobs, Ray and SageMaker, each a `SpecBase` with the fields its service needs."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, model_validator

from trainops.manifest.fields import HUB_PART, INTEGRAL, hub_repo_id, or_matrix_reference
from trainops.manifest.spec import EnvNames, SpecBase, Workdir


class LocalSpec(SpecBase):
    provider: Literal["local"]
    command: Annotated[list[str], Field(min_length=1)]
    workdir: Workdir | None = None
    env: EnvNames = Field(default_factory=list)


class ReplicateSpec(SpecBase):
    provider: Literal["replicate"]
    trainer: Annotated[str, Field(pattern=r"^[\w.-]+/[\w.-]+(:[0-9a-f]{6,64})?$")]
    destination: Annotated[str, Field(pattern=r"^[\w.-]+/[\w.-]+$")]


HubRepoId = Annotated[
    str,
    Field(pattern=rf"^{HUB_PART}/{HUB_PART}$", max_length=193),
    AfterValidator(hub_repo_id),
]


class HuggingFaceSpec(SpecBase):
    """A Hugging Face Job: `image` (a Docker image, or `hf.co/spaces/owner/name`) runs `command`
    on the flavor `hardware` names; the job pushes its outputs to `output_repo`."""

    provider: Literal["huggingface"]
    image: Annotated[str, Field(min_length=1, max_length=512, pattern=r"^[^\s]+$")]
    command: Annotated[list[str], Field(min_length=1)]
    output_repo: HubRepoId | None = None
    env: EnvNames = Field(default_factory=list)


class RaySpec(SpecBase):
    """A job on a Ray cluster (DESIGN §10): `command` and `workdir` as for `local`; the workdir
    travels as the job's `runtime_env.working_dir`, `hardware` names an entry of the
    `providers.ray.hardware` table in trainops.yaml, and outputs land under
    `providers.ray.output_uri`."""

    provider: Literal["ray"]
    command: Annotated[list[str], Field(min_length=1)]
    workdir: Workdir | None = None
    env: EnvNames = Field(default_factory=list)


# SageMaker's own shapes (botocore data/sagemaker/2017-07-24/service-2.json): `TrainingImage`
# (AlgorithmImage, at most 255), `AlgorithmName` (ArnOrName), `InstanceType` (`ml.<family>.<size>`)
# and `InstanceCount`.
_SM_ALGORITHM = (
    r"^(arn:aws[a-z\-]*:sagemaker:[a-z0-9\-]*:[0-9]{12}:[a-z\-]*/)?"
    r"[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$"
)
SAGEMAKER_INSTANCE = r"^ml\.[a-z0-9-]+\.[a-z0-9]+$"


class SageMakerSpec(SpecBase):
    """A SageMaker training job (DESIGN §10): `image` (a training image URI) or `algorithm` (a
    built-in or subscribed algorithm), on `instance_count` instances of the `hardware` instance
    type. `input` becomes the job's `HyperParameters` (strings: `plan` shows the conversion) and
    every `s3://` value, `spec.data` included, an input channel named by its key."""

    provider: Literal["sagemaker"]
    hardware: Annotated[
        str,
        Field(pattern=SAGEMAKER_INSTANCE, max_length=64, json_schema_extra=or_matrix_reference),
    ]
    image: Annotated[str, Field(min_length=1, max_length=255, pattern=r"^[^\s]+$")] | None = None
    algorithm: Annotated[str, Field(min_length=1, max_length=170, pattern=_SM_ALGORITHM)] | None = (
        None
    )
    instance_count: Annotated[int, Field(ge=1, le=1000), INTEGRAL] = 1

    @model_validator(mode="after")
    def _image_or_algorithm(self) -> Any:
        if (self.image is None) == (self.algorithm is None):
            raise ValueError("a SageMaker job names exactly one of image or algorithm")
        return self


AnySpec = LocalSpec | ReplicateSpec | HuggingFaceSpec | RaySpec | SageMakerSpec
Spec = Annotated[AnySpec, Field(discriminator="provider")]
