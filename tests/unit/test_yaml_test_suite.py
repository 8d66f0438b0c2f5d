"""The loader against the yaml-test-suite (issue 32): each of its 402 cases either loads through
`load_bytes` (what `validate` reads files with) to the data PyYAML's safe loader builds, or is
refused with a located problem (`file:line:col`). Nothing raises.

The reference is PyYAML's safe loader on the parser trainops reads with: libyaml's
(`CSafeLoader`: the SafeLoader's resolver and constructors over libyaml's events) when PyYAML
has it, else the pure-Python one. Timestamps are compared as text: a manifest keeps a valid
date as written (docs/manifest.md), and the reference still refuses an impossible one.

A refusal is counted as PyYAML's own (the reference refuses the text too) or as a project rule
(`PROJECT_RULES`: what trainops refuses on purpose although PyYAML reads it). PyYAML's two
parsers do not read every case alike (the pure-Python scanner refuses tabs YAML 1.2 allows;
libyaml refuses unknown directives): those cases are listed in `PARSERS_DISAGREE` and follow
the parser trainops uses; a new disagreement fails the test, to be looked at.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from trainops.yamlsource import Document, load_bytes

SUITE = Path(__file__).resolve().parents[1] / "fixtures" / "yaml-test-suite"
CASES: list[dict[str, Any]] = json.loads((SUITE / "cases.json").read_text())

# What trainops refuses although PyYAML reads it (yamlsource.py): tags no manifest may hold
# (!!set, !!binary, !!omap, !!pairs, custom ones), a key given twice, a key that is a mapping
# or list, values JSON cannot carry, and the hostile-input bounds (depth, nodes, recursion).
PROJECT_RULES = {
    "tag": re.compile(r"^tag \S+ is not allowed$|^tag \S+ stands on "),
    "duplicate key": re.compile(r"^duplicate key "),
    "key kind": re.compile(r"^a mapping key must be a plain value$"),
    "not JSON": re.compile(r"is not a number JSON can carry"),
    "bounds": re.compile(r"^nesting deeper than |^file expands to more than "),
    "recursive alias": re.compile(r"^unknown alias \*"),  # an alias inside its own anchor
    "!!value": re.compile(r"reads as YAML's !!value tag"),
}

# Cases PyYAML's pure-Python parser and libyaml read differently (PyYAML 6.0.x). The first
# group: the Python scanner refuses a tab where YAML 1.2 allows one (13 of them are valid YAML
# by the suite), and a few texts YAML 1.2 says are errors that libyaml reads. The second:
# libyaml refuses unknown or 1.3 directives, tabs in block scalars and a flow key the Python
# parser reads. UKK6/2 (`!` alone) is '' on libyaml and null on the Python parser.
PARSERS_DISAGREE = frozenset(
    {
        *("6HB6", "DC7X", "DK95/5", "DK95/7", "HS5T", "J3BT", "JR7V", "K54U", "MUS6/0"),
        *("MUS6/3", "NB6Z", "UV7Q", "WZ62", "X4QW", "Y79Y/2", "Y79Y/3", "UKK6/2"),
        *("2LFX", "4ABK", "6LVF", "96NN/0", "96NN/1", "BEC7", "MUS6/5", "MUS6/6", "R4YG"),
        "Y79Y/1",
    }
)


def _reference_loader(base: Any) -> Any:
    class Reference(base):  # type: ignore[misc,valid-type]
        pass

    def timestamp_as_text(loader: Any, node: yaml.ScalarNode) -> str:
        yaml.SafeLoader.construct_yaml_timestamp(loader, node)  # refuses an impossible date
        return str(node.value)

    Reference.add_constructor("tag:yaml.org,2002:timestamp", timestamp_as_text)
    return Reference


PARSER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # what yamlsource reads with
REFERENCE = _reference_loader(PARSER)
PURE = _reference_loader(yaml.SafeLoader)


def _pyyaml(text: str, loader: Any) -> list[Any] | None:
    """Every document PyYAML builds from `text`, or None when it refuses the text."""
    try:
        return list(yaml.load_all(text, Loader=loader))
    except yaml.YAMLError:
        return None


def _typed(value: Any, depth: int = 0) -> Any:
    """`value` with every type written out: 1, 1.0 and True differ; mappings are unordered."""
    assert depth < 200, "recursive data"
    if isinstance(value, dict):
        items = [(_typed(k, depth + 1), _typed(v, depth + 1)) for k, v in value.items()]
        return ("map", sorted(items, key=repr))
    if isinstance(value, list):
        return ("seq", [_typed(v, depth + 1) for v in value])
    if isinstance(value, float) and math.isnan(value):
        return ("float", "nan")
    return (type(value).__name__, repr(value))


def _walk(node: Any, path: tuple[Any, ...] = ()) -> Any:
    yield path
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _walk(value, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _walk(value, (*path, i))


@dataclass
class Tally:
    cases: int = 0
    equal: int = 0
    refused_by_pyyaml: int = 0
    refused_by_rule: Counter[str] = field(default_factory=Counter)
    parsers_disagree: set[str] = field(default_factory=set)
    wrong: list[str] = field(default_factory=list)


def _located(case_id: str, text: str, problems: list[Any], tally: Tally) -> bool:
    lines = text.count("\n") + 1
    for p in problems:
        if p.file != "case.yaml" or not (1 <= p.line <= lines and p.col >= 1) or not p.message:
            tally.wrong.append(f"{case_id}: refused without a location: {p}")
            return False
    return True


def run_suite() -> Tally:
    tally = Tally()
    for case in CASES:
        case_id, text = case["id"], case["yaml"]
        tally.cases += 1
        expected = _pyyaml(text, REFERENCE)
        pure = _pyyaml(text, PURE)
        if (expected is None) != (pure is None) or (
            expected is not None and pure is not None and _typed(expected) != _typed(pure)
        ):
            tally.parsers_disagree.add(case_id)
        # Anything raised here is an internal error: the test fails on it, naming no case
        # it could hide behind.
        docs, problems = load_bytes(text.encode("utf-8"), "case.yaml")
        if problems:
            if not _located(case_id, text, problems, tally):
                continue
            if expected is None:
                tally.refused_by_pyyaml += 1
                continue
            rules = [r for r, rx in PROJECT_RULES.items() if rx.search(problems[0].message)]
            if rules:
                tally.refused_by_rule[rules[0]] += 1
            else:
                tally.wrong.append(f"{case_id}: PyYAML reads it, we refuse: {problems[0]}")
            continue
        if expected is None:
            tally.wrong.append(f"{case_id}: PyYAML refuses it, we load {[d.data for d in docs]}")
            continue
        got = [d.data for d in docs]
        if _typed(got) != _typed(expected):
            tally.wrong.append(f"{case_id}: we load {got!r}, PyYAML {expected!r}")
            continue
        _every_path_located(case_id, docs, tally)
        tally.equal += 1
    return tally


def _every_path_located(case_id: str, docs: list[Document], tally: Tally) -> None:
    # Positions are worked out on demand by a second, tracking read: it must not fail either.
    for doc in docs:
        for path in _walk(doc.data):
            line, col = doc.locate(path)
            if line < 1 or col < 1:
                tally.wrong.append(f"{case_id}: {path} located at {line}:{col}")


def test_every_case_loads_as_pyyaml_does_or_is_refused_with_a_location() -> None:
    tally = run_suite()
    print(
        f"yaml-test-suite: {tally.cases} cases, {tally.equal} load equal, "
        f"{tally.refused_by_pyyaml} refused as PyYAML refuses, "
        f"{sum(tally.refused_by_rule.values())} refused by a project rule "
        f"{dict(tally.refused_by_rule)}, {len(tally.parsers_disagree)} read differently by "
        "PyYAML's two parsers, 0 internal errors"
    )
    assert tally.wrong == [], "\n".join(tally.wrong[:40])
    assert tally.cases == len(CASES) == 402
    assert tally.equal + tally.refused_by_pyyaml + sum(tally.refused_by_rule.values()) == 402
    assert tally.equal > 200 and tally.refused_by_pyyaml > 100  # the suite did run through
    new = tally.parsers_disagree - PARSERS_DISAGREE
    assert not new, f"PyYAML's parsers now read these differently: {sorted(new)}"


def test_the_vendored_suite_carries_its_license() -> None:
    license_text = (SUITE / "LICENSE").read_text()
    assert "MIT License" in license_text and "Permission is hereby granted" in license_text
    readme = (SUITE / "README.md").read_text()
    assert "tests/unit/test_yaml_test_suite.py" in readme and "LICENSE" in readme
