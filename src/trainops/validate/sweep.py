"""A manifest with `spec.matrix` (DESIGN §21) read into its member jobs: the matrix checked where
it is written (every axis a non-empty list without repeats, include and exclude entries naming
axes, at most MAX_MEMBERS members), every `${{ matrix.NAME }}` checked (a known name, in
`input`, `hardware`, `env` or `deliver` only), the combinations expanded as GitHub Actions
does (the product in axis order, exclude, then include), and each member validated as an
ordinary TrainingJob: the template with the member's values substituted, without the set's own
fields (`matrix`, `sweep`, `promote`, `budget.max_cost_usd_total`), named `<set>.<suffix>`.

Every later check sees members as the jobs they are: their revision is computed from the
substituted spec as any job's. A problem of the template is reported once (the members share
its positions); a problem only some values cause names the member.
"""

from __future__ import annotations

import difflib
import itertools
import json
import re
from collections.abc import Mapping
from typing import Any

from pydantic import ConfigDict, Field, ValidationError

from trainops.errors import Problem
from trainops.manifest import (
    MAX_MEMBERS,
    Job,
    Matrix,
    Member,
    Metadata,
    Promote,
    Sweep,
    SweepSet,
    TrainingJob,
    scalar_text,
)
from trainops.manifest.fields import CoreModel
from trainops.manifest.sweep import (
    AXIS_NAME,
    MEMBER_NAME_MAX,
    RESERVED,
    SET_NAME_MAX,
)
from trainops.validate.document import name_of, pydantic_problems
from trainops.validate.matrixrefs import (
    Missing,
    Refs,
    names_in,
    references,
    substitute,
    text_at,
)
from trainops.yamlsource import Document

Path_ = tuple[str | int, ...]

# The axes' product is enumerated only up to this (exclude may bring it under MAX_MEMBERS).
MAX_PRODUCT = 64 * MAX_MEMBERS
# What a member does not inherit from its set's manifest.
SET_ONLY = ("matrix", "sweep", "promote")


class _SetBudget(CoreModel):
    model_config = ConfigDict(extra="ignore")
    max_cost_usd_total: float | None = Field(default=None, gt=0)


class _SetSpec(CoreModel):
    model_config = ConfigDict(extra="ignore")
    matrix: Matrix
    sweep: Sweep = Field(default_factory=Sweep)
    promote: Promote | None = None
    budget: _SetBudget = Field(default_factory=_SetBudget)


class _SetFields(CoreModel):
    """The set's own fields of a manifest (the rest is each member's, checked as a job)."""

    model_config = ConfigDict(extra="ignore")
    spec: _SetSpec


def is_set(doc: Document) -> bool:
    """Whether the document is a TrainingJob with a `spec.matrix` (a set, not one job)."""
    data = doc.data
    return (
        isinstance(data, dict) and isinstance(data.get("spec"), dict) and "matrix" in data["spec"]
    )


def expand(doc: Document) -> tuple[list[Job], SweepSet | None, list[Problem]]:
    """The set's member jobs (the valid ones), the set (None when its manifest does not
    validate as a set) and every problem. Never raises for user error."""
    data: dict[str, Any] = doc.data
    spec: dict[str, Any] = data["spec"]
    problems = _matrix_problems(doc, spec["matrix"])
    refs, ref_problems = references(doc, data)
    problems += ref_problems
    if not problems:
        problems += _include_keys(doc, spec["matrix"], refs)
    if problems:
        return [], None, problems
    try:
        fields = _SetFields.model_validate(data)
    except ValidationError as exc:
        return [], None, pydantic_problems(exc, doc, _SetFields)
    matrix = fields.spec.matrix
    combos, combo_problems = combinations(doc, matrix)
    if combo_problems:
        return [], None, combo_problems
    name = name_of(doc)
    if len(name) > SET_NAME_MAX:
        return (
            [],
            None,
            [
                doc.problem(
                    ("metadata", "name"),
                    f"a sweep's name is at most {SET_NAME_MAX} characters, not {len(name)}",
                    f"its members are named <name>.<suffix>, at most {MEMBER_NAME_MAX} characters",
                )
            ],
        )
    members = [Member(name, values) for values in combos]
    jobs: list[Job] = []
    lean = doc.lean()
    template = _member_template(data)
    for member in members:
        job, found = _member_job(doc, lean, template, refs, member)
        problems += found
        if job is not None:
            jobs.append(job)
    sweep_set = SweepSet(
        name=name,
        members=tuple(m.name for m in members),
        sweep=fields.spec.sweep,
        max_cost_usd_total=fields.spec.budget.max_cost_usd_total,
        promote=fields.spec.promote,
        axes=tuple(matrix.axes),
        doc=lean,
    )
    return jobs, sweep_set, problems


def combinations(doc: Document, matrix: Matrix) -> tuple[list[dict[str, Any]], list[Problem]]:
    """GitHub Actions' expansion: the axes' product (the first axis varying slowest), minus
    every combination an exclude entry matches (each of its keys equal), then each include
    entry added to every remaining product combination whose axis values it does not change
    (keys an earlier include entry added may be changed), or, when it fits none, appended as
    a combination of its own."""
    axes = matrix.axes
    product = 1
    for values in axes.values():
        product *= len(values)
    if product > MAX_PRODUCT:
        return [], [
            doc.problem(
                ("spec", "matrix"),
                f"the axes make {product:,} combinations; a set has at most "
                f"{MAX_MEMBERS:,} members",
                "split the sweep into several manifests, or remove values",
            )
        ]
    keys = [{k: _key(v) for k, v in entry.items()} for entry in matrix.exclude]
    combos: list[dict[str, Any]] = []
    if axes:
        names = list(axes)
        for chosen in itertools.product(*axes.values()):
            combo = dict(zip(names, chosen, strict=True))
            if not any(all(_key(combo[k]) == v for k, v in ex.items()) for ex in keys):
                combos.append(combo)
    originals = len(combos)
    seen = {_combo_key(c): -1 for c in combos}
    problems: list[Problem] = []
    for i, entry in enumerate(matrix.include):
        fitted = False
        for combo in combos[:originals]:
            if all(_key(combo[k]) == _key(v) for k, v in entry.items() if k in axes):
                combo.update({k: v for k, v in entry.items() if k not in axes})
                fitted = True
        if fitted:
            continue
        key = _combo_key(entry)
        if key in seen:
            problems.append(
                doc.problem(
                    ("spec", "matrix", "include", i),
                    "include entry is the same combination as "
                    + ("another" if seen[key] < 0 else f"include entry {seen[key] + 1}"),
                    "each combination is one member: remove the repeat",
                )
            )
        seen[key] = i
        combos.append(dict(entry))
    if len(combos) > MAX_MEMBERS:
        problems.append(
            doc.problem(
                ("spec", "matrix"),
                f"the matrix makes {len(combos):,} members; a set has at most {MAX_MEMBERS:,}",
                "split the sweep into several manifests, exclude combinations or remove values",
            )
        )
    if not combos and not problems:
        problems.append(
            doc.problem(
                ("spec", "matrix"),
                "exclude removes every combination: the set has no member",
                "remove an exclude entry, or the manifest",
            )
        )
    # Axis values first, in axis order, then keys include entries added.
    order = {k: i for i, k in enumerate(axes)}
    combos = [dict(sorted(c.items(), key=lambda kv: order.get(kv[0], len(order)))) for c in combos]
    return combos, problems


def _key(value: Any) -> str:
    """A value's identity with its YAML type (1, 1.0, "1" and true differ)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _same(value: Any) -> str:
    """Values an axis cannot list twice: equal in JSON Schema's `uniqueItems` too (1 and 1.0
    are one number there, so a repeat either way is refused by the schema and by validate)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return _key(int(value) if float(value).is_integer() else value)
    return _key(value)


def _combo_key(combo: Mapping[str, Any]) -> str:
    return _key(dict(combo))


def _matrix_problems(doc: Document, matrix: Any) -> list[Problem]:
    at: Path_ = ("spec", "matrix")
    if not isinstance(matrix, dict):
        return [
            doc.problem(
                at,
                "spec.matrix is a mapping of axes (name: [values]) and include/exclude",
                "for example: matrix: {learning_rate: [1.0e-4, 3.0e-4], rank: [8, 16]}",
            )
        ]
    problems: list[Problem] = []
    axes = {k: v for k, v in matrix.items() if k not in RESERVED}
    for name, values in axes.items():
        where = (*at, name)
        if not isinstance(name, str) or not _is_axis_name(name):
            problems.append(
                doc.problem(
                    where,
                    f"{name!r} is not an axis name",
                    "letters, digits, '_' and '-', starting with a letter or '_'",
                )
            )
        elif not isinstance(values, list):
            problems.append(
                doc.problem(
                    where,
                    f"axis {name!r} is not a list",
                    f"an axis lists its values: {name}: [{scalar_or(values)}]",
                )
            )
        elif not values:
            problems.append(doc.problem(where, f"axis {name!r} has no values", "give it one"))
        else:
            first: dict[str, int] = {}
            for i, value in enumerate(values):
                key = _same(value)
                if key in first:
                    problems.append(
                        doc.problem(
                            (*where, i),
                            f"axis {name!r} lists {key} twice (items {first[key] + 1} and {i + 1})",
                            "each combination is one member: remove the repeat",
                        )
                    )
                else:
                    first[key] = i
    for part in RESERVED:
        entries = matrix.get(part, [])
        if not isinstance(entries, list):
            problems.append(
                doc.problem(
                    (*at, part),
                    f"spec.matrix.{part} is a list of mappings (axis: value)",
                    f"{part}: [{{rank: 4}}]",
                )
            )
            continue
        for i, entry in enumerate(entries):
            if not isinstance(entry, dict) or not entry:
                problems.append(
                    doc.problem(
                        (*at, part, i),
                        f"spec.matrix.{part} entry {i + 1} is not a mapping of axis: value",
                        f"for example {part}: [{{rank: 4}}]",
                    )
                )
                continue
            for key in entry:
                if not isinstance(key, str) or not _is_axis_name(key):
                    problems.append(
                        doc.problem((*at, part, i, key), f"{key!r} is not an axis name")
                    )
                elif part == "exclude" and key not in axes:
                    problems.append(
                        doc.problem(
                            (*at, part, i, key),
                            f"exclude names {key!r}, which is not an axis of the matrix",
                            _did_you_mean(key, axes),
                        )
                    )
    if not axes and not matrix.get("include"):
        problems.append(
            doc.problem(at, "spec.matrix has no axis", "for example: matrix: {rank: [8, 16]}")
        )
    return problems


def _include_keys(doc: Document, matrix: dict[str, Any], refs: Refs) -> list[Problem]:
    """An include key that is no axis adds a value to members; one nothing reads is a typo."""
    axes = [k for k in matrix if k not in RESERVED]
    problems = []
    for i, entry in enumerate(matrix.get("include", [])):
        for key in entry:
            if key not in axes and key not in refs.names:
                problems.append(
                    doc.problem(
                        ("spec", "matrix", "include", i, key),
                        f"include names {key!r}, which is not an axis and no "
                        f"${{{{ matrix.{key} }}}} reads",
                        _did_you_mean(key, axes)
                        or "an include entry adds to members the axes' values or values "
                        "a ${{ matrix.NAME }} uses",
                    )
                )
    return problems


def _is_axis_name(name: str) -> bool:
    return re.match(AXIS_NAME, name) is not None


def scalar_or(value: Any) -> str:
    try:
        return scalar_text(value)
    except TypeError:
        return "..."


def _did_you_mean(name: str, names: Any) -> str:
    close = difflib.get_close_matches(name, sorted(names), n=1)
    return f"did you mean {close[0]!r}?" if close else f"axes: {', '.join(names) or 'none'}"


def _member_template(data: dict[str, Any]) -> dict[str, Any]:
    """The manifest without the set's own fields: what every member starts from."""
    spec = {k: v for k, v in data["spec"].items() if k not in SET_ONLY}
    budget = spec.get("budget")
    if isinstance(budget, dict) and "max_cost_usd_total" in budget:
        spec["budget"] = {k: v for k, v in budget.items() if k != "max_cost_usd_total"}
    return {**data, "spec": spec}


def _member_job(
    doc: Document, lean: Document, template: dict[str, Any], refs: Refs, member: Member
) -> tuple[Job | None, list[Problem]]:
    try:
        spec = substitute(template["spec"], refs.tree, member.values)
    except Missing as missing:
        path = next(
            (p for p in refs.paths if missing.name in names_in(text_at(template, p))),
            ("spec",),
        )
        message = (
            f"member {member.name} has no value for matrix.{missing.name}"
            if missing.whole
            else f"member {member.name}: matrix.{missing.name} is a list or mapping; it can "
            "stand alone as a value, not inside a longer string"
        )
        hint = (
            "give every include entry that adds a member a value for each axis it uses"
            if missing.whole
            else f'write the value as "${{{{ matrix.{missing.name} }}}}" alone'
        )
        return None, [doc.problem(path, message, hint)]
    data = {**template, "spec": spec}
    try:
        manifest = TrainingJob.model_validate(data)
    except ValidationError as exc:
        found = pydantic_problems(exc, doc, TrainingJob)
        return None, [_named(p, doc, refs, member) for p in found]
    metadata = Metadata.model_construct(name=member.name, labels=manifest.metadata.labels)
    manifest = manifest.model_copy(update={"metadata": metadata})
    return Job(manifest, lean, member), []


def _named(problem: Problem, doc: Document, refs: Refs, member: Member) -> Problem:
    """A problem at a position the member's values fill says which member it is."""
    for path in refs.paths:
        if doc.locate(path) == (problem.line, problem.col):
            return Problem(
                problem.file,
                problem.line,
                problem.col,
                f"member {member.name}: {problem.message}",
                problem.hint,
            )
    return problem
