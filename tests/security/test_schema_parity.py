"""The committed JSON Schemas and `validate` agree (issue 32): an editor that checks a manifest
with `schemas/trainingjob.v1.json` (or trainops.yaml with `schemas/config.v1.json`) says yes
exactly when `trainops validate` does, but for the checks only the repository can answer
(`REPOSITORY_ONLY`, listed in docs/manifest.md).

The cases are type mutations of the repository's examples and templates (and of two manifests
that use every field): every node replaced by a string that reads as a bool or a number, a bool,
numbers, an integral float, null, an empty string, an absolute and a too-long path, an empty list
and mapping; every mapping given an unknown key; every key removed. Both sides see the same
document in-process: the schema through the `jsonschema` library, `validate` through the
library's own `validate_source` on an in-memory repository.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from trainops.repo import Entry
from trainops.validate import load_config, validate_source

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = ROOT / "schemas"

# What validate refuses and a static schema cannot know: each is answered by the repository
# (its other files, its trainops.yaml, its other jobs). docs/manifest.md lists the same.
REPOSITORY_ONLY = {
    "ray-hardware": re.compile(r"is not in the Ray hardware table"),  # trainops.yaml's table
    "hf-flavor": re.compile(r"is not a Hugging Face Jobs flavor"),  # the service's flavors
    "after": re.compile(r"after: no job named|a job cannot wait for itself"),  # other jobs
    "promote-target": re.compile(r"promote: "),  # where this job delivers
    # two values of the file JSON Schema cannot relate: a pin's key and what stands there
    "pins": re.compile(r"spec\.digests\.\w+ pins an input|set both in spec\.data and spec\.input"),
    # a sweep's matrix against its references and its combinations (docs/sweeps.md)
    "matrix": re.compile(
        r"(exclude|include) names '|matrix\.\w+ }}: the matrix has no axis|"
        r"\$\{\{ matrix\.NAME }} is not allowed here|has no value for matrix\.|"
        r"the same combination as|exclude removes every combination|the matrix makes [\d,]+ "
        r"members|^[^:]+:\d+:\d+: member [a-z0-9-]+\.[a-z0-9-]+: "
    ),
}

_FULL_HF = """\
apiVersion: trainops/v1
kind: TrainingJob
metadata: {name: hub-job, labels: {team: a}}
spec:
  provider: huggingface
  image: pytorch/pytorch:2.4
  command: [python, train.py]
  hardware: a10g-small
  output_repo: acme/out
  env: [WANDB_API_KEY]
  input: {steps: 10, url: "https://example.com/x.zip"}
  digests: {url: "sha256:0000000000000000000000000000000000000000000000000000000000000000"}
  budget: {max_cost_usd: 2.5, max_duration: 90m}
  estimate: {duration: 1h}
  retries: 2
  rerun: 1
  suspend: false
  deliver:
    - huggingface: {repo: acme/model, private: true}
    - s3: {uri: "s3://acme-models/runs/"}
  promote:
    when: {eval_loss: "< 0.25"}
    to:
      - huggingface: {repo: acme/model, ref: prod, kind: branch}
      - s3: {uri: "s3://acme-models/prod/"}
"""

_FULL_LOCAL = """\
apiVersion: trainops/v1
kind: TrainingJob
metadata: {name: local-job}
spec:
  provider: local
  command: [python, train.py]
  workdir: train
  env: [CUDA_VISIBLE_DEVICES]
  data: {images: data/images/}
  after: [hub-job]
  budget: {max_duration: 600}
"""

_FULL_CONFIG = """\
jobs: ["jobs/**/*.yaml"]
state: {backend: s3, branch: trainops/state, uri: "s3://acme-state/x", remote: origin}
providers:
  replicate: {token_env: REPLICATE_API_TOKEN}
  huggingface: {namespace: acme, default_timeout: 2h}
  local: {runs_dir: .trainops/runs}
  ray:
    output_uri: "s3://acme-runs/ray"
    hardware:
      ray-a100: {num_cpus: 4, num_gpus: 1, memory: 1000, resources: {tpu: 1}, price_per_hour: 2.5}
policy:
  prune: true
  on_change: queue
  allowed_hardware: [gpu-h100]
  allowed_providers: [local, ray]
  max_cost_usd_per_job: 50
  monthly_budget_usd: 500
  max_concurrent_runs: 4
prices_usd_per_second: {gpu-x: 0.001}
github: {status_context: trainops}
"""

LONG = "w" * 300
# What each node is replaced with: what YAML reads as the wrong type, and the values at edges.
REPLACEMENTS: tuple[Any, ...] = (
    "true",
    "no",
    "1",
    "1.5",
    "1_000",
    "",
    "abc",
    True,
    False,
    0,
    1,
    -1,
    2.5,
    3.0,
    600.0,
    None,
    [],
    {},
    ["x"],
    "/etc/passwd",
    "../outside",
    LONG,
    f"a/{LONG}",
)


def _job_bases() -> list[tuple[str, Any]]:
    texts = [(p.relative_to(ROOT).as_posix(), p.read_text()) for p in sorted(ROOT.glob("jobs/*"))]
    templates = sorted((ROOT / "src/trainops/templates/init/jobs").glob("*.yaml"))
    texts += [(p.relative_to(ROOT).as_posix(), p.read_text()) for p in templates]
    for doc in [*sorted((ROOT / "docs").glob("*.md")), ROOT / "README.md"]:
        for i, block in enumerate(re.findall(r"```yaml\n(.*?)```", doc.read_text(), re.S)):
            if "kind: TrainingJob" in block:
                texts.append((f"{doc.name}#{i}", block))
    texts += [("full-huggingface", _FULL_HF), ("full-local", _FULL_LOCAL)]
    return [(name, yaml.safe_load(text)) for name, text in texts]


def _config_bases() -> list[tuple[str, Any]]:
    files = [ROOT / "trainops.yaml", ROOT / "src/trainops/templates/init/trainops.yaml"]
    texts = [(p.relative_to(ROOT).as_posix(), p.read_text()) for p in files]
    texts.append(("full-config", _FULL_CONFIG))
    return [(name, yaml.safe_load(text)) for name, text in texts]


def _paths(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield path
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _paths(value, (*path, i))


def _replaced(data: Any, path: Sequence[Any], value: Any, *, delete: bool = False) -> Any:
    if not path:
        return value
    head, rest = path[0], path[1:]
    copy: Any = dict(data) if isinstance(data, dict) else list(data)
    if delete and not rest:
        del copy[head]
    else:
        copy[head] = _replaced(data[head], rest, value, delete=delete)
    return copy


def mutations(bases: Iterable[tuple[str, Any]]) -> Iterator[tuple[str, Any]]:
    """(what was changed, the changed document) for every base, each distinct document once."""
    seen: set[str] = set()
    for name, base in bases:
        for path in _paths(base):
            if "input" in path[:-1]:
                continue  # spec.input takes any value: only `input` itself is replaced
            where = ".".join(map(str, path)) or "document"
            candidates: list[tuple[str, Any]] = [
                (f"{name}: {where} = {value!r}", _replaced(base, path, value))
                for value in REPLACEMENTS
            ]
            if path and isinstance(path[-1], str):
                candidates.append(
                    (f"{name}: del {where}", _replaced(base, path, None, delete=True))
                )
            node = _at(base, path)
            if isinstance(node, dict) and "input" not in path:  # input takes any key
                candidates.append(
                    (f"{name}: {where}.unknown_key", _replaced(base, path, {**node, "unknwn": 1}))
                )
            for label, doc in candidates:
                key = json.dumps(doc, sort_keys=True, default=str)
                if key not in seen:
                    seen.add(key)
                    yield label, doc


def _at(data: Any, path: Sequence[Any]) -> Any:
    for part in path:
        data = data[part]
    return data


@dataclass(frozen=True)
class MemorySource:
    """A repository of files in memory (the library's `Source` protocol): no disk, no git."""

    files: dict[str, bytes] = field(default_factory=dict)

    @property
    def root(self) -> Path:
        return Path("/nonexistent-parity-repo")

    def entries(self, prefix: str) -> Iterable[Entry]:
        for path in sorted(self.files):
            if not prefix or path == prefix or path.startswith(prefix.rstrip("/") + "/"):
                yield Entry(path)

    def link_target(self, path: str) -> str | None:
        return None

    def read(self, path: str) -> bytes | None:
        return self.files.get(path)

    def read_many(self, paths: Sequence[str]) -> dict[str, bytes | None]:
        return {p: self.files.get(p) for p in paths}


# The job every `after:` of the bases names, and the Ray hardware of the templates: the
# repository the mutated manifest lives in, so that only the mutation can make it wrong.
_COMPANION = yaml.safe_load(_FULL_HF)
_SAMPLES = [
    _COMPANION,
    yaml.safe_load(_FULL_LOCAL),
    yaml.safe_load(_FULL_CONFIG),
    {**_COMPANION, "spec": {**_COMPANION["spec"], "retries": "1"}},
]
_COMPANION_TEXT = json.dumps(_COMPANION).encode()
_CONFIG = (ROOT / "src/trainops/templates/init/trainops.yaml").read_bytes()


@dataclass
class Tally:
    cases: int = 0
    agree: int = 0
    exceptions: dict[str, int] = field(default_factory=dict)
    disagree: list[str] = field(default_factory=list)


def _dump(doc: Any) -> bytes:
    # JSON is YAML (flow style, every string quoted), and much faster to write than block YAML
    return json.dumps(doc).encode()


def _schema(name: str) -> jsonschema.protocols.Validator:
    schema = json.loads((SCHEMAS / name).read_text())
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    # The same schema with its (non-recursive) `#/$defs/...` references written out and its
    # discriminated oneOf read through the discriminator: what it means is unchanged, and
    # resolving thousands of references, and checking a spec against every provider's, is most
    # of jsonschema's time. A sample of the cases checks that both say the same (_SAMPLE_EVERY).
    fast = _discriminated(_inline(schema, schema))
    assert all(cls(fast).is_valid(doc) == cls(schema).is_valid(doc) for doc in _SAMPLES)
    return _Checked(cls(fast), cls(schema))


_SAMPLE_EVERY = 25  # every 25th case is also checked with the schema as committed


@dataclass
class _Checked:
    """`fast`'s answer; on a sample of the calls, the committed schema's too, which must agree."""

    fast: jsonschema.protocols.Validator
    committed: jsonschema.protocols.Validator
    calls: int = 0

    def is_valid(self, doc: Any) -> bool:
        answer = self.fast.is_valid(doc)
        self.calls += 1
        if self.calls % _SAMPLE_EVERY == 1:
            assert self.committed.is_valid(doc) == answer, doc
        return bool(answer)


def _discriminated(node: Any) -> Any:
    """A `oneOf` with a (pydantic, OpenAPI) `discriminator`, jsonschema reads every branch of
    it, as one `if provider is X then X's schema` per branch. The same: each branch is an object
    requiring the property with its own `const` (asserted), so at most one branch can hold and
    "exactly one" is "some branch whose discriminating value the instance has, holds"."""
    if isinstance(node, list):
        return [_discriminated(v) for v in node]
    if not isinstance(node, dict):
        return node
    node = {k: _discriminated(v) for k, v in node.items()}
    if "discriminator" not in node or "oneOf" not in node:
        return node
    prop = node["discriminator"]["propertyName"]
    branches = node.pop("oneOf")
    tags = [b["properties"][prop]["const"] for b in branches]
    assert len(set(tags)) == len(tags) and not {"anyOf", "allOf"} & set(node), node
    assert all(b["type"] == "object" and prop in b["required"] for b in branches), node
    tagged = [
        {"type": "object", "required": [prop], "properties": {prop: {"const": t}}} for t in tags
    ]
    return {
        **node,
        "anyOf": tagged,
        "allOf": [{"if": d, "then": b} for d, b in zip(tagged, branches, strict=True)],
    }


def _inline(node: Any, root: dict[str, Any]) -> Any:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            target = _inline(root["$defs"][ref.removeprefix("#/$defs/")], root)
            if len(node) == 1:
                return target
            # beside other keywords (2020-12), a $ref is one more schema to meet: an allOf
            rest = {k: _inline(v, root) for k, v in node.items() if k != "$ref"}
            return {**rest, "allOf": [target]}
        return {k: _inline(v, root) for k, v in node.items() if k != "$defs"}
    if isinstance(node, list):
        return [_inline(v, root) for v in node]
    return node


def _compare(tally: Tally, label: str, schema_ok: bool, problems: list[str]) -> None:
    tally.cases += 1
    if schema_ok == (not problems):
        tally.agree += 1
        return
    if not schema_ok or not problems:
        tally.disagree.append(f"{label}: schema {'passes' if schema_ok else 'refuses'}; {problems}")
        return
    kinds = {k for p in problems for k, rx in REPOSITORY_ONLY.items() if rx.search(p)}
    explained = all(any(rx.search(p) for rx in REPOSITORY_ONLY.values()) for p in problems)
    if explained:
        for kind in kinds:
            tally.exceptions[kind] = tally.exceptions.get(kind, 0) + 1
    else:
        tally.disagree.append(f"{label}: schema passes; validate says {problems}")


def manifest_parity() -> Tally:
    validator = _schema("trainingjob.v1.json")
    tally = Tally()
    for label, doc in mutations(_job_bases()):
        files = {"trainops.yaml": _CONFIG, "jobs/job.yaml": _dump(doc)}
        if not (isinstance(doc, dict) and doc.get("metadata", {}) == _COMPANION["metadata"]):
            files["jobs/companion.yaml"] = _COMPANION_TEXT
        result = validate_source(MemorySource(files))
        problems = [str(p) for p in result.problems if p.file == "jobs/job.yaml"]
        others = [str(p) for p in result.problems if p.file != "jobs/job.yaml"]
        # A mutated name may collide with the companion's: both say so, neither is the schema's.
        problems += [p for p in others if "is used by" not in p]
        problems = [p for p in problems if "is used by 2 manifests" not in p]
        _compare(tally, label, validator.is_valid(doc), problems)
    return tally


def config_parity() -> Tally:
    validator = _schema("config.v1.json")
    tally = Tally()
    for label, doc in mutations(_config_bases()):
        _config, found = load_config(MemorySource({"trainops.yaml": _dump(doc)}))
        # An empty trainops.yaml (`~`) means every default, for validate as for the schema's
        # reader (a null document is not an instance of the schema: editors do not check it).
        schema_ok = doc is None or validator.is_valid(doc)
        _compare(tally, label, schema_ok, [str(p) for p in found])
    return tally


def test_the_manifest_schema_and_validate_agree() -> None:
    tally = manifest_parity()
    print(f"manifests: {tally.cases} cases, {tally.agree} agree, exceptions {tally.exceptions}")
    assert tally.disagree == [], "\n".join(tally.disagree[:40])
    assert tally.cases > 2000 and tally.agree + sum(tally.exceptions.values()) == tally.cases
    assert set(tally.exceptions) <= set(REPOSITORY_ONLY)


def test_the_config_schema_and_validate_agree() -> None:
    tally = config_parity()
    print(f"config: {tally.cases} cases, {tally.agree} agree, exceptions {tally.exceptions}")
    assert tally.disagree == [], "\n".join(tally.disagree[:40])
    assert tally.cases > 500 and tally.agree == tally.cases


def _set_of(provider: str, values: list[Any], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "trainops/v1",
        "kind": "TrainingJob",
        "metadata": {"name": "sweep"},
        "spec": {"provider": provider, "matrix": {"x": values}, **spec},
    }


def _plain(provider: str, **spec: Any) -> dict[str, Any]:
    doc = _set_of(provider, [], **spec)
    del doc["spec"]["matrix"]
    return doc


_LOCAL = {"command": ["python", "train.py"]}
_SAGEMAKER = {"image": "acme/train:1"}
_REF = "${{ matrix.x }}"

# `${{ matrix.NAME }}` in the fields whose schema has a pattern (issue 30): (what, document,
# the schema's verdict, validate's: True valid, False refused, or the REPOSITORY_ONLY kind it
# refuses by, which the schema cannot know). Each is one validate: cheap beside the mutations.
MATRIX_EXAMPLES: list[tuple[str, Any, bool, bool | str]] = [
    (
        "sagemaker hardware, a whole reference",
        _set_of("sagemaker", ["ml.g5.xlarge", "ml.p4d.24xlarge"], hardware=_REF, **_SAGEMAKER),
        True,
        True,
    ),
    ("env, a whole reference", _set_of("local", ["A", "B"], env=[_REF], **_LOCAL), True, True),
    ("env, inside a name", _set_of("local", ["A", "B"], env=[f"V_{_REF}"], **_LOCAL), True, True),
    (
        "deliver s3, the whole uri",
        _set_of("local", ["s3://acme-a/x", "s3://acme-b/y"], deliver=[{"s3": {"uri": _REF}}]),
        True,
        True,
    ),
    (
        "deliver hub repo, inside the name",
        _set_of("local", ["a", "b"], deliver=[{"huggingface": {"repo": f"acme/m-{_REF}"}}]),
        True,
        True,
    ),
    (
        "deliver hub repo, the whole id",
        _set_of("local", ["acme/a", "acme/b"], deliver=[{"huggingface": {"repo": _REF}}]),
        True,
        True,
    ),
    (
        "deliver s3, a malformed reference in the path",
        _set_of("local", ["a"], deliver=[{"s3": {"uri": "s3://acme-a/${{ matrix }}/"}}]),
        False,
        False,
    ),
    (
        "env, a malformed reference beside a good one",
        _set_of("local", ["A"], env=[f"{_REF}_${{{{ matrix.x.y }}}}"], **_LOCAL),
        False,
        False,
    ),
    (
        "hub image, not a field a member fills in",
        _set_of("huggingface", ["a"], image=_REF, **_LOCAL),
        False,
        False,
    ),
    (
        "deliver hub repo, an axis the matrix lacks",
        _set_of("local", ["a"], deliver=[{"huggingface": {"repo": "acme/${{ matrix.y }}"}}]),
        True,
        "matrix",
    ),
    (
        "sagemaker hardware, values that are no instance type",
        _set_of("sagemaker", [1, "gpu"], hardware=_REF, **_SAGEMAKER),
        True,
        "matrix",
    ),
    ("no matrix: local hardware", _plain("local", hardware=_REF, **_LOCAL), False, False),
    (
        "no matrix: sagemaker hardware",
        _plain("sagemaker", hardware=_REF, **_SAGEMAKER),
        False,
        False,
    ),
    ("no matrix: env", _plain("local", env=[_REF], **_LOCAL), False, False),
    (
        "no matrix: the path of an s3 delivery",
        _plain("local", deliver=[{"s3": {"uri": f"s3://acme-a/{_REF}/"}}], **_LOCAL),
        False,
        False,
    ),
    ("no matrix: input is text", _plain("local", input={"lr": _REF}, **_LOCAL), True, True),
]
for _example in MATRIX_EXAMPLES:
    _example[1]["spec"].setdefault("command", ["python", "train.py"])
    if _example[1]["spec"]["provider"] == "sagemaker":
        del _example[1]["spec"]["command"]


def test_matrix_references_in_patterned_fields_agree() -> None:
    validator = _schema("trainingjob.v1.json")
    tally = Tally()
    for label, doc, schema_ok, verdict in MATRIX_EXAMPLES:
        files = {"trainops.yaml": _CONFIG, "jobs/job.yaml": _dump(doc)}
        problems = [str(p) for p in validate_source(MemorySource(files)).problems]
        assert validator.is_valid(doc) is schema_ok, label
        if isinstance(verdict, bool):
            assert (not problems) is verdict, (label, problems)
        else:
            assert problems and all(REPOSITORY_ONLY[verdict].search(p) for p in problems), label
        _compare(tally, label, schema_ok, problems)
    assert tally.disagree == [], "\n".join(tally.disagree)
    assert tally.cases == len(MATRIX_EXAMPLES)


def test_the_documented_exceptions_are_the_ones_checked() -> None:
    reference = (ROOT / "docs/manifest.md").read_text()
    for kind in REPOSITORY_ONLY:
        assert f"`{kind}`" in reference, kind
