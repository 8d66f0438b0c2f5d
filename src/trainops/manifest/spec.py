"""What every TrainingJob `spec` has, whatever its provider (DESIGN §2): `SpecBase` (input, budget,
estimate, retries, after, suspend, rerun, deliver, promote, data, digests), the output references
`${{ jobs.NAME.output.KEY }}` between jobs, and the `workdir` and `env` fields the command-running
providers share. One spec per provider is in `trainops.manifest.provider_specs`."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic.config import JsonDict
from pydantic.json_schema import SkipJsonSchema

from trainops.manifest.data import PINNABLE, DataPath
from trainops.manifest.deliver import DeliverTarget
from trainops.manifest.fields import (
    INTEGRAL,
    PATH_MAX,
    SCHEMA_NO_BAD_MATRIX,
    SCHEMA_NO_MATRIX,
    SCHEMA_RELATIVE,
    CoreModel,
    Duration,
    JobName,
    bounded_path,
    or_matrix_reference,
)
from trainops.manifest.promote import Promote
from trainops.manifest.sweep import Matrix, Sweep

OUTPUT_REF = re.compile(r"\$\{\{\s*jobs\.([A-Za-z0-9-]+)\.output\.([A-Za-z0-9_.-]+)\s*\}\}")


class Budget(CoreModel):
    max_cost_usd: Annotated[float, Field(gt=0)] | None = None
    max_duration: Duration | None = None
    # a set's (DESIGN §21): the worst case of all its members together; only with spec.matrix
    max_cost_usd_total: Annotated[float, Field(gt=0)] | None = None


class Estimate(CoreModel):
    """A hint for cost estimates: how long a run is expected to take."""

    duration: Duration


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
    WithJsonSchema({"type": "string", "maxLength": PATH_MAX, "pattern": SCHEMA_RELATIVE}),
]


# Budget and Estimate values already read, for SpecBase to share (bounded: forgotten when full),
# under their model and field values: what the models' own == compares (their fields are numbers
# and None), hashed and compared in C rather than by BaseModel's __hash__ and __eq__.
_SHARED: dict[tuple[Any, ...], CoreModel] = {}
_SHARED_MAX = 4096


def _in_matrix_fields(schema: JsonDict) -> JsonDict:
    """`schema` for every string where a set's members fill in `${{ matrix.NAME }}`, but those
    of spec.input (validate/sweep.py ALLOWED)."""
    return {
        "properties": {
            "hardware": schema,
            "env": {"items": schema},
            "deliver": {
                "items": {
                    "properties": {
                        "huggingface": {"properties": {"repo": schema}},
                        "s3": {"properties": {"uri": schema}},
                    }
                }
            },
        }
    }


# The schema's way to say `_set_fields_need_a_matrix`: a set's own fields only with a matrix;
# and validate's check_winners: a set's promote and stop_when need its select (DESIGN §21).
_SELECT_REQUIRED: JsonDict = {
    "required": ["sweep"],
    "properties": {"sweep": {"required": ["select"], "properties": {"select": {"type": "object"}}}},
}
_SET_FIELDS_SCHEMA: JsonDict = {
    "dependentRequired": {"sweep": ["matrix"]},
    "allOf": [
        {
            "if": {
                "required": ["budget"],
                "properties": {"budget": {"type": "object", "required": ["max_cost_usd_total"]}},
            },
            "then": {"required": ["matrix"]},
        },
        {
            "if": {
                "required": ["matrix", "promote"],
                "properties": {"promote": {"type": "object"}},
            },
            "then": _SELECT_REQUIRED,
        },
        {
            "if": {
                "required": ["matrix", "sweep"],
                "properties": {
                    "sweep": {
                        "type": "object",
                        "required": ["stop_when"],
                        "properties": {"stop_when": {"type": "object"}},
                    }
                },
            },
            "then": _SELECT_REQUIRED,
        },
        {
            # The fields where a set may write ${{ matrix.NAME }} (or_matrix_reference): none
            # without a matrix (validate/sweep.py stray_references), no malformed one with it.
            "if": {"not": {"required": ["matrix"]}},
            "then": _in_matrix_fields(SCHEMA_NO_MATRIX),
            "else": _in_matrix_fields(SCHEMA_NO_BAD_MATRIX),
        },
    ],
}


class SpecBase(CoreModel):
    model_config = ConfigDict(json_schema_extra=_SET_FIELDS_SCHEMA)

    hardware: str | None = None
    input: dict[str, Any] = Field(default_factory=dict)
    budget: Budget = Field(default_factory=Budget)
    estimate: Estimate | None = None
    retries: Annotated[int, Field(ge=0, le=10), INTEGRAL] = 0
    after: list[JobName] = Field(default_factory=list)
    suspend: bool = False
    rerun: Annotated[int, Field(ge=0), INTEGRAL] = 0
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

    # Absent, not null, in a manifest (SkipJsonSchema: the schema refuses `matrix: ~`, as
    # validate does); None on every member and ordinary job.
    matrix: Annotated[
        Matrix | SkipJsonSchema[None],
        Field(
            description="Axes of values: one member job per combination, named "
            "<name>.<suffix> (DESIGN §21); ${{ matrix.NAME }} in input, hardware, env and "
            "deliver takes the member's value."
        ),
    ] = None
    sweep: Annotated[
        Sweep | SkipJsonSchema[None],
        Field(description="Settings of the set as a whole; only with spec.matrix (DESIGN §21)."),
    ] = None

    @field_validator("budget", "estimate", mode="after")
    @classmethod
    def _one_of_equals(cls, value: Any) -> Any:
        # Frozen and usually the same in every manifest (`budget: {max_duration: 10m}`): equal
        # ones are one instance, not one model per job of a 30,000-job repository.
        if value is None:
            return value
        if len(_SHARED) >= _SHARED_MAX:
            _SHARED.clear()
        return _SHARED.setdefault((type(value), *value.__dict__.values()), value)

    @model_validator(mode="after")
    def _set_fields_need_a_matrix(self) -> Any:
        if self.matrix is None:
            if self.sweep is not None:
                raise ValueError("spec.sweep is only valid with a spec.matrix")
            if self.budget.max_cost_usd_total is not None:
                raise ValueError("spec.budget.max_cost_usd_total is only valid with a spec.matrix")
        return self

    @model_validator(mode="after")
    def _data_not_in_input(self) -> Any:
        if not self.data and not self.digests:  # what almost every manifest has: nothing to check
            return self
        clash = sorted(set(self.data) & set(self.input))
        if clash:
            raise ValueError(f"{', '.join(clash)}: set both in spec.data and spec.input; keep one")
        for key in sorted(self.digests):
            value = self.input.get(key)
            if key in self.data or (isinstance(value, str) and OUTPUT_REF.search(value)):
                continue
            if not (isinstance(value, str) and value.startswith(PINNABLE)):
                raise ValueError(
                    f"spec.digests.{key} pins an input that is not a remote URL "
                    f"({', '.join(PINNABLE)}) in spec.input nor a spec.data key"
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


def _env_name_schema(schema: JsonDict) -> None:
    schema["pattern"] = _SCHEMA_ENV_NAME
    or_matrix_reference(schema)


EnvNames = Annotated[
    list[Annotated[str, Field(max_length=255, json_schema_extra=_env_name_schema)]],
    AfterValidator(_env_names),
    Field(
        description="Variables passed from trainops' environment to the command, by name. "
        "Nothing else is inherited beyond a minimal base (PATH, HOME, LANG, ...).",
        json_schema_extra={"uniqueItems": True},
    ),
]


def output_refs(value: Any) -> list[tuple[str, str]]:
    """Every `${{ jobs.NAME.output.KEY }}` in a JSON-shaped value, in order."""
    found: list[tuple[str, str]] = []
    _gather_refs(value, found)
    return found


def _gather_refs(value: Any, found: list[tuple[str, str]]) -> None:
    if isinstance(value, str):
        if "${{" in value:  # what every reference starts with: most values have none
            found.extend((m.group(1), m.group(2)) for m in OUTPUT_REF.finditer(value))
    elif isinstance(value, dict):
        for item in value.values():
            _gather_refs(item, found)
    elif isinstance(value, list):
        for item in value:
            _gather_refs(item, found)
