"""The fast read of a plain file (yamlsource/plain.py, issue 28): the same documents as the
composer for every plain file, and no answer (the composer reads it) for anything else."""

from __future__ import annotations

import pytest

from trainops.yamlsource import MAX_DEPTH, MAX_NODES, load_text, plain
from trainops.yamlsource.compose import compose
from trainops.yamlsource.scalars import LOADER

PLAIN = {
    "manifest": (
        "apiVersion: trainops/v1\nkind: TrainingJob\nmetadata:\n  name: a\n"
        "  labels: {team: vision, tier: t1}\nspec:\n  provider: local\n"
        "  command: [python, train.py, --seed, '3']\n  input: {lr: 0.05, steps: 100, on: yes}\n"
        "  budget: {max_duration: 90m}\n  after: [b, c]\n"
    ),
    "documents, empty ones too": "a: 1\n---\n---\n# a comment\n---\nb:\n  - x\n  - [y, {z: ~}]\n",
    "a scalar document": "--- hello\n...\n--- 12\n",
    "a list document": "- 1\n- - 2\n  - 3\n- {}\n- []\n",
    "quoted and block scalars": 'a: "1"\nb: \'x y\'\nc: |\n  line\nd: >\n  folded\ne: ""\n',
    "keys of every type": "7: int\ntrue: bool\n~: null\n2.5: float\n",
    "merge key text as a value": "a: <<\nb: [<<]\n",
    "long values": f"a: {'x' * 200}\nb: https://example.com/{'y' * 80}.zip\n",
    "a timestamp": "when: 2024-05-17\nat: 2024-05-17T10:30:00Z\n",
    "an empty file": "",
    "tag and anchor characters inside values": "url: https://x.io/?a=1&b=2\nmsg: 'hi!'\nc: a!b\n",
    "nested to the limit": "[" * MAX_DEPTH + "]" * MAX_DEPTH,
}


@pytest.mark.parametrize("text", PLAIN.values(), ids=PLAIN.keys())
def test_a_plain_file_reads_as_the_composer_reads_it(text: str) -> None:
    fast = plain.documents(text, "f.yaml")
    docs, problems = compose(LOADER, text, "f.yaml", track=False)
    assert problems == []
    assert fast is not None
    assert [(d.file, d.index, d.data, d.secrets) for d in fast] == [
        (d.file, d.index, d.data, d.secrets) for d in docs
    ]


def test_the_node_limit_is_the_composers() -> None:
    at_limit = "[" + "1, " * (MAX_NODES - 1) + "]"  # the list and its items: MAX_NODES nodes
    assert plain.documents(at_limit, "f.yaml") is not None
    assert plain.documents(at_limit.replace("[", "[1, ", 1), "f.yaml") is None


NOT_PLAIN = {
    "a tag": "a: !!str 1\n",
    "a non-specific tag": "a: ! 1\n",
    "a tag on a mapping": "a: !!map {b: 1}\n",
    "an anchor": "a: &x 1\n",
    "an anchor on a list": "a: &x [1]\n",
    "an alias": "a: &x 1\nb: *x\n",
    "a merge key": "a: &x {b: 1}\nc:\n  <<: *x\n",
    "a merge key without an alias": "c:\n  <<: {b: 1}\n",
    "a quoted merge key (text, as the composer tells)": "'<<': 1\n",
    "a duplicate key": "a: 1\nb: 2\na: 3\n",
    "a duplicate key of a mapping": "a: {}\na: []\n",
    "a number JSON cannot carry": "a: .nan\n",
    "an infinity": "a: [-.inf]\n",
    "a token": f"a: hf_{'x' * 30}\n",
    "a long value with a token": f"a: {'x ' * 40}r8_{'y' * 30}\n",
    "a mapping as a key": "? {a: 1}\n: 2\n",
    "a list as a key": "? [a]\n: 2\n",
    "YAML's value key": "=: 1\n",
    "a value PyYAML cannot construct": "a: !!int 0x_\n",
    "too deep": "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1),
    "invalid YAML": "a: [1,\n",
    "invalid YAML after a document": "a: 1\n---\nb: {\n",
}


@pytest.mark.parametrize("text", NOT_PLAIN.values(), ids=NOT_PLAIN.keys())
def test_anything_else_is_left_to_the_composer(text: str) -> None:
    assert plain.documents(text, "f.yaml") is None
    # and the way in still reads it as before: refused and located, or read with its marks
    docs, problems = load_text(text, "f.yaml")
    assert problems or docs[0].secrets or docs[0].data is not None
    assert all(p.line and p.col for p in problems)
