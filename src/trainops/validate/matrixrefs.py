"""`${{ matrix.NAME }}` in a manifest (DESIGN §21, docs/sweeps.md): where a reference may
stand (`ALLOWED`: input, hardware, env, deliver paths), the references of a set's manifest
found and checked (`references`: a known name, well formed, in an allowed place), those a
manifest without a matrix may not hold (`stray_references`), and a member's values substituted
(`substitute`: a whole reference keeps its YAML type, inside text the YAML scalar)."""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Mapping
from typing import Any

from trainops.errors import Problem
from trainops.manifest import MATRIX_REF, scalar_text
from trainops.manifest.fields import MATRIX_BAD, MATRIX_START
from trainops.manifest.sweep import RESERVED
from trainops.yamlsource import Document

Path_ = tuple[str | int, ...]

# Where `${{ matrix.NAME }}` may stand (a path's start; `None` matches any key or index).
ALLOWED: tuple[tuple[str | int | None, ...], ...] = (
    ("spec", "input"),
    ("spec", "hardware"),
    ("spec", "env", None),
    ("spec", "deliver", None, "huggingface", "repo"),
    ("spec", "deliver", None, "s3", "uri"),
)
ALLOWED_TEXT = "spec.input, spec.hardware, spec.env and spec.deliver (huggingface.repo, s3.uri)"


class Refs:
    """Where the manifest uses `${{ matrix.NAME }}`: a tree of the paths to substitute (a
    leaf is the string found there), and every name used."""

    def __init__(self) -> None:
        self.tree: dict[str | int, Any] = {}
        self.names: set[str] = set()
        self.paths: list[Path_] = []

    def add(self, path: Path_, text: str) -> None:
        node = self.tree
        for part in path[1:-1]:  # under "spec"
            node = node.setdefault(part, {})
        node[path[-1]] = _Leaf(text)
        self.paths.append(path)
        self.names.update(m.group(1) for m in MATRIX_REF.finditer(text))


class _Leaf:
    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


def strings(value: Any, path: Path_) -> Iterator[tuple[Path_, str, bool]]:
    """Every string of the document with its path; `True` for a mapping's key."""
    if isinstance(value, str):
        yield path, value, False
    elif isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str):
                yield (*path, key), key, True
            yield from strings(item, (*path, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from strings(item, (*path, i))


def allowed(path: Path_) -> bool:
    for rule in ALLOWED:
        deeper = len(path) > len(rule) and rule[1] == "input"  # anywhere inside spec.input
        if (len(path) == len(rule) or deeper) and all(
            r is None or r == p for r, p in zip(rule, path[: len(rule)], strict=True)
        ):
            return True
    return False


def references(doc: Document, data: dict[str, Any]) -> tuple[Refs, list[Problem]]:
    refs = Refs()
    problems: list[Problem] = []
    matrix = data["spec"].get("matrix")
    known = set()
    if isinstance(matrix, dict):
        known = {k for k in matrix if k not in RESERVED}
        include = matrix.get("include")
        for entry in include if isinstance(include, list) else []:
            if isinstance(entry, dict):
                known.update(k for k in entry if isinstance(k, str))
    for path, text, is_key in strings(data, ()):
        if "${{" not in text or not MATRIX_START.search(text):
            continue
        if MATRIX_BAD.search(text):  # what the schema's SCHEMA_MATRIX_TEXT refuses too
            problems.append(
                doc.problem(
                    path,
                    f"{text!r} is not a matrix reference: write ${{{{ matrix.NAME }}}}",
                    "a reference names one axis; the whole matrix cannot be used",
                )
            )
            continue
        if is_key or not allowed(path) or path[:2] == ("spec", "matrix"):
            where = ".".join(str(p) for p in path)
            problems.append(
                doc.problem(
                    path,
                    f"{where}: ${{{{ matrix.NAME }}}} is not allowed here"
                    + (" (in a key)" if is_key else ""),
                    f"it may stand in values of {ALLOWED_TEXT}",
                )
            )
            continue
        unknown = [m.group(1) for m in MATRIX_REF.finditer(text) if m.group(1) not in known]
        if unknown:
            problems.append(
                doc.problem(
                    path,
                    f"${{{{ matrix.{unknown[0]} }}}}: the matrix has no axis {unknown[0]!r}",
                    _did_you_mean(unknown[0], sorted(known)),
                )
            )
            continue
        refs.add(path, text)
    return refs, problems


def stray_references(doc: Document) -> list[Problem]:
    """A manifest without `spec.matrix` may not hold `${{ matrix.NAME }}` where a set's members
    fill it in (hardware, env, deliver): it would be taken as the text it is, a hardware or a
    bucket that does not exist. (In spec.input it is the text the job gets, as any value.)

    Only the places a member fills in are looked at (`ALLOWED` but spec.input), not every string
    of the manifest: what `strings` would find there and `allowed` let through, at a fraction of
    the walk (issue 28: walking every string was ~0.5 s of validate over 10,000 manifests)."""
    found: list[tuple[Path_, str]] = []
    _strings_at(doc.data, _FILLED_IN, (), found)
    problems = []
    for path, text in found:
        if MATRIX_START.search(text):
            where = ".".join(str(p) for p in path)
            problems.append(
                doc.problem(
                    path,
                    f"{where}: {text!r} reads a matrix, and this manifest has no spec.matrix",
                    "add the spec.matrix it reads from (docs/sweeps.md), or write the value",
                )
            )
    return problems


def _tree(rules: list[tuple[str | int | None, ...]]) -> dict[Any, Any]:
    """Rules as one tree of their steps (`_LEAF` where a rule ends), walked once per manifest."""
    tree: dict[Any, Any] = {}
    for rule in rules:
        node = tree
        for part in rule[:-1]:
            node = node.setdefault(part, {})
            assert node is not _LEAF and (None not in node or len(node) == 1), rule
        node[rule[-1]] = _LEAF
    return tree


_LEAF: Any = object()
# The places a member fills in: ALLOWED but spec.input (any text there is the job's to read).
_FILLED_IN = _tree([rule for rule in ALLOWED if rule[1] != "input"])


def _strings_at(value: Any, tree: Any, path: Path_, found: list[Any]) -> None:
    """Append (path, text) for each string standing exactly where a rule of `tree` ends (`None`:
    any key or index) and holding "${{", what every reference starts with."""
    if tree is _LEAF:
        if isinstance(value, str) and "${{" in value:
            found.append((path, value))
        return
    wild = tree.get(None)
    if isinstance(value, dict):
        if wild is not None:  # no level of ALLOWED names keys beside a wildcard
            for key, item in value.items():
                _strings_at(item, wild, (*path, key), found)
            return
        for key, below in tree.items():
            if key in value:
                _strings_at(value[key], below, (*path, key), found)
    elif isinstance(value, list) and wild is not None:
        for i, item in enumerate(value):
            _strings_at(item, wild, (*path, i), found)


class Missing(Exception):
    def __init__(self, name: str, whole: bool) -> None:
        self.name, self.whole = name, whole


def render(text: str, values: Mapping[str, Any]) -> Any:
    whole = MATRIX_REF.fullmatch(text)
    if whole is not None:
        name = whole.group(1)
        if name not in values:
            raise Missing(name, True)
        return values[name]

    def one(match: Any) -> str:
        name = match.group(1)
        if name not in values:
            raise Missing(name, True)
        value = values[name]
        if isinstance(value, (dict, list)):
            raise Missing(name, False)
        return scalar_text(value)

    return MATRIX_REF.sub(one, text)


def substitute(value: Any, tree: Any, values: Mapping[str, Any]) -> Any:
    if isinstance(tree, _Leaf):
        return render(tree.text, values)
    if isinstance(value, dict):
        copy = dict(value)
        for key, sub in tree.items():
            copy[key] = substitute(value[key], sub, values)
        return copy
    if isinstance(value, list):
        items = list(value)
        for i, sub in tree.items():
            items[i] = substitute(value[i], sub, values)
        return items
    return value


def names_in(text: str | None) -> set[str]:
    return {m.group(1) for m in MATRIX_REF.finditer(text or "")}


def text_at(data: Any, path: Path_) -> str | None:
    value = data
    for part in path:
        try:
            value = value[part]
        except (KeyError, IndexError, TypeError):
            return None
    return value if isinstance(value, str) else None


def _did_you_mean(name: str, names: Any) -> str:
    close = difflib.get_close_matches(name, sorted(names), n=1)
    return f"did you mean {close[0]!r}?" if close else f"axes: {', '.join(names) or 'none'}"
