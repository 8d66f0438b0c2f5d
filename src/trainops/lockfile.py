"""`trainops.lock` (DESIGN §5): pinned trainer versions and their training input schemas.

The lock lets validation check every `input` key and type offline, so a pull request from a fork
(no secrets) is still reviewed. `trainops lock` writes it with the official `replicate` client;
everything else only reads it. The file is JSON (sorted keys, two-space indent, so diffs review
well), keyed by each trainer exactly as the manifests write it:

    {
      "lockVersion": 1,
      "trainers": {
        "ostris/flux-dev-lora-trainer": {            <- no version in the manifest: the latest
          "version": "26dce37af90b9d99...",          <- full version id
          "schema": {"type": "object", ...}          <- the version's TrainingInput, as a
        },                                              self-contained JSON Schema ($refs inlined)
        "acme/trainer:5c7d5dc6": {"version": "5c7d5dc6dd8b...", "schema": {...}}
      }
    }
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trainops.errors import InvalidInput, Problem, ProviderError
from trainops.manifest import OUTPUT_REF

LOCK_VERSION = 1
Locate = Callable[[tuple[str | int, ...]], tuple[int, int]]

_FILE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["lockVersion", "trainers"],
    "properties": {
        "lockVersion": {"const": LOCK_VERSION},
        "trainers": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "required": ["version", "schema"],
                "properties": {
                    "version": {"type": "string", "pattern": "^[0-9a-f]{6,64}$"},
                    "schema": {"type": "object"},
                },
            },
        },
    },
}


@dataclass(frozen=True)
class LockedTrainer:
    version: str  # the full version id
    schema: Mapping[str, Any] = field(default_factory=dict)  # TrainingInput, refs inlined


@dataclass(frozen=True)
class Lock:
    """Trainer reference (as manifests write it) -> the pinned version and its input schema."""

    trainers: Mapping[str, LockedTrainer] = field(default_factory=dict)

    def key_for(self, trainer: str) -> str | None:
        """The lock key that pins `trainer`: the same text, or, for `owner/name:<prefix>`, the
        `owner/name` entry whose version starts with that prefix."""
        if trainer in self.trainers:
            return trainer
        model, _, version = trainer.partition(":")
        entry = self.trainers.get(model)
        if version and entry is not None and entry.version.startswith(version):
            return model
        return None

    def entry(self, trainer: str) -> LockedTrainer | None:
        key = self.key_for(trainer)
        return None if key is None else self.trainers[key]

    def resolve(self, trainer: str) -> str | None:
        """`owner/name:<full version id>` for a trainer reference, or None when not locked."""
        entry = self.entry(trainer)
        return None if entry is None else f"{trainer.partition(':')[0]}:{entry.version}"

    # ---- the file ---------------------------------------------------------------------------

    @classmethod
    def load(cls, path: Path | str, display: str = "trainops.lock") -> Lock:
        """Read a lock file; `InvalidInput` (with file:line:col) when it is not a valid lock."""
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise InvalidInput([Problem(display, message=f"cannot read: {exc.strerror}")]) from exc
        return cls.loads(text, display)

    @classmethod
    def loads(cls, text: str, display: str = "trainops.lock") -> Lock:
        hint = "regenerate it with `trainops lock`"
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            problem = Problem(display, exc.lineno, exc.colno, f"not valid JSON: {exc.msg}", hint)
            raise InvalidInput([problem]) from exc
        except RecursionError:  # a pull request can write the lock: nested past the decoder
            problem = Problem(display, message="not valid JSON: nested too deeply", hint=hint)
            raise InvalidInput([problem]) from None
        errors = list(_validator(_FILE_SCHEMA).iter_errors(data))
        if errors:
            problems = [
                Problem(
                    display,
                    message=f"not a trainops lock: {_where(e.absolute_path)}{e.message}",
                    hint=hint,
                )
                for e in errors
            ]
            raise InvalidInput(problems)
        return cls(
            {
                key: LockedTrainer(item["version"], item["schema"])
                for key, item in data["trainers"].items()
            }
        )

    def dumps(self) -> str:
        data = {
            "lockVersion": LOCK_VERSION,
            "trainers": {
                key: {"version": e.version, "schema": e.schema}
                for key, e in sorted(self.trainers.items())
            },
        }
        return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"

    def dump(self, path: Path | str) -> None:
        Path(path).write_text(self.dumps(), encoding="utf-8")


# ---- resolving with the official client ------------------------------------------------------


def resolve_lock(trainers: Iterable[str], client: Any) -> Lock:
    """Pin every trainer through `client` (a `replicate.Client`): a trainer with a version pins
    that version (a prefix is expanded), one without pins the model's latest version."""
    entries = {}
    for ref in sorted(set(trainers)):
        model, _, version = ref.partition(":")
        found = _version(client, model, version, ref)
        schema = training_input_schema(found.get("openapi_schema") or {})
        if schema is None:
            raise ProviderError(
                f"trainer {ref}: version {found['id'][:12]} has no TrainingInput schema",
                "is this model trainable? Its versions must define components.schemas."
                "TrainingInput",
            )
        entries[ref] = LockedTrainer(found["id"], schema)
    return Lock(entries)


def is_stale(lock: Lock, trainers: Iterable[str], client: Any = None) -> list[str]:
    """Why `lock` does not fit the manifests' `trainers` (empty: it does). Offline it compares
    names and pinned versions; with `client` it also compares against the service (a newer
    latest version for unpinned trainers, a changed input schema)."""
    refs = sorted(set(trainers))
    reasons = []
    used = set()
    for ref in refs:
        key = lock.key_for(ref)
        if key is None:
            reasons.append(f"{ref} is not in the lock")
        else:
            used.add(key)
    unused = [key for key in lock.trainers if key not in used]
    reasons += [f"{key} is locked but no manifest uses it" for key in unused]
    if client is not None and not reasons:
        fresh = resolve_lock(refs, client)
        for ref in refs:
            old, new = lock.entry(ref), fresh.trainers[ref]
            assert old is not None
            if old.version != new.version:
                reasons.append(
                    f"{ref}: the lock pins {old.version[:12]}, the service has {new.version[:12]}"
                )
            elif dict(old.schema) != dict(new.schema):
                reasons.append(f"{ref}: the training input schema changed")
    return reasons


def training_input_schema(openapi_schema: Mapping[str, Any]) -> dict[str, Any] | None:
    """A version's TrainingInput (legacy trainers: Input) as self-contained JSON Schema."""
    schemas = (openapi_schema.get("components") or {}).get("schemas") or {}
    found = schemas.get("TrainingInput") or schemas.get("Input")
    if not isinstance(found, Mapping):
        return None
    inlined: dict[str, Any] = _inline(found, openapi_schema, 0)
    return inlined


def _version(client: Any, model: str, version: str, ref: str) -> dict[str, Any]:
    """`{"id", "openapi_schema"}` of the version `ref` names (its model's latest when none)."""
    import httpx
    from replicate.exceptions import ReplicateError

    try:
        if not version:
            latest = client.models.get(model).latest_version
            if latest is None:
                raise ProviderError(f"trainer {ref}: the model has no versions")
            return {"id": latest.id, "openapi_schema": latest.openapi_schema}
        if len(version) == 64:
            found = client.models.get(model).versions.get(version)
            return {"id": found.id, "openapi_schema": found.openapi_schema}
        return _version_by_prefix(client, model, version, ref)
    except ReplicateError as exc:
        if exc.status == 404:
            raise ProviderError(
                f"trainer {ref}: not found on Replicate",
                "check owner/name and version; a private model needs its owner's token",
            ) from None
        detail = f"Replicate answered {exc.status}: {exc.detail}"
        raise ProviderError(f"trainer {ref}: {detail}") from None
    except httpx.HTTPError as exc:
        detail = f"cannot reach Replicate ({type(exc).__name__})"
        raise ProviderError(f"trainer {ref}: {detail}") from None


def _version_by_prefix(client: Any, model: str, prefix: str, ref: str) -> dict[str, Any]:
    owner, _, name = model.partition("/")
    url: str | None = f"/v1/models/{owner}/{name}/versions"
    matches = []
    while url:
        page = _get_json(client, url)
        matches += [v for v in page.get("results", []) if str(v.get("id", "")).startswith(prefix)]
        url = page.get("next")
    if len(matches) != 1:
        what = "no version" if not matches else f"{len(matches)} versions"
        raise ProviderError(
            f"trainer {ref}: {what} of {model} starts with {prefix}",
            "write more of the version id, or all of it",
        )
    return dict(matches[0])


def _get_json(client: Any, url: str) -> dict[str, Any]:
    # Raw JSON through the client's HTTP layer: its pydantic models reject some real payloads.
    data: dict[str, Any] = client._request("GET", url).json()
    return data


def _inline(node: Any, root: Mapping[str, Any], depth: int) -> Any:
    if depth > 64:
        raise ProviderError("the training input schema nests $refs too deeply")
    if isinstance(node, list):
        return [_inline(n, root, depth + 1) for n in node]
    if not isinstance(node, Mapping):
        return node
    if isinstance(node.get("$ref"), str) and node["$ref"].startswith("#/"):
        target: Any = root
        for part in node["$ref"][2:].split("/"):
            target = target.get(part) if isinstance(target, Mapping) else None
        if target is None:
            raise ProviderError(f"the training input schema refers to a missing {node['$ref']}")
        rest = {k: v for k, v in node.items() if k != "$ref"}
        return _inline({**target, **rest}, root, depth + 1)
    out = {k: _inline(v, root, depth + 1) for k, v in node.items() if k != "nullable"}
    if node.get("nullable") is True and isinstance(node.get("type"), str):
        out["type"] = [node["type"], "null"]  # OpenAPI 3.0 `nullable` in JSON Schema terms
    return out


# ---- offline input checks ---------------------------------------------------------------------

_ARTICLE = {
    "integer": "an integer",
    "number": "a number",
    "string": "a string",
    "boolean": "true or false",
    "object": "a mapping",
    "array": "a list",
    "null": "null",
}


def check_input(
    input: Mapping[str, Any],
    schema: Mapping[str, Any],
    locate: Locate,
    file: str,
    *,
    job: str = "",
    trainer: str = "",
    data: Collection[str] = (),
) -> list[Problem]:
    """Problems of a job's `input` against a locked TrainingInput schema, each at the line and
    column of the offending key: unknown keys (with a did-you-mean), wrong types, out-of-range
    values, missing required inputs. Values that reference another job's output are checked
    once resolved, at submit time. `data` are the `spec.data` keys: inputs that will hold a
    package's URL (DESIGN §18), so they must be inputs of the trainer, and count as given."""
    properties: Mapping[str, Any] = schema.get("properties") or {}
    whose = f" of {trainer}" if trainer else ""
    problems = []

    def at(path: tuple[str | int, ...], message: str, hint: str = "", under: str = "input") -> None:
        line, col = locate(("spec", under, *path))
        problems.append(Problem(file, line, col, message, hint, job=job))

    for key in data:
        if key not in properties:
            close = difflib.get_close_matches(key, list(properties), n=1, cutoff=0.6)
            hint = (
                f"did you mean {close[0]!r}?"
                if close
                else f"known inputs: {', '.join(sorted(properties)) or '(none)'}"
            )
            at((key,), f"spec.data names {key!r}, not an input{whose}", hint, under="data")

    for key, value in input.items():
        if key not in properties:
            close = difflib.get_close_matches(key, list(properties), n=1, cutoff=0.6)
            hint = (
                f"did you mean {close[0]!r}?"
                if close
                else f"known inputs: {', '.join(sorted(properties)) or '(none)'}"
            )
            at((key,), f"unknown input {key!r}{whose}", hint)
            continue
        if isinstance(value, str) and OUTPUT_REF.search(value):
            continue
        validator = _validator(properties[key])
        for err in sorted(validator.iter_errors(value), key=lambda e: list(map(str, e.path))):
            message, hint = _describe(key, err)
            at((key, *err.absolute_path), message, hint)
    for key in schema.get("required") or []:
        if key not in input and key not in data:
            hint = str(properties.get(key, {}).get("description") or "")
            at((), f"missing required input {key!r}{whose}", hint)
    return problems


def _describe(key: str, err: Any) -> tuple[str, str]:
    name = key + "".join(f"[{p!r}]" for p in err.absolute_path)
    value, limit = err.instance, err.validator_value
    if err.validator == "type":
        wanted = limit if isinstance(limit, list) else [limit]
        expected = " or ".join(_ARTICLE.get(str(t), str(t)) for t in wanted)
        hint = f"got {json.dumps(value)}"
        if isinstance(value, str) and {"number", "integer"} & set(map(str, wanted)):
            try:
                number = float(value)
            except ValueError:
                pass
            else:  # YAML reads 1e-4 (no dot) and quoted numbers as text
                hint += f"; write it as a plain number, such as {number!r}"
        return (
            f"input {name!r} must be {expected}, not {_ARTICLE.get(_json_type(value), '?')}",
            hint,
        )
    if err.validator in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        low, high = (err.schema.get(k) for k in ("minimum", "maximum"))
        allowed = f"allowed: {'...' if low is None else low} to {'...' if high is None else high}"
        side = "below the minimum" if "inimum" in str(err.validator) else "above the maximum"
        return f"input {name!r} is {json.dumps(value)}, {side} {limit}", allowed
    if err.validator == "enum":
        return (
            f"input {name!r} must be one of: {', '.join(json.dumps(v) for v in limit)}",
            f"got {json.dumps(value)}",
        )
    return f"input {name!r}: {err.message}", ""


def _validator(schema: Mapping[str, Any]) -> Any:
    import jsonschema  # type: ignore[import-untyped, unused-ignore]  # loaded only when checking

    return jsonschema.Draft202012Validator(schema)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _where(path: Iterable[Any]) -> str:
    parts = [str(p) for p in path]
    return f"at {'.'.join(parts)}: " if parts else ""
