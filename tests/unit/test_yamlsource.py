"""The YAML loader: positions, multi-document files, every class of hostile input (§13)."""

from __future__ import annotations

import itertools
import math
import random
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest

from trainops.yamlsource import MAX_FILE_BYTES, MAX_NODES, load_file, load_text, scalars


def refusal(text: str) -> tuple[int, int, str]:
    """The one problem `text` is refused with, as (line, col, message)."""
    _, problems = load_text(text, "f.yaml")
    assert [p.file for p in problems] == ["f.yaml"]
    return (problems[0].line, problems[0].col, problems[0].message)


NESTED = """\
apiVersion: trainops/v1
spec:
  command: [python, train.py]
  deliver:
    - s3: {uri: s3://b/x}
    - huggingface:
        repo: a/b
"""


@pytest.mark.parametrize(
    ("path", "where"),
    [
        pytest.param(("apiVersion",), (1, 1), id="top-level-key"),
        pytest.param(("spec", "command"), (3, 3), id="nested-key"),
        pytest.param(("spec", "command", 1), (3, 21), id="flow-list-item"),
        pytest.param(("spec", "deliver", 0), (5, 7), id="block-list-item"),
        pytest.param(("spec", "deliver", 1, "huggingface", "repo"), (7, 9), id="key-in-item"),
        pytest.param(("spec", "deliver", 0, "s3", "uri"), (5, 12), id="flow-mapping-key"),
        pytest.param(("spec", "nowhere", 3), (2, 1), id="unknown-path-uses-ancestor"),
        pytest.param((), (1, 1), id="document"),
    ],
)
def test_positions_of_keys_and_items(path: tuple[str | int, ...], where: tuple[int, int]) -> None:
    docs, problems = load_text(NESTED, "f.yaml")
    assert problems == []
    assert docs[0].locate(path) == where


def test_multi_document_file_keeps_indexes_and_positions() -> None:
    text = "a: 1\n---\n---\n# only a comment\n---\nb:\n  - x\n  - y\n"
    docs, problems = load_text(text, "f.yaml")
    assert problems == []
    # empty documents are kept (issue 32): what they mean is the caller's to say, never silence
    assert [(d.index, d.data) for d in docs] == [
        (0, {"a": 1}),
        (1, None),
        (2, None),
        (3, {"b": ["x", "y"]}),
    ]
    assert docs[3].locate(("b", 1)) == (8, 5)
    assert docs[3].problem(("b", 1), "m").location() == "f.yaml:8:5"


def test_a_bad_document_keeps_the_good_ones_before_it() -> None:
    docs, problems = load_text("a: 1\n---\nb: [\n", "f.yaml")
    assert [d.data for d in docs] == [{"a": 1}]
    assert [(p.line, p.message.split(":")[0]) for p in problems] == [(4, "invalid YAML")]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "a: 1\nb: 2\na: 3\n", (3, 1, "duplicate key 'a' (first at line 1)"), id="duplicate-key"
        ),
        pytest.param(
            "x:\n  a: {b: 1, b: 2}\n",
            (2, 13, "duplicate key 'b' (first at line 2)"),
            id="duplicate-key-flow",
        ),
        pytest.param(
            "a: &k b\n*k : 1\nb: 2\n",
            (3, 1, "duplicate key 'b' (first at line 2)"),
            id="duplicate-key-through-alias",
        ),
        pytest.param(
            "a: !!python/object/apply:os.getcwd []\n",
            (1, 4, "tag !!python/object/apply:os.getcwd is not allowed"),
            id="python-object",
        ),
        pytest.param(
            "a: !!python/name:os.system\n",
            (1, 4, "tag !!python/name:os.system is not allowed"),
            id="python-name",
        ),
        pytest.param("a: !Ref other\n", (1, 4, "tag !Ref is not allowed"), id="custom-tag-scalar"),
        pytest.param(
            "a: !thing {x: 1}\n", (1, 4, "tag !thing is not allowed"), id="custom-tag-map"
        ),
        pytest.param("a: !!binary aGk=\n", (1, 4, "tag !!binary is not allowed"), id="binary"),
        pytest.param("a: !!set {x}\n", (1, 4, "tag !!set is not allowed"), id="set"),
        pytest.param(
            "? [a]\n: 1\n", (1, 3, "a mapping key must be a plain value"), id="complex-key"
        ),
        pytest.param("a: *nowhere\n", (1, 4, "unknown alias *nowhere"), id="unknown-alias"),
        pytest.param(
            "d:\n  <<: 5\n", (2, 3, "a merge key (<<) must refer to mappings"), id="merge-of-scalar"
        ),
        pytest.param(
            "b: &b {x: 1}\nd:\n  <<: *b\n  <<: *b\n",
            (4, 3, "duplicate key '<<'"),
            id="merge-key-twice",
        ),
        pytest.param(
            "a: 1\nb: \u00e9\u00e9\x00\n",
            (
                2,
                6,
                "invalid YAML: unacceptable character #x0000: control characters are not allowed",
            ),
            id="nul-after-non-ascii",
        ),
        pytest.param(
            "a:\n\tb: 1\n",
            (
                2,
                1,
                "invalid YAML: while scanning for the next token found "
                "character that cannot start any token",
            ),
            id="tab-indent",
        ),
    ],
)
def test_refused_with_position(text: str, expected: tuple[int, int, str]) -> None:
    assert refusal(text) == expected


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param("a: !!python/object/apply:os.system ['touch {marker}']\n", id="os-system"),
        pytest.param(
            "a: !!python/object/apply:pathlib.Path.touch [!!python/object/apply:"
            "pathlib.Path ['{marker}']]\n",
            id="path-touch",
        ),
        pytest.param(
            "ok: 1\n---\n!!python/object/new:subprocess.Popen [[touch, '{marker}']]: 1\n",
            id="in-key-of-second-document",
        ),
    ],
)
def test_python_tags_are_refused_and_never_executed(tmp_path: Path, payload: str) -> None:
    marker = tmp_path / "executed"
    manifest = tmp_path / "m.yaml"
    manifest.write_text(payload.format(marker=marker))
    _, problems = load_file(manifest, "m.yaml")
    assert [p.message.split(" is not allowed")[0].split(":")[0] for p in problems] == [
        "tag !!python/object/apply" if "apply" in payload else "tag !!python/object/new"
    ]
    assert not marker.exists()


def laughs() -> str:
    """The classic: nine levels of nine aliases, 10**9 strings if expanded."""
    text = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    for prev, name in itertools.pairwise("abcdefghi"):
        text += f"{name}: &{name} [{', '.join([f'*{prev}'] * 9)}]\n"
    return text


def test_billion_laughs_is_refused_in_bounded_memory() -> None:
    tracemalloc.start()
    try:
        where = refusal(laughs())
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert where == (6, 8, f"file expands to more than {MAX_NODES:,} nodes")
    assert peak < 2 * 1024 * 1024


def test_alias_budget_covers_the_whole_file_not_each_document() -> None:
    # 20 documents of 9,195 nodes each (90 aliases of a 101-node list): each one is small, the
    # file is not. The first 10 fit in the budget.
    doc = "a: &a [" + ",".join(["1"] * 100) + "]\nb: [" + ",".join(["*a"] * 90) + "]\n"
    docs, problems = load_text("---\n".join([doc] * 20), "f.yaml")
    assert [p.message for p in problems] == [f"file expands to more than {MAX_NODES:,} nodes"]
    assert len(docs) == 10


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("a: " + "[" * 100_000 + "]" * 100_000 + "\n", id="flow-lists"),
        pytest.param("a: " + "{a: " * 100_000 + "1" + "}" * 100_000 + "\n", id="flow-maps"),
        pytest.param("".join(" " * i + "-\n" for i in range(1_000)), id="block-lists"),
    ],
)
def test_deep_nesting_is_refused_without_crashing(tmp_path: Path, text: str) -> None:
    # In a child process: a crash of the interpreter must fail this test, not the whole run.
    manifest = tmp_path / "deep.yaml"
    manifest.write_text(text)
    code = (
        "import sys; from pathlib import Path; from trainops.yamlsource import load_file\n"
        "docs, problems = load_file(Path(sys.argv[1]), 'deep.yaml')\n"
        "print(len(docs), [p.message for p in problems])"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(manifest)],
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    assert (proc.returncode, proc.stdout) == (0, "0 ['nesting deeper than 64 levels']\n")


@pytest.mark.parametrize(
    ("size", "messages"),
    [
        pytest.param(MAX_FILE_BYTES, [], id="at-the-limit"),
        pytest.param(
            MAX_FILE_BYTES + 1,
            [f"file is {MAX_FILE_BYTES + 1:,} bytes; manifests are limited to {MAX_FILE_BYTES:,}"],
            id="one-byte-over",
        ),
    ],
)
def test_file_size_limit(tmp_path: Path, size: int, messages: list[str]) -> None:
    manifest = tmp_path / "big.yaml"
    head = b"a: 1\n"
    manifest.write_bytes(head + b"#" * (size - len(head) - 1) + b"\n")
    docs, problems = load_file(manifest, "big.yaml")
    assert [p.message for p in problems] == messages
    assert [d.data for d in docs] == ([{"a": 1}] if not messages else [])


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param(b"a: 1\nb: caf\xe9\n", [(2, 7, "file is not valid UTF-8")], id="latin-1"),
        pytest.param(b"\xff\xfea\x00:\x00", [(1, 1, "file is not valid UTF-8")], id="utf-16"),
        pytest.param(b"\xef\xbb\xbfa: 1\n", [], id="utf-8-bom-accepted"),
        # the offending byte is located in the text after the mark (it was 3 bytes off)
        pytest.param(
            b"\xef\xbb\xbfa: 1\nb: caf\xe9\n", [(2, 7, "file is not valid UTF-8")], id="after-bom"
        ),
    ],
)
def test_non_utf8(tmp_path: Path, raw: bytes, expected: list[tuple[int, int, str]]) -> None:
    manifest = tmp_path / "m.yaml"
    manifest.write_bytes(raw)
    _, problems = load_file(manifest, "m.yaml")
    assert [(p.line, p.col, p.message) for p in problems] == expected


@pytest.mark.parametrize(
    ("text", "merged"),
    [
        pytest.param("b: &b {x: 1, y: 2}\nd:\n  <<: *b\n", {"x": 1, "y": 2}, id="one"),
        pytest.param(
            "b: &b {x: 1, y: 2}\nd:\n  <<: *b\n  y: 3\n", {"x": 1, "y": 3}, id="own-key-wins"
        ),
        pytest.param(
            "b: &b {x: 1, y: 2}\nd:\n  y: 3\n  <<: *b\n",
            {"x": 1, "y": 3},
            id="own-key-wins-when-first",
        ),
        pytest.param(
            "b: &b {x: 1}\nc: &c {x: 2, z: 3}\nd:\n  <<: [*b, *c]\n",
            {"x": 1, "z": 3},
            id="list-first-wins",
        ),
        pytest.param("b: &b {x: 1}\nd:\n  '<<': *b\n", {"<<": {"x": 1}}, id="quoted-is-plain-key"),
    ],
)
def test_merge_keys(text: str, merged: dict[str, object]) -> None:
    docs, problems = load_text(text, "f.yaml")
    assert problems == []
    assert docs[0].data["d"] == merged


TOKENS = {
    "replicate": "r8_" + "Ab1" * 10,
    "huggingface": "hf_" + "xY2" * 10,
    "aws": "AKIA" + "ABCDEFGHIJKLMNOP",
    "github-classic": "ghp_" + "a1B2" * 9,
    "github-fine-grained": "github_pat_" + "11ABC_def" * 5,
}


@pytest.mark.parametrize("token", list(TOKENS.values()), ids=list(TOKENS))
@pytest.mark.parametrize(
    ("template", "where"),
    [
        pytest.param("spec:\n  input:\n    key: {token}\n", (3, 10), id="plain"),
        pytest.param("spec:\n  input:\n    - 'Bearer {token}'\n", (3, 7), id="inside-text"),
        pytest.param("a: 1\n---\nspec:\n  {token}: 1\n", (4, 3), id="as-key-second-doc"),
    ],
)
def test_token_looking_values_are_reported_at_their_line(
    token: str, template: str, where: tuple[int, int]
) -> None:
    docs, problems = load_text(template.format(token=token), "f.yaml")
    found = [(p.line, p.col, p.message) for d in docs for p in d.secrets]
    assert (problems, found) == ([], [(*where, "value looks like a secret token")])
    assert token not in repr(docs[-1].secrets)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("{t}: 1\n{t}: 2\n", id="duplicate-key"),
        pytest.param("a: *{t}\n", id="alias"),
        pytest.param("a: !{t} x\n", id="tag"),
    ],
)
def test_refusals_never_echo_a_token(text: str) -> None:
    token = TOKENS["replicate"]
    _, problems = load_text(text.format(t=token), "f.yaml")
    assert len(problems) == 1
    assert token not in str(problems[0])
    assert "<redacted token>" in problems[0].message


@pytest.mark.parametrize(
    "value",
    [
        "r8_short",
        "hf_hub_download",
        "AKIAlowercase0000000",
        "ghp_",
        "github_pat_short",
        "myr8_abcdefghijklmnopqrstuvwxyz",
    ],
)
def test_ordinary_values_are_not_tokens(value: str) -> None:
    docs, problems = load_text(f"a: {value}\n", "f.yaml")
    assert (problems, docs[0].secrets) == ([], [])


@pytest.mark.parametrize(
    ("text", "data"),
    [
        pytest.param("a: 2024-01-31\n", {"a": "2024-01-31"}, id="timestamp-stays-text"),
        pytest.param(
            "a: 0x10\nb: 1.5\nc: null\nd: true\n",
            {"a": 16, "b": 1.5, "c": None, "d": True},
            id="core-scalars",
        ),
        pytest.param("a: !!str 10\n", {"a": "10"}, id="explicit-str"),
    ],
)
def test_plain_data_only(text: str, data: dict[str, object]) -> None:
    docs, problems = load_text(text, "f.yaml")
    assert (problems, docs[0].data) == ([], data)


def test_our_depth_limit_wins_even_where_libyaml_keeps_its_own_cap(tmp_path: Path) -> None:
    # libyaml's own cap (1,000 levels in PyYAML 6.0.4, pinned here where it can be set) stops
    # the file first: it is re-read with the pure-Python parser, and the refusal is still ours,
    # at the same position.
    code = (
        "import yaml; from trainops.yamlsource import load_text\n"
        "setter = getattr(getattr(yaml, '_yaml', None), '_set_max_nest_level', None)\n"
        "setter and setter(1000)\n"
        "docs, problems = load_text('a: ' + '[' * 5000 + ']' * 5000 + '\\n', 'deep.yaml')\n"
        "print([str(p).splitlines()[0] for p in problems])"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=20, check=False
    )
    assert (proc.returncode, proc.stdout) == (
        0,
        "['deep.yaml:1:67: nesting deeper than 64 levels']\n",
    )


def test_no_cyclic_collection_runs_while_a_file_is_loaded() -> None:
    import gc

    text = "".join(f"key{i}: {{a: [1, 2, {{b: c}}], d: e}}\n" for i in range(5000))
    started: list[int] = []

    def record(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started.append(info["generation"])

    gc.collect()
    gc.callbacks.append(record)
    try:
        docs, problems = load_text(text, "big.yaml")
    finally:
        gc.callbacks.remove(record)
    assert not problems and len(docs[0].data) == 5000
    # Tens of thousands of containers allocated: unpaused, dozens of collections ran over them;
    # paused, at most the one the allocations owed runs once loading is done.
    assert len(started) <= 1, started
    assert gc.isenabled()
    assert docs[0].locate(("key4999", "a", 2, "b")) == (5000, 22)


def test_loading_leaves_a_paused_collector_paused() -> None:
    import gc

    gc.disable()
    try:
        load_text("a: 1\n", "a.yaml")
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_positions_past_any_column_width_stay_exact() -> None:
    line = "{a: '" + "x" * 70_000 + "', b: [1, {k: v}]}\n"
    docs, problems = load_text(line, "wide.yaml")
    assert not problems
    assert docs[0].locate(("b", 1, "k")) == (1, line.index("k: v") + 1)


def test_the_scalar_memo_stays_bounded_and_never_changes_a_value() -> None:
    text = "".join(f"k{i}: {i}\n" for i in range(scalars._SEEN_MAX + 5000))
    docs, problems = load_text(text, "many.yaml")
    assert not problems and docs[0].data["k20004"] == 20004
    assert len(scalars._SEEN) <= scalars._SEEN_MAX
    # The same text, quoted or tagged, is still read as what it says.
    docs, _ = load_text("a: 1\nb: '1'\nc: !!str 1\nd: 1.5\ne: yes\nf: null\n", "x.yaml")
    assert docs[0].data == {"a": 1, "b": "1", "c": "1", "d": 1.5, "e": True, "f": None}


def test_a_file_that_loads_keeps_its_text_and_works_positions_out_when_asked() -> None:
    docs, problems = load_text(NESTED + "---\nb:\n  - x\n  - y\n", "f.yaml")
    assert not problems
    assert [d.positions for d in docs] == [None, None]  # none kept per key while loading
    assert docs[1].locate(("b", 1)) == (11, 5)
    assert docs[0].locate(("spec", "deliver", 1, "huggingface", "repo")) == (7, 9)
    # A document without its data (what a validated Job keeps) still locates.
    lean = docs[0].lean()
    assert lean.data is None and lean.locate(("spec", "command", 1)) == (3, 21)


def test_a_validated_job_keeps_neither_the_parsed_data_nor_positions(tmp_path: Path) -> None:
    from trainops.repo import WorkingTree
    from trainops.validate import validate_source

    (tmp_path / "jobs").mkdir()
    (tmp_path / "jobs" / "a.yaml").write_text(
        "apiVersion: trainops/v1\nkind: TrainingJob\nmetadata: {name: a}\n"
        "spec:\n  provider: local\n  command: [python, train.py]\n  after: [nobody]\n"
    )
    (tmp_path / "jobs" / "b.yaml").write_text(
        "apiVersion: trainops/v1\nkind: TrainingJob\nmetadata: {name: b}\n"
        "spec: {provider: local, command: [python, train.py]}\n"
    )
    result = validate_source(WorkingTree(tmp_path))
    job = result.jobs["b"]
    assert job.doc.data is None and job.doc.positions is None
    # A problem found after loading (an unknown upstream) still points at its line and column.
    assert [p.location() for p in result.problems] == ["jobs/a.yaml:7:11"]


def test_values_read_before_are_still_checked_where_they_are_keys() -> None:
    # The loader places values it has read before without looking at them again: a repeated
    # key, a merge key and a token are still refused or reported wherever they stand.
    load_text("a: 1\nb: 2\n<<: {c: 3}\n", "warm.yaml")
    assert refusal("a: 1\nb: 2\na: 2\n") == (3, 1, "duplicate key 'a' (first at line 1)")
    docs, problems = load_text("x: {a: 1}\ny:\n  <<: {a: 2}\n  b: 2\n", "f.yaml")
    assert not problems and docs[0].data == {"x": {"a": 1}, "y": {"a": 2, "b": 2}}
    token = "hf_" + "a" * 30
    for _ in range(2):
        docs, _ = load_text(f"a: {token}\nb: [{token}]\n", "t.yaml")
        assert [p.line for p in docs[0].secrets] == [1, 2]


def _plain_shapes() -> list[str]:
    alphabet = "019-+_:.xbeoEyn~ "
    shapes = ["".join(p) for n in range(1, 4) for p in itertools.product(alphabet, repeat=n)]
    rng = random.Random(13)
    shapes += ["".join(rng.choice(alphabet) for _ in range(rng.randint(4, 8))) for _ in range(3000)]
    shapes += ["0", "-0", "+0", "007", "08", "1_000", "0x1F", "0b101", "0o17", "1:20", "190:20:30"]
    shapes += ["12e3", "1.5", ".5", "1.", ".inf", "-.inf", ".nan", "yes", "No", "on", "OFF", "~"]
    shapes += ["null", "Null", "2001-12-14", "2001-12-14t21:59:43.10-05:00", "<<", "=", "job-1"]
    shapes += ["local", "python", "10m", "-5", "+12", "123456789012345678901234567890", "é1"]
    return shapes


def test_plain_scalars_resolve_as_the_yaml_resolver_says() -> None:
    """Each plain scalar is the value PyYAML's own resolver and constructor make of it (pure
    Python, `SafeLoader`), whatever shortcut the reader takes (timestamps stay text)."""
    import yaml

    constructor = yaml.constructor.SafeConstructor()
    text_tags = {"tag:yaml.org,2002:str", "tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:merge"}
    compared = 0
    for shape in _plain_shapes():
        text = f"v: {shape}\n"
        try:
            node = yaml.compose(text, Loader=yaml.SafeLoader)
        except yaml.YAMLError:
            continue
        if not isinstance(node, yaml.MappingNode) or len(node.value) != 1:
            continue
        scalar = node.value[0][1]
        if not isinstance(scalar, yaml.ScalarNode) or scalar.style is not None:
            continue
        if scalar.tag in text_tags:
            want: object = scalar.value
        else:
            try:
                want = constructor.construct_object(scalar)
            except (ValueError, yaml.constructor.ConstructorError):
                # 0x_ (a number's shape without its digits), = (YAML's "value" key): refused,
                # with a position, never an exception
                [problem] = load_text(text, "x.yaml")[1]
                assert (problem.line, problem.col) == (1, 4), shape
                continue
        loader = scalars.LOADER(text)
        try:
            events = [loader.get_event() for _ in range(5)]
        finally:
            loader.dispose()
        event = events[-1]  # stream, document, mapping start, key, then the value
        assert isinstance(event, yaml.ScalarEvent) and event.value == scalar.value, shape
        got = scalars._construct(loader, event)
        if isinstance(want, float) and math.isnan(want):
            assert isinstance(got, float) and math.isnan(got), shape
        else:
            assert (type(got), got) == (type(want), want), shape
        compared += 1
    assert compared > 4000


@pytest.mark.parametrize("value", ["0x_", "+0b__", "9" * 5000])
def test_a_number_no_int_can_hold_is_a_problem_not_an_exception(value: str) -> None:
    docs, problems = load_text(f"a: 1\nv: {value}\n", "x.yaml")
    assert not docs
    [problem] = problems
    assert (problem.line, problem.col) == (2, 4)
    assert "is not a number trainops can read" in problem.message and problem.hint
    assert len(problem.message) < 120
