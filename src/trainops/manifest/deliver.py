"""`spec.deliver` (DESIGN §18): where a succeeded run's outputs are copied, a Hugging Face Hub
repository or an S3 prefix, one target per entry; `DeliverTarget.key` names it in the state."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, ConfigDict, Field

from trainops.manifest.fields import (
    HUB_PART,
    CoreModel,
    exactly_one,
    hub_repo_id,
    or_matrix_reference,
    s3_bucket,
)


class HuggingFaceTarget(CoreModel):
    repo: Annotated[
        str,
        Field(
            pattern=rf"^{HUB_PART}/{HUB_PART}$",
            max_length=193,
            json_schema_extra=or_matrix_reference,
        ),
        AfterValidator(hub_repo_id),
    ]
    private: bool = True


class S3Target(CoreModel):
    uri: Annotated[
        str,
        Field(
            pattern=r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/.*)?$",
            json_schema_extra=or_matrix_reference,
        ),
        AfterValidator(s3_bucket),
    ]


class DeliverTarget(CoreModel):
    model_config = ConfigDict(json_schema_extra=exactly_one("huggingface", "s3"))

    huggingface: HuggingFaceTarget | None = None
    s3: S3Target | None = None

    def model_post_init(self, _context: Any) -> None:
        if (self.huggingface is None) == (self.s3 is None):
            raise ValueError("each deliver entry names exactly one target: huggingface or s3")

    @property
    def key(self) -> str:
        if self.huggingface is not None:
            return f"huggingface:{self.huggingface.repo}"
        assert self.s3 is not None
        return f"s3:{self.s3.uri}"
