"""`spec.promote` (DESIGN §19): the conditions on a run's metrics (`when`) and the aliases it
moves when they hold (`to`: a Hub branch or tag, an S3 prefix, a Replicate deployment)."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    model_validator,
)

from trainops.manifest.fields import HUB_PART, CoreModel, exactly_one, hub_repo_id, s3_bucket

# The comparison operators a condition may use: a closed set, longest first (`<=` before `<`).
OPERATORS = ("<=", ">=", "==", "!=", "<", ">")
_CONDITION = re.compile(r"^\s*(<=|>=|==|!=|<|>)\s*(\S+)\s*$")
METRIC_NAME = r"^[A-Za-z_][A-Za-z0-9_.\-/]{0,63}$"  # what a run can record (trainops.metrics)
_BRANCH = r"^[A-Za-z0-9_][A-Za-z0-9._/-]{0,99}$"


def _ref_name(ref: str) -> str:
    # git's ref name rules beyond the pattern's charset (git check-ref-format)
    if ".." in ref or "//" in ref or ref.endswith(("/", ".", ".lock")):
        raise ValueError(f"{ref!r} is not a valid git ref name (no '..', '//', trailing / or .)")
    return ref


def parse_condition(text: Any) -> tuple[str, float]:
    """`"< 0.25"` -> ("<", 0.25). The operator is one of `OPERATORS`, the threshold a finite
    number; anything else is a `ValueError` saying which."""
    import math

    if not isinstance(text, str):
        raise ValueError(
            f'a condition is text like "< 0.25" (an operator and a number), not {text!r}'
        )
    match = _CONDITION.match(text)
    if not match:
        raise ValueError(
            f"{text!r} is not a condition: an operator ({', '.join(OPERATORS)}) and a number"
        )
    op, number = match.groups()
    try:
        threshold = float(number)
    except ValueError:
        raise ValueError(f"{text!r}: the threshold {number!r} is not a number") from None
    if not math.isfinite(threshold):
        raise ValueError(f"{text!r}: the threshold must be a finite number")
    return op, threshold


def _condition(text: str) -> str:
    op, threshold = parse_condition(text)
    return f"{op} {threshold:g}" if threshold == int(threshold) else f"{op} {threshold!r}"


Condition = Annotated[
    str,
    BeforeValidator(lambda v: _condition(v) if isinstance(v, str) else parse_condition(v)),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": r"^\s*(<=|>=|==|!=|<|>)\s*\S+\s*$",
            "description": "an operator (<, <=, >, >=, ==, !=) and a number; quote it in YAML",
            "examples": ["< 0.25", ">= 0.9"],
        }
    ),
]


class HuggingFaceAlias(CoreModel):
    """A branch or tag of a Hub repository the job delivers to, moved to the commit that
    delivered the promoted run."""

    repo: Annotated[
        str,
        Field(pattern=rf"^{HUB_PART}/{HUB_PART}$", max_length=193),
        AfterValidator(hub_repo_id),
    ]
    ref: Annotated[
        str,
        Field(pattern=_BRANCH, description="the branch or tag name, like prod"),
        AfterValidator(_ref_name),
    ]
    kind: Literal["branch", "tag"] = "branch"

    def model_post_init(self, _context: Any) -> None:
        if self.ref == "main" or self.ref.startswith("refs/"):
            raise ValueError(
                f"ref {self.ref!r}: main is where deliveries land, and refs/ names are the "
                "Hub's own; name an alias like prod or staging"
            )


class S3Alias(CoreModel):
    """A prefix that holds a copy of the promoted run's delivered files (its `trainops.json`,
    written last, names the run)."""

    uri: Annotated[
        str,
        Field(pattern=r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/.*)?$"),
        AfterValidator(s3_bucket),
    ]


class ReplicateAlias(CoreModel):
    """A Replicate deployment whose release is moved to the promoted run's model version."""

    deployment: Annotated[str, Field(pattern=r"^[\w.-]+/[\w.-]+$")]


class PromoteTarget(CoreModel):
    model_config = ConfigDict(json_schema_extra=exactly_one("huggingface", "s3", "replicate"))

    huggingface: HuggingFaceAlias | None = None
    s3: S3Alias | None = None
    replicate: ReplicateAlias | None = None

    def model_post_init(self, _context: Any) -> None:
        if sum(t is not None for t in (self.huggingface, self.s3, self.replicate)) != 1:
            raise ValueError(
                "each promote.to entry names exactly one target: huggingface, s3 or replicate"
            )

    @property
    def key(self) -> str:
        if self.huggingface is not None:
            return f"huggingface:{self.huggingface.repo}@{self.huggingface.ref}"
        if self.s3 is not None:
            return f"s3:{self.s3.uri}"
        assert self.replicate is not None
        return f"replicate:{self.replicate.deployment}"


class Promote(CoreModel):
    """After a run succeeds and its deliveries are done, move each alias in `to` to it only if
    every condition in `when` holds (a metric the run did not report fails)."""

    when: dict[Annotated[str, Field(pattern=METRIC_NAME)], Condition] = Field(
        default_factory=dict,
        description='metric name -> condition, like eval_loss: "< 0.25"; all must hold',
    )
    to: Annotated[list[PromoteTarget], Field(min_length=1)]

    @model_validator(mode="after")
    def _distinct(self) -> Any:
        keys = [t.key for t in self.to]
        twice = sorted({k for k in keys if keys.count(k) > 1})
        if twice:
            raise ValueError(f"promote.to names {', '.join(twice)} more than once")
        return self
