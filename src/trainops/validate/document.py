"""One YAML document read as a TrainingJob: apiVersion and kind first, then the model, its
pydantic errors turned into located problems a user can act on (unknown keys with a did-you-mean,
missing keys, wrong types, unknown providers)."""

from __future__ import annotations

import difflib
from typing import Any

from pydantic import BaseModel, ValidationError

from trainops import wrongtype
from trainops.errors import Problem
from trainops.manifest import (
    API_VERSION,
    KIND,
    PROVIDERS,
    HuggingFaceSpec,
    Job,
    LocalSpec,
    RaySpec,
    ReplicateSpec,
    SageMakerSpec,
    TrainingJob,
)
from trainops.yamlsource import Document


def name_of(doc: Document) -> str:
    data = doc.data
    if isinstance(data, dict) and isinstance(data.get("metadata"), dict):
        name = data["metadata"].get("name")
        if isinstance(name, str):
            return name
    return ""


def check_header(doc: Document) -> list[Problem]:
    """What makes a document no TrainingJob at all (secrets, empty, not a mapping, another
    apiVersion or kind): checked before the model, for jobs and sets alike."""
    data = doc.data
    if doc.secrets:
        return list(doc.secrets)
    if data is None:
        # Never skipped in silence: an emptied document would read as a job deleted (pruned).
        return [
            doc.problem(
                (),
                f"document {doc.index + 1} of this file is empty (null)",
                "remove it (and the --- before it), or write the manifest it was meant to hold",
            )
        ]
    if not isinstance(data, dict):
        return [
            doc.problem((), "a manifest must be a mapping with apiVersion, kind, metadata and spec")
        ]
    api, kind = data.get("apiVersion"), data.get("kind")
    if api is not None and api != API_VERSION:
        return [
            doc.problem(
                ("apiVersion",),
                f"unknown apiVersion {api!r}",
                f"this trainops reads apiVersion: {API_VERSION}",
            )
        ]
    if kind is not None and kind != KIND:
        return [doc.problem(("kind",), f"unknown kind {kind!r}", f"expected kind: {KIND}")]
    return []


def validate_document(
    doc: Document, header: list[Problem] | None = None
) -> tuple[Job | None, list[Problem]]:
    """The document as a Job, or its problems; `header`: its `check_header`, when the caller
    has it already."""
    if header is None:
        header = check_header(doc)
    if header:
        return None, header
    data = doc.data
    spec = data.get("spec")
    if isinstance(spec, dict):  # a set's own fields, where no matrix makes it a set (DESIGN §21)
        budget = spec.get("budget")
        misplaced: list[tuple[str, ...]] = [("spec", "sweep")] if "sweep" in spec else []
        if isinstance(budget, dict) and "max_cost_usd_total" in budget:
            misplaced.append(("spec", "budget", "max_cost_usd_total"))
        if misplaced:
            return None, [
                doc.problem(
                    where,
                    f"{'.'.join(where)} is only valid with a spec.matrix (a sweep)",
                    "add the matrix, or remove it (docs/sweeps.md)",
                )
                for where in misplaced
            ]
    try:
        manifest = TrainingJob.model_validate(data)
    except ValidationError as exc:
        return None, pydantic_problems(exc, doc, TrainingJob)
    # The model holds what the document said: the parsed data is not kept beside it for every
    # job of the repository (a problem found later is still located, see Document.lean).
    return Job(manifest, doc.lean()), []


def pydantic_problems(exc: ValidationError, doc: Document, model: type[BaseModel]) -> list[Problem]:
    problems = []
    for err in exc.errors(include_url=False):
        loc = _user_loc(err["loc"])
        kind = err["type"]
        where = ".".join(str(p) for p in loc) or "document"
        if kind == "extra_forbidden":
            key = loc[-1]
            allowed = _keys_at(model, doc.data, loc[:-1])
            close = difflib.get_close_matches(str(key), allowed, n=1)
            hint = (
                f"did you mean {close[0]!r}?"
                if close
                else (f"allowed keys here: {', '.join(allowed)}" if allowed else "")
            )
            problems.append(doc.problem(loc, f"unknown key {where!r}", hint))
        elif kind == "missing":
            problems.append(doc.problem(loc[:-1], f"missing required key {where!r}"))
        elif kind == "union_tag_invalid":
            tag = err.get("ctx", {}).get("tag")
            close = difflib.get_close_matches(str(tag), PROVIDERS, n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"providers: {', '.join(PROVIDERS)}"
            problems.append(doc.problem((*loc, "provider"), f"unknown provider {tag!r}", hint))
        elif kind == "union_tag_not_found":
            problems.append(
                doc.problem(
                    loc,
                    f"missing required key '{where}.provider'",
                    f"providers: {', '.join(PROVIDERS)}",
                )
            )
        elif (wrong := wrongtype.message(kind, err.get("input"))) is not None:
            problems.append(doc.problem(loc, f"{where}: {wrong}", _hint_for(loc)))
        else:
            message = err["msg"].removeprefix("Value error, ")
            problems.append(doc.problem(loc, f"{where}: {message}", _hint_for(loc)))
    return problems


def _user_loc(loc: tuple[Any, ...]) -> tuple[str | int, ...]:
    # pydantic inserts the discriminator's tag ('spec', 'local', ...): the user never wrote it.
    if len(loc) >= 2 and loc[0] == "spec" and loc[1] in PROVIDERS:
        loc = (loc[0], *loc[2:])
    return tuple(p for p in loc if isinstance(p, (str, int)))


def _hint_for(loc: tuple[str | int, ...]) -> str:
    last = loc[-1] if loc else ""
    if last == "name":
        return "a DNS label: lowercase letters, digits and '-', at most 63 characters"
    if last in ("max_duration", "duration"):
        return "write durations like 90m, 2h or 1h30m"
    if last == "trainer":
        return "owner/name, optionally :version (the lock file can pin it)"
    if last == "repo":
        return (
            "a Hub repo id: namespace/name of letters, digits, '-', '_' and '.', each at most "
            "96 characters, not starting or ending with '-' or '.', no '--' or '..', no .git"
        )
    if last == "uri":
        return (
            "s3://bucket/prefix, the bucket 3-63 lowercase letters, digits, '.' and '-', "
            "not an IP address"
        )
    return ""


def _keys_at(model: type[BaseModel], data: Any, loc: tuple[str | int, ...]) -> list[str]:
    """The keys the schema allows at `loc`, for did-you-mean hints."""
    current: Any = model
    value = data
    for part in loc:
        value = (
            value.get(part)
            if isinstance(value, dict)
            else (value[part] if isinstance(value, list) and isinstance(part, int) else None)
        )
        if isinstance(part, int):
            continue
        fields = getattr(current, "model_fields", None)
        if fields is None or part not in fields:
            return []
        current = _model_of(fields[part].annotation, value)
    fields = getattr(current, "model_fields", None)
    return sorted(fields) if fields else []


def _model_of(annotation: Any, value: Any) -> Any:
    import typing

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_of(arg, value)
        if found is not None:
            specs = (LocalSpec, ReplicateSpec, HuggingFaceSpec, RaySpec, SageMakerSpec)
            if found in specs and isinstance(value, dict):
                return {
                    "local": LocalSpec,
                    "huggingface": HuggingFaceSpec,
                    "ray": RaySpec,
                    "sagemaker": SageMakerSpec,
                }.get(str(value.get("provider")), ReplicateSpec)
            return found
    return None
