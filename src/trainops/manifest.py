"""The TrainingJob manifest (DESIGN §2) and `trainops.yaml` (§4) as strict pydantic models.

These models are the single source of truth: the JSON Schemas in `schemas/` are generated from
them. Every model forbids unknown keys and is frozen. A `Job` couples a validated manifest with
the YAML document it came from, so later checks can point at `file:line:col`.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from trainops.errors import Problem
from trainops.yamlsource import Document

API_VERSION = "trainops/v1"
KIND = "TrainingJob"
PROVIDERS = ("local", "replicate", "huggingface", "ray", "sagemaker")
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
OUTPUT_REF = re.compile(r"\$\{\{\s*jobs\.([A-Za-z0-9-]+)\.output\.([A-Za-z0-9_.-]+)\s*\}\}")


class CoreModel(BaseModel):
    # strict: a string is never a bool or a number, a bool never a number (`suspend: "no"`
    # must not un-suspend a job, `retries: true` must not mean one retry) -- what the JSON
    # Schema says, `validate` says (tests/security/test_schema_parity.py).
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, strict=True)


def _integral(value: Any) -> Any:
    """A float with an integral value (`600.0`) is the integer it equals: the JSON Schema's
    `integer` accepts it (JSON has one number type), so the models do too. Anything else is
    left for strict validation to refuse (a bool, a string, 600.5)."""
    if type(value) is float and value.is_integer():
        return int(value)
    return value


# On an integer field: strict, except that an integral float is its integer (see _integral).
_INTEGRAL = BeforeValidator(_integral)

NAME_MAX = 255  # bytes of one path component on Linux and macOS (and 255 UTF-16 units on NTFS)
PATH_MAX = 1024  # characters of a path from a file: bounded before any system call sees it


def bounded_path(path: str) -> str:
    """A path from a file the system can be asked about: no component longer than NAME_MAX
    bytes (an OSError 'File name too long' otherwise, for the whole repository)."""
    for part in path.replace("\\", "/").split("/"):
        if len(part.encode("utf-8", "surrogatepass")) > NAME_MAX:
            raise ValueError(
                f"{part[:40]!r}... is {len(part.encode('utf-8', 'surrogatepass'))} bytes long; "
                f"a file or folder name is at most {NAME_MAX}"
            )
    return path


# JSON Schema (ECMA-262) patterns for what the models check in code: the Rust regex engine
# pydantic validates `pattern` with has no lookahead, so these are given to the schema only.
_SCHEMA_COMPONENTS = r"(?!.*[^/\\]{256})"  # no name over 255 characters
_SCHEMA_RELATIVE = r"^(?![/\\])(?![A-Za-z]:)(?!(?:.*[/\\])?\.\.(?:[/\\]|$))" + _SCHEMA_COMPONENTS


def parse_duration(value: Any) -> int:
    """`90m`, `2h`, `1h30m`, `45s` -> seconds. A bare integer is taken as seconds."""
    if isinstance(value, bool):
        raise ValueError("a duration is text like 90m, 2h or 1h30m")
    value = _integral(value)
    if isinstance(value, int):
        if value <= 0:
            raise ValueError("a duration must be positive")
        return value
    match = _DURATION.match(value) if isinstance(value, str) else None
    if not match or not value:
        raise ValueError(f"{value!r} is not a duration like 90m, 2h or 1h30m")
    hours, minutes, seconds = (int(g or 0) for g in match.groups())
    total = hours * 3600 + minutes * 60 + seconds
    if total <= 0:
        raise ValueError("a duration must be positive")
    return total


def format_duration(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    text = (f"{hours}h" if hours else "") + (f"{minutes}m" if minutes else "")
    text += f"{secs}s" if secs or not text else ""
    return text


Duration = Annotated[
    int,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str),
    WithJsonSchema(
        {
            "anyOf": [
                # at least one non-zero component: "", "0m" and "0h0s" are refused, as by the model
                {"type": "string", "pattern": r"^(?=.*[1-9])(\d+h)?(\d+m)?(\d+s)?$"},
                {"type": "integer", "minimum": 1, "description": "seconds"},
            ],
            "examples": ["90m", "2h", "1h30m"],
        }
    ),
]
JobName = Annotated[str, Field(pattern=DNS_LABEL, max_length=63)]


class Metadata(CoreModel):
    name: JobName
    labels: dict[str, str] = Field(default_factory=dict)


class Budget(CoreModel):
    max_cost_usd: Annotated[float, Field(gt=0)] | None = None
    max_duration: Duration | None = None


class Estimate(CoreModel):
    """A hint for cost estimates: how long a run is expected to take."""

    duration: Duration


_HUB_PART = r"[A-Za-z0-9_](?:[A-Za-z0-9_.-]{0,94}[A-Za-z0-9_])?"


def _hub_repo_id(repo: str) -> str:
    # The Hub's own rules (huggingface_hub `validate_repo_id`): refused here, not on every apply.
    if "--" in repo or ".." in repo:
        raise ValueError(f"{repo!r}: a Hub repo id cannot contain '--' or '..'")
    if repo.endswith(".git"):
        raise ValueError(f"{repo!r}: a Hub repo id cannot end with '.git'")
    return repo


def _s3_bucket(uri: str) -> str:
    # AWS bucket naming rules beyond the pattern's charset and length.
    bucket = uri.removeprefix("s3://").split("/", 1)[0]
    if re.fullmatch(r"\d+\.\d+\.\d+\.\d+", bucket):
        raise ValueError(f"{uri!r}: a bucket name is not an IP address")
    if ".." in bucket or ".-" in bucket or "-." in bucket:
        raise ValueError(f"{uri!r}: a bucket name has no '..', '.-' or '-.'")
    if bucket.startswith(("xn--", "sthree-")) or bucket.endswith(("-s3alias", "--ol-s3")):
        raise ValueError(f"{uri!r}: {bucket!r} uses a prefix or suffix AWS reserves")
    return uri


class HuggingFaceTarget(CoreModel):
    repo: Annotated[
        str,
        Field(pattern=rf"^{_HUB_PART}/{_HUB_PART}$", max_length=193),
        AfterValidator(_hub_repo_id),
    ]
    private: bool = True


class S3Target(CoreModel):
    uri: Annotated[
        str,
        Field(pattern=r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/.*)?$"),
        AfterValidator(_s3_bucket),
    ]


def _exactly_one(*names: str) -> dict[str, Any]:
    """The schema's way to say what model_post_init checks: exactly one target is given."""
    return {
        "oneOf": [{"required": [name], "properties": {name: {"type": "object"}}} for name in names]
    }


class DeliverTarget(CoreModel):
    model_config = ConfigDict(json_schema_extra=_exactly_one("huggingface", "s3"))

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


# ---- spec.promote (DESIGN §19) -------------------------------------------------------------

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
        Field(pattern=rf"^{_HUB_PART}/{_HUB_PART}$", max_length=193),
        AfterValidator(_hub_repo_id),
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
        AfterValidator(_s3_bucket),
    ]


class ReplicateAlias(CoreModel):
    """A Replicate deployment whose release is moved to the promoted run's model version."""

    deployment: Annotated[str, Field(pattern=r"^[\w.-]+/[\w.-]+$")]


class PromoteTarget(CoreModel):
    model_config = ConfigDict(json_schema_extra=_exactly_one("huggingface", "s3", "replicate"))

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


def _data_path(path: str) -> str:
    """A repository-relative path: never absolute, never `..`, never a URL."""
    clean = path.replace("\\", "/")
    parts = [p for p in clean.strip("/").split("/") if p not in ("", ".")]
    if clean.startswith("/") or re.match(r"^[A-Za-z]:", clean) or "://" in clean:
        raise ValueError(f"{path!r} must be a path relative to the repository root")
    if not parts or ".." in parts:
        raise ValueError(f"{path!r} must name a file or folder inside the repository")
    return "/".join(parts) + ("/" if clean.endswith("/") else "")


# What `spec.digests` can pin: an object behind a URL that can be hashed (a Hub input is pinned
# by the revision in its URL instead).
_PINNABLE = ("http://", "https://", "s3://")

DataPath = Annotated[
    str,
    Field(min_length=1, max_length=PATH_MAX),
    AfterValidator(_data_path),
    AfterValidator(bounded_path),
    WithJsonSchema(
        {
            "type": "string",
            "minLength": 1,
            "maxLength": PATH_MAX,
            "pattern": _SCHEMA_RELATIVE + r"(?!.*://)(?=.*[^/\\.])",
        }
    ),
]


def _workdir(path: str) -> str:
    parts = path.replace("\\", "/").split("/")
    if path.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", path) or ".." in parts:
        raise ValueError(
            f"{path!r} leaves the repository: a workdir is relative to its root, without '..'"
        )
    return bounded_path(path)


# A local or Ray job's folder: relative, inside the repository, every name one the OS can hold.
Workdir = Annotated[
    str,
    Field(max_length=PATH_MAX),
    AfterValidator(_workdir),
    WithJsonSchema({"type": "string", "maxLength": PATH_MAX, "pattern": _SCHEMA_RELATIVE}),
]


# Budget and Estimate values already read, for _SpecBase to share (bounded: forgotten when full).
_SHARED: dict[CoreModel, CoreModel] = {}
_SHARED_MAX = 4096


class _SpecBase(CoreModel):
    hardware: str | None = None
    input: dict[str, Any] = Field(default_factory=dict)
    budget: Budget = Field(default_factory=Budget)
    estimate: Estimate | None = None
    retries: Annotated[int, Field(ge=0, le=10), _INTEGRAL] = 0
    after: list[JobName] = Field(default_factory=list)
    suspend: bool = False
    rerun: Annotated[int, Field(ge=0), _INTEGRAL] = 0
    deliver: list[DeliverTarget] = Field(default_factory=list)
    promote: Promote | None = None
    data: Annotated[
        dict[Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")], DataPath],
        Field(
            description="Repository files or folders packaged and handed to the run, by input "
            "key (DESIGN §18): the package's URL or local path becomes input.KEY."
        ),
    ] = Field(default_factory=dict)
    digests: Annotated[
        dict[
            Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")],
            Annotated[str, Field(pattern=r"^sha256:[0-9a-f]{64}$")],
        ],
        Field(
            description="Pins, by input key: the sha256 of the object behind a remote URL in "
            "spec.input (or of a spec.data package). A different object is an error before "
            "anything is submitted (DESIGN §18)."
        ),
    ] = Field(default_factory=dict)

    @field_validator("budget", "estimate", mode="after")
    @classmethod
    def _one_of_equals(cls, value: Any) -> Any:
        # Frozen and usually the same in every manifest (`budget: {max_duration: 10m}`): equal
        # ones are one instance, not one model per job of a 30,000-job repository.
        if value is None:
            return value
        if len(_SHARED) >= _SHARED_MAX:
            _SHARED.clear()
        return _SHARED.setdefault(value, value)

    @model_validator(mode="after")
    def _data_not_in_input(self) -> Any:
        clash = sorted(set(self.data) & set(self.input))
        if clash:
            raise ValueError(f"{', '.join(clash)}: set both in spec.data and spec.input; keep one")
        for key in sorted(self.digests):
            value = self.input.get(key)
            if key in self.data or (isinstance(value, str) and OUTPUT_REF.search(value)):
                continue
            if not (isinstance(value, str) and value.startswith(_PINNABLE)):
                raise ValueError(
                    f"spec.digests.{key} pins an input that is not a remote URL "
                    f"({', '.join(_PINNABLE)}) in spec.input nor a spec.data key"
                )
        return self


# The credentials a CI runner gives the workflow itself: its GitHub token (which can push the
# state branch, the one writer its protection allows) and the Actions runtime and OIDC tokens. A
# job given one could forge trainops' state or act as the workflow: no manifest may list them.
_WORKFLOW_CREDENTIALS = frozenset({"GITHUB_TOKEN", "GH_TOKEN"})
_WORKFLOW_CREDENTIAL_PREFIXES = ("ACTIONS_",)


def _env_names(names: list[str]) -> list[str]:
    """spec.env names variables, never values (a value here would be a secret in git)."""
    for name in names:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise ValueError(f"{name!r} is not an environment variable name (letters, digits, _)")
        if name.startswith("TRAINOPS_"):
            raise ValueError(f"{name} is set by trainops for every run; it cannot be passed")
        if name.upper() in _WORKFLOW_CREDENTIALS or name.upper().startswith(
            _WORKFLOW_CREDENTIAL_PREFIXES
        ):
            raise ValueError(
                f"{name} is the workflow's own credential (it can push the state branch); "
                "a job cannot be given it: pass a token of the job's own under another name"
            )
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"listed more than once: {', '.join(duplicates)}")
    return names


def _any_case(word: str) -> str:
    return "".join(f"[{c.upper()}{c.lower()}]" if c.isalpha() else c for c in word)


# What _env_names refuses, as the schema's pattern (names only; duplicates are uniqueItems).
_SCHEMA_ENV_NAME = (
    r"^(?!TRAINOPS_)(?!"
    + "|".join(_any_case(n) + "$" for n in sorted(_WORKFLOW_CREDENTIALS))
    + "|"
    + "|".join(_any_case(p) for p in _WORKFLOW_CREDENTIAL_PREFIXES)
    + r")[A-Za-z_][A-Za-z0-9_]*$"
)

EnvNames = Annotated[
    list[Annotated[str, Field(max_length=255, json_schema_extra={"pattern": _SCHEMA_ENV_NAME})]],
    AfterValidator(_env_names),
    Field(
        description="Variables passed from trainops' environment to the command, by name. "
        "Nothing else is inherited beyond a minimal base (PATH, HOME, LANG, ...).",
        json_schema_extra={"uniqueItems": True},
    ),
]


class LocalSpec(_SpecBase):
    provider: Literal["local"]
    command: Annotated[list[str], Field(min_length=1)]
    workdir: Workdir | None = None
    env: EnvNames = Field(default_factory=list)


class ReplicateSpec(_SpecBase):
    provider: Literal["replicate"]
    trainer: Annotated[str, Field(pattern=r"^[\w.-]+/[\w.-]+(:[0-9a-f]{6,64})?$")]
    destination: Annotated[str, Field(pattern=r"^[\w.-]+/[\w.-]+$")]


HubRepoId = Annotated[
    str,
    Field(pattern=rf"^{_HUB_PART}/{_HUB_PART}$", max_length=193),
    AfterValidator(_hub_repo_id),
]


class HuggingFaceSpec(_SpecBase):
    """A Hugging Face Job: `image` (a Docker image, or `hf.co/spaces/owner/name`) runs `command`
    on the flavor `hardware` names; the job pushes its outputs to `output_repo`."""

    provider: Literal["huggingface"]
    image: Annotated[str, Field(min_length=1, max_length=512, pattern=r"^[^\s]+$")]
    command: Annotated[list[str], Field(min_length=1)]
    output_repo: HubRepoId | None = None
    env: EnvNames = Field(default_factory=list)


class RaySpec(_SpecBase):
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


class SageMakerSpec(_SpecBase):
    """A SageMaker training job (DESIGN §10): `image` (a training image URI) or `algorithm` (a
    built-in or subscribed algorithm), on `instance_count` instances of the `hardware` instance
    type. `input` becomes the job's `HyperParameters` (strings: `plan` shows the conversion) and
    every `s3://` value, `spec.data` included, an input channel named by its key."""

    provider: Literal["sagemaker"]
    hardware: Annotated[str, Field(pattern=SAGEMAKER_INSTANCE, max_length=64)]
    image: Annotated[str, Field(min_length=1, max_length=255, pattern=r"^[^\s]+$")] | None = None
    algorithm: Annotated[str, Field(min_length=1, max_length=170, pattern=_SM_ALGORITHM)] | None = (
        None
    )
    instance_count: Annotated[int, Field(ge=1, le=1000), _INTEGRAL] = 1

    @model_validator(mode="after")
    def _image_or_algorithm(self) -> Any:
        if (self.image is None) == (self.algorithm is None):
            raise ValueError("a SageMaker job names exactly one of image or algorithm")
        return self


AnySpec = LocalSpec | ReplicateSpec | HuggingFaceSpec | RaySpec | SageMakerSpec
Spec = Annotated[AnySpec, Field(discriminator="provider")]

# Fields that say *what* is trained. Changing one makes a new revision (a new training); the
# others (budget, retries, after, suspend, deliver, promote, estimate) steer the current run.
REVISION_FIELDS = (
    "provider",
    "trainer",
    "destination",
    "hardware",
    "input",
    "command",
    "workdir",
    "rerun",
    "image",
    "output_repo",
    "algorithm",
    "instance_count",
)
# Fields that say what is trained through content, not text: `data` counts by the sha256 of each
# package (`revision(data_digests=...)`), so renaming a folder with the same files trains nothing.
# `digests` counts only when present, so that pinning (or re-pinning) an input trains again
# while every job without pins keeps the revision it had.
CONTENT_FIELDS = ("data", "digests")


class TrainingJob(CoreModel):
    """apiVersion trainops/v1, kind TrainingJob."""

    model_config = ConfigDict(
        title="TrainingJob",
        json_schema_extra={"$id": "https://trainops.dev/schemas/trainingjob.v1.json"},
    )

    apiVersion: Literal["trainops/v1"]
    kind: Literal["TrainingJob"]
    metadata: Metadata
    spec: Spec


# ---- trainops.yaml -------------------------------------------------------------------------


class StateConfig(CoreModel):
    backend: Literal["git", "s3"] = "git"
    branch: str = "trainops/state"
    uri: str | None = None
    remote: str | None = None  # default: "origin" when the repository has it


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


def _inside(rule: str, path: str) -> str:
    # Read from and written to the repository only: a pull request must not make the review
    # gate read (and quote) files elsewhere on the runner, or write there.
    parts = path.replace("\\", "/").split("/")
    if path.startswith(("/", "\\")) or ".." in parts or (parts[0][1:2] == ":"):
        raise ValueError(f"{path!r} leaves the repository: {rule}")
    return bounded_path(path)


# _inside as the schema's pattern (a second character ':' is a drive letter's, as _inside reads)
_SCHEMA_INSIDE = r"^(?![/\\])(?!.:)(?!(?:.*[/\\])?\.\.(?:[/\\]|$))" + _SCHEMA_COMPONENTS
_JOBS_RULE = "patterns are relative to its root and never contain '..'"
_RUNS_RULE = "runs_dir is a folder relative to its root, without '..'"


class LocalConfig(CoreModel):
    runs_dir: Annotated[
        str,
        Field(max_length=PATH_MAX, json_schema_extra={"pattern": _SCHEMA_INSIDE}),
        AfterValidator(lambda path: _inside(_RUNS_RULE, path)),
    ] = ".trainops/runs"


HF_DEFAULT_TIMEOUT = 24 * 3600  # providers.huggingface.default_timeout when unset


class HuggingFaceConfig(CoreModel):
    """The endpoint and token are never configured here: `HF_ENDPOINT` and `HF_TOKEN` in the
    environment (§13). `namespace` is the user or organization the jobs run under."""

    namespace: Annotated[str, Field(pattern=rf"^{_HUB_PART}$")] | None = None
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
    memory: Annotated[int, Field(ge=0, description="bytes"), _INTEGRAL] | None = None
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
    volume_gb: Annotated[int, Field(ge=1, le=16384), _INTEGRAL] = 30
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


class Policy(CoreModel):
    prune: bool = True
    on_change: Literal["replace", "queue"] = "replace"
    allowed_hardware: list[str] | None = None
    allowed_providers: (
        list[Literal["local", "replicate", "huggingface", "ray", "sagemaker"]] | None
    ) = None
    max_cost_usd_per_job: Annotated[float, Field(gt=0)] | None = None
    monthly_budget_usd: Annotated[float, Field(gt=0)] | None = None
    max_concurrent_runs: Annotated[int, Field(ge=1), _INTEGRAL] | None = None


# The flavors a job may name: huggingface_hub's own `JobHardware` (`_jobs_api.py`, 2.4), which
# its maintainers keep in sync with the service (`utils/check_hardware_flavors.py`). Copied, not
# imported: importing `_jobs_api` costs ~0.3 s, about what `validate` spends on a small repo;
# tests/unit/test_hf_flavors.py fails when the installed client lists other values. A flavor
# without a price in trainops.yaml's `prices_usd_per_second` runs, but has no cost estimate.
HF_FLAVORS = (
    "cpu-basic", "cpu-upgrade", "cpu-performance", "cpu-xl",
    "t4-small", "t4-medium", "l4x1", "l4x4", "l40sx1", "l40sx4", "l40sx8",
    "a10g-small", "a10g-large", "a10g-largex2", "a10g-largex4",
    "a100-large", "a100x4", "a100x8", "h200", "h200x2", "h200x4", "h200x8",
    "rtx-pro-6000", "rtx-pro-6000x2", "rtx-pro-6000x4", "rtx-pro-6000x8",
)  # fmt: skip

# Hugging Face Jobs flavors, USD per second: the per-minute prices GET /api/jobs/hardware
# answers (unitCostUSD, unitLabel "minute") divided by 60. Names do not collide with Replicate's.
HF_FLAVOR_PRICES_PER_MINUTE = {
    "cpu-basic": 0.0001, "cpu-upgrade": 0.0005, "t4-small": 0.0067, "t4-medium": 0.01,
    "l4x1": 0.0133, "l4x4": 0.0633, "l40sx1": 0.03, "l40sx4": 0.1383, "l40sx8": 0.3917,
    "a10g-small": 0.0167, "a10g-large": 0.025, "a10g-largex2": 0.05, "a10g-largex4": 0.0833,
    "a100-large": 0.0417, "h200": 0.0833,
}  # fmt: skip

# SageMaker training instances, USD per instance-hour, on-demand, us-east-1: the "Training" tab
# of aws.amazon.com/sagemaker/pricing/ as of 2025 (other regions cost more; managed spot bills
# less per second but the same BillableTimeInSeconds is what is priced). Not fetched at run time:
# `prices_usd_per_second` in trainops.yaml overrides any of them (per second = per hour / 3600).
SAGEMAKER_PRICES_PER_HOUR = {
    "ml.m5.large": 0.115, "ml.m5.xlarge": 0.23, "ml.m5.2xlarge": 0.461, "ml.m5.4xlarge": 0.922,
    "ml.c5.xlarge": 0.204, "ml.c5.2xlarge": 0.408, "ml.c5.4xlarge": 0.816,
    "ml.g4dn.xlarge": 0.736, "ml.g4dn.2xlarge": 0.94, "ml.g4dn.12xlarge": 4.89,
    "ml.g5.xlarge": 1.408, "ml.g5.2xlarge": 1.515, "ml.g5.4xlarge": 2.03,
    "ml.g5.12xlarge": 7.09, "ml.g5.48xlarge": 20.36,
    "ml.p3.2xlarge": 3.825, "ml.p3.8xlarge": 14.688, "ml.p3.16xlarge": 28.152,
    "ml.p4d.24xlarge": 37.688, "ml.p5.48xlarge": 113.068,
}  # fmt: skip

DEFAULT_PRICES = {
    "gpu-t4": 0.000225,
    "gpu-l40s": 0.000975,
    "gpu-a100-large": 0.0014,
    "gpu-h100": 0.001525,
    **{name: round(usd / 60, 9) for name, usd in HF_FLAVOR_PRICES_PER_MINUTE.items()},
    **{name: round(usd / 3600, 9) for name, usd in SAGEMAKER_PRICES_PER_HOUR.items()},
}


def flavor_problem(job: Job) -> Problem:
    """A Hugging Face job's `hardware` that is not a flavor of HF_FLAVORS, at its position."""
    problem = job.doc.problem(
        ("spec", "hardware"),
        f"{job.spec.hardware!r} is not a Hugging Face Jobs flavor",
        "one of: " + ", ".join(HF_FLAVORS),
    )
    return replace(problem, job=job.name)


def _over_default_prices(prices: dict[str, float]) -> dict[str, float]:
    # trainops.yaml overrides prices per hardware: setting one must not unprice the others.
    return {**DEFAULT_PRICES, **prices}


class GitHubConfig(CoreModel):
    status_context: str = "trainops"


JobsPattern = Annotated[
    str,
    Field(max_length=PATH_MAX, json_schema_extra={"pattern": _SCHEMA_INSIDE}),
    AfterValidator(lambda p: _inside(_JOBS_RULE, p)),
]
DEFAULT_JOBS = ("jobs/**/*.yaml", "jobs/**/*.yml")  # DESIGN §1: both extensions count


class Config(CoreModel):
    """trainops.yaml: every field has a default, so the file itself is optional."""

    model_config = ConfigDict(
        title="trainops.yaml",
        json_schema_extra={"$id": "https://trainops.dev/schemas/config.v1.json"},
    )

    jobs: list[JobsPattern] = Field(default_factory=lambda: list(DEFAULT_JOBS))
    state: StateConfig = Field(default_factory=StateConfig)
    providers: ProvidersConfig = Field(default_factory=ProvidersConfig)
    policy: Policy = Field(default_factory=Policy)
    prices_usd_per_second: Annotated[
        dict[str, Annotated[float, Field(ge=0)]], AfterValidator(_over_default_prices)
    ] = Field(default_factory=lambda: dict(DEFAULT_PRICES))
    github: GitHubConfig = Field(default_factory=GitHubConfig)

    @model_validator(mode="after")
    def _ray_prices(self) -> Any:
        """The Ray hardware table's prices join `prices_usd_per_second` (per hour / 3600), so
        estimates, budgets and `cost` price Ray runs as any other. A name priced twice
        differently is an error: one hardware name, one price."""
        merged = dict(self.prices_usd_per_second)
        for name, entry in sorted(self.providers.ray.hardware.items()):
            if entry.price_per_hour is None:
                continue
            per_second = round(entry.price_per_hour / 3600, 12)
            if name in merged and abs(merged[name] - per_second) > 1e-12:
                raise ValueError(
                    f"providers.ray.hardware.{name}: {name!r} already has a price "
                    f"({merged[name]} USD/s in prices_usd_per_second or the built-in table); "
                    "give the Ray hardware a name of its own (e.g. ray-" + name + ")"
                )
            merged[name] = per_second
        object.__setattr__(self, "prices_usd_per_second", merged)  # frozen: set once, here
        return self


# ---- a manifest in its repository -----------------------------------------------------------


@dataclass(frozen=True)
class Job:
    """A validated manifest and the document it was read from."""

    manifest: TrainingJob
    doc: Document

    @property
    def name(self) -> str:
        return self.manifest.metadata.name

    @property
    def spec(self) -> AnySpec:
        return self.manifest.spec

    @property
    def file(self) -> str:
        return self.doc.file

    def upstream(self) -> list[str]:
        """Jobs this one waits for: `after` plus every output reference in `input`."""
        names = list(self.spec.after)
        for ref_job, _key in output_refs(self.spec.input):
            if ref_job not in names:
                names.append(ref_job)
        return names


def output_refs(value: Any) -> list[tuple[str, str]]:
    """Every `${{ jobs.NAME.output.KEY }}` in a JSON-shaped value, in order."""
    found: list[tuple[str, str]] = []
    if isinstance(value, str):
        found.extend((m.group(1), m.group(2)) for m in OUTPUT_REF.finditer(value))
    elif isinstance(value, dict):
        for item in value.values():
            found.extend(output_refs(item))
    elif isinstance(value, list):
        for item in value:
            found.extend(output_refs(item))
    return found


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def revision(
    spec: AnySpec,
    trainer: str | None = None,
    data_digests: Mapping[str, str] | None = None,
) -> str:
    """DESIGN §3: 12 hex of sha256 over the canonical JSON of the normalized spec.

    Normalized: defaults filled, durations canonical, the trainer version resolved through the lock
    (`trainer` is the resolved `owner/name:version`). Only `REVISION_FIELDS` count: labels and
    the fields that steer a run (budget, retries, suspend, ...) do not make a new training.
    """
    data = spec.model_dump(mode="json", include=set(REVISION_FIELDS))
    if trainer is not None and "trainer" in data:
        data["trainer"] = trainer
    if data_digests:  # only when the job has data: every other revision stays as it was
        data["data"] = dict(data_digests)
    if spec.digests:  # likewise for pins
        data["digests"] = dict(spec.digests)
    return hashlib.sha256(canonical_json(data).encode()).hexdigest()[:12]


def json_schemas() -> dict[str, str]:
    """The generated JSON Schemas, by file name under `schemas/` (`trainops schema`)."""
    out = {}
    for name, model in (("trainingjob.v1.json", TrainingJob), ("config.v1.json", Config)):
        schema = {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            **model.model_json_schema(mode="validation"),
        }
        out[name] = json.dumps(schema, indent=2, sort_keys=True) + "\n"
    return out
