"""`stray_references` looks only where a set's members fill a reference in; it must find exactly
what a walk of every string of the manifest would (`strings` + `allowed`, spec.input aside)."""

from __future__ import annotations

import random
from typing import Any

from trainops.validate.matrixrefs import MATRIX_START, allowed, stray_references, strings
from trainops.yamlsource import Document

KEYS = ["spec", "input", "hardware", "env", "deliver", "huggingface", "repo", "s3", "uri", "x"]
TEXTS = ["${{ matrix.lr }}", "a-${{matrix.rank}}", "${{ other }}", "plain", "${{ matrix }}"]


def every_string(data: Any) -> set[tuple[Any, ...]]:
    return {
        path
        for path, text, is_key in strings(data, ())
        if not is_key and path[1:2] != ("input",) and allowed(path) and MATRIX_START.search(text)
    }


def tree(rng: random.Random, depth: int) -> Any:
    roll = rng.random()
    if depth == 0 or roll < 0.3:
        return rng.choice([*TEXTS, 3, None, True])
    if roll < 0.45:
        return [tree(rng, depth - 1) for _ in range(rng.randint(0, 3))]
    return {rng.choice(KEYS): tree(rng, depth - 1) for _ in range(rng.randint(0, 4))}


def test_stray_references_finds_what_a_walk_of_every_string_finds() -> None:
    rng = random.Random(28)
    found = 0
    for _ in range(3000):
        spec = tree(rng, 5)
        if rng.random() < 0.5 and isinstance(spec, dict):  # the shapes a manifest has
            spec["deliver"] = [
                {"huggingface": {"repo": rng.choice(TEXTS)}, "s3": {"uri": rng.choice(TEXTS)}}
            ]
            spec["env"] = {"A": rng.choice(TEXTS), "B": rng.choice(TEXTS)}
            spec["hardware"] = rng.choice(TEXTS)
        data = {"apiVersion": "trainops/v1", "spec": spec}
        doc = Document(file="one.yaml", index=0, data=data, text="")
        problems = stray_references(doc)
        expected = every_string(data)
        assert {p.message.split(":", 1)[0] for p in problems} == {
            ".".join(str(part) for part in path) for path in expected
        }
        assert len(problems) == len(expected)
        found += len(expected)
    assert found > 1000  # the cases did hold references where members fill them in
