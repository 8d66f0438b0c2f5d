"""Sweeps (DESIGN §21): `spec.matrix` (named axes of values, `include` and `exclude` as in GitHub
Actions' `strategy.matrix`) and `spec.sweep` (the set's settings: `max_parallel`, `select`,
`stop_when`), and the values validation hands on: `Member` (which set a job belongs to and its
axis values, `Job.member`) and `SweepSet` (the set itself, `Validation.sets`, `Desired.sets`).

A matrix lives on a TrainingJob: the manifest is one job's template and each combination of the
axes is an ordinary job named `<set>.<suffix>` (`trainops.validate.sweep` expands it). The
suffix is derived from the member's own values only (`member_suffix`), so adding a value to an
axis renames no other member.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, model_validator

from trainops.errors import Problem
from trainops.manifest.fields import INTEGRAL, CoreModel
from trainops.manifest.promote import METRIC_NAME, Promote
from trainops.yamlsource import Document

# At most this many members in one set (after include and exclude): a grid larger than this is
# almost always a typo, and every member is a job with its own state file and provider runs.
MAX_MEMBERS = 1000
AXIS_NAME = r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$"
_AXIS = re.compile(AXIS_NAME)
# `${{ matrix.NAME }}` itself: trainops.manifest.fields (MATRIX_REF, MATRIX_START, MATRIX_BAD).
RESERVED = ("include", "exclude")
SUFFIX_SLUG_MAX = 40  # characters of the readable part of a member's suffix
SUFFIX_HASH = 10  # hex digits of the hash part
# A member's whole name is at most a DNS label's 63 characters (of a-z, 0-9, '-' and the one
# '.'): what every provider's ids and labels take (HF label values, Ray submission ids, the
# SageMaker name's job part, cut and hashed there). So a set's name leaves room for `.<hash>`.
MEMBER_NAME_MAX = 63
SET_NAME_MAX = MEMBER_NAME_MAX - 1 - SUFFIX_HASH


def _axes_schema() -> dict[str, Any]:
    return {
        "additionalProperties": {
            "type": "array",
            "minItems": 1,
            "uniqueItems": True,
            "description": "An axis: the values its members take, in order.",
        },
        "propertyNames": {"pattern": AXIS_NAME},
        # an axis, or an include entry (a matrix of include entries only)
        "anyOf": [
            {"not": {"propertyNames": {"enum": list(RESERVED)}}},
            {"required": ["include"], "properties": {"include": {"minItems": 1}}},
        ],
    }


Combination = Annotated[dict[Annotated[str, Field(pattern=AXIS_NAME)], Any], Field(min_length=1)]


class Matrix(CoreModel):
    """Axes of values (every key but `include` and `exclude`), as GitHub Actions' matrix:
    the combinations of the axes, minus each combination an `exclude` entry matches (a partial
    match is enough), then each `include` entry added to every combination whose axis values it
    does not change, or, when it fits none, a combination of its own."""

    model_config = ConfigDict(extra="allow", json_schema_extra=_axes_schema())

    include: list[Combination] = Field(default_factory=list)
    exclude: list[Combination] = Field(default_factory=list)

    @model_validator(mode="after")
    def _axes(self) -> Any:
        for name, values in self.axes.items():
            if not _AXIS.match(name):
                raise ValueError(f"{name!r} is not an axis name (letters, digits, _ and -)")
            if not isinstance(values, list) or not values:
                raise ValueError(f"axis {name!r} is a list of one value or more")
        if not self.axes and not self.include:
            raise ValueError("a matrix has at least one axis or one include entry")
        return self

    @property
    def axes(self) -> dict[str, list[Any]]:
        return dict(self.__pydantic_extra__ or {})


class Select(CoreModel):
    """Which succeeded member wins: the one with the lowest (`minimize`) or highest
    (`maximize`) recorded value of `metric`. A member without the metric never wins."""

    metric: Annotated[str, Field(pattern=METRIC_NAME)]
    goal: Literal["minimize", "maximize"]


class StopWhen(CoreModel):
    """Cancel a running member whose reported `metric` is already worse than the best value so
    far (the `select` goal says which way is better) by more than `worse_than_best_by`."""

    metric: Annotated[str, Field(pattern=METRIC_NAME)]
    worse_than_best_by: Annotated[float, Field(ge=0)]


class Sweep(CoreModel):
    """`spec.sweep`: settings of the set as a whole (valid only with a `spec.matrix`)."""

    max_parallel: Annotated[int, Field(ge=1), INTEGRAL] | None = None
    select: Select | None = None
    stop_when: StopWhen | None = None


@dataclass(frozen=True)
class Member:
    """A job that is one combination of a set's matrix: its set's name and its values (axis ->
    value, in the matrix's axis order, then keys an `include` entry added)."""

    set: str
    values: Mapping[str, Any]
    name: str = ""  # `<set>.<suffix>` (member_name)

    def __post_init__(self) -> None:
        if not self.name:
            object.__setattr__(self, "name", member_name(self.set, self.values))


@dataclass(frozen=True)
class SweepSet:
    """One manifest with a matrix: its members' job names in expansion order (the axes' product
    in axis order, minus excludes, then includes of their own), the set-level settings, and
    where the manifest is (`problem` locates a problem of the set). A member whose manifest
    does not validate is named here and in `Validation.invalid`, not in `Validation.jobs`."""

    name: str
    members: tuple[str, ...]
    sweep: Sweep = field(default_factory=Sweep)
    max_cost_usd_total: float | None = None
    promote: Promote | None = None
    axes: tuple[str, ...] = ()
    doc: Document | None = field(default=None, compare=False, hash=False, repr=False)

    @property
    def file(self) -> str:
        return self.doc.file if self.doc is not None else ""

    def problem(self, path: tuple[str | int, ...], message: str, hint: str = "") -> Problem:
        """A located problem of this set's manifest (`path` inside the document)."""
        if self.doc is None:
            return Problem(self.file, message=message, hint=hint)
        return self.doc.problem(path, message, hint)


def set_of(name: str) -> str:
    """The set a job name belongs to ("" for an ordinary job): member names are the only job
    names with a '.' (metadata.name is a DNS label)."""
    head, dot, _ = name.partition(".")
    return head if dot else ""


def scalar_text(value: Any) -> str:
    """A matrix value as YAML writes the scalar (`true`, `null`, `0.0001`, `1.0e-05`, text as
    it is): what `${{ matrix.NAME }}` becomes inside a longer string."""
    if isinstance(value, str):
        return value
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        import yaml

        text: str = yaml.safe_dump(value, default_flow_style=True)
        return text.split("\n", 1)[0].strip()
    raise TypeError(f"{type(value).__name__} is not a scalar")


def canonical_values(values: Mapping[str, Any]) -> str:
    """A member's values as canonical JSON (types kept: 8, 8.0, "8" and true differ)."""
    return json.dumps(values, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _slug(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return ""
    return re.sub(r"[^a-z0-9]+", "-", scalar_text(value).lower()).strip("-")


def member_suffix(values: Mapping[str, Any], room: int = SUFFIX_SLUG_MAX + 1 + SUFFIX_HASH) -> str:
    """The part of a member's name after `<set>.`: the values' readable slug (keys sorted, so
    reordering the axes renames nothing), then 10 hex of sha256 over the canonical JSON of the
    values (so `1`, `1.0` and `"1"` name different members). Only the hash when the slug would
    be longer than SUFFIX_SLUG_MAX (or the `room` the set's name leaves), or a value is a list
    or mapping. Derived from the member's own values alone: adding a value to an axis renames
    no other member."""
    digest = hashlib.sha256(canonical_values(values).encode()).hexdigest()[:SUFFIX_HASH]
    parts = [_slug(values[k]) for k in sorted(values)]
    slug = "-".join(p for p in parts if p)
    too_long = len(slug) > min(SUFFIX_SLUG_MAX, room - 1 - SUFFIX_HASH)
    if not slug or too_long or any(not p for p in parts):
        return digest
    return f"{slug}-{digest}"


def member_name(set_name: str, values: Mapping[str, Any]) -> str:
    """`<set>.<suffix>`, at most MEMBER_NAME_MAX characters for a set name of at most
    SET_NAME_MAX."""
    return f"{set_name}.{member_suffix(values, MEMBER_NAME_MAX - 1 - len(set_name))}"


# The line of a member's snapshot (DESIGN §9) that names its set and values, read back by
# `trace` (`member_of_snapshot`): the values as JSON in the member's order, on one line (ASCII:
# no line separator of any kind), their canonical form's hash is in the name.
_MEMBER_LINE = "# sweep member: set {set}, values {values}"
_MEMBER_LINE_RE = re.compile(r"^# sweep member: set ([a-z0-9-]{1,63}), values (\{.*\})$", re.M)


def member_line(member: Member) -> str:
    values = json.dumps(dict(member.values), separators=(",", ":"), ensure_ascii=True)
    return _MEMBER_LINE.format(set=member.set, values=values)


def member_of_snapshot(job: str, snapshot: str) -> Member | None:
    """The member a snapshot's header names, when it is `job` (the state branch is input, DESIGN
    §9: the values must be a mapping whose name is `job`, hash included); None otherwise."""
    header = []
    for line in snapshot.splitlines():
        if not line.startswith("# "):
            break
        header.append(line)
    found = _MEMBER_LINE_RE.search("\n".join(header))
    if found is None:
        return None
    try:
        values = json.loads(found.group(2))
    except ValueError:
        return None
    if not isinstance(values, dict) or not values:
        return None
    member = Member(found.group(1), values)
    return member if member.name == job else None
