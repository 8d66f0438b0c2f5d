"""The checks validate makes of a sweep set as a whole (DESIGN §21), table-driven: its `promote`
against every member's deliver targets (as a plain job's promote is checked against its own,
DESIGN §19), and `stop_when` only where members report metrics while they run."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from trainops.repo import WorkingTree
from trainops.validate import Validation, validate_source


def sweep(lines: str, provider: str = "local", name: str = "lora") -> str:
    """A set of two members (`rank: [8, 16]`, line 7) with a select; `lines` follow, at line 9."""
    head = {
        "local": "  provider: local\n  command: [python, train.py]\n",
        "ray": "  provider: ray\n  command: [python, train.py]\n",
        "replicate": "  provider: replicate\n  trainer: acme/t\n  destination: acme/d\n",
    }[provider]
    return (
        "apiVersion: trainops/v1\nkind: TrainingJob\n"
        f"metadata: {{name: {name}}}\nspec:\n{head}"
        "  matrix: {rank: [8, 16]}\n"
        "  sweep: {select: {metric: eval_loss, goal: minimize}}\n" + lines
    )


def validate(root: Path, files: dict[str, str]) -> Validation:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    return validate_source(WorkingTree(root))


@dataclass
class Case:
    id: str
    lines: str
    problems: list[tuple[int, int, str]] = field(default_factory=list)
    refused: str = ""  # "set": the set and every member; "r16": the member of rank 16 only
    provider: str = "local"
    config: str = ""  # trainops.yaml


HUB = "  deliver: [{huggingface: {repo: acme/lora}}]\n"
S3 = "  deliver: [{s3: {uri: 's3://models/sweeps/'}}]\n"
PER_RANK = "  deliver: [{huggingface: {repo: 'acme/lora-${{ matrix.rank }}'}}]\n"
SHARED = "providers:\n  ray: {output_uri: /srv/ray-outputs}\n"


def promote(targets: str) -> str:
    return f"  promote:\n    to: [{targets}]\n"  # the first target is at line 11, column 10


PROMOTES = [
    Case(
        "hub repo every member delivers to",
        HUB + promote("{huggingface: {repo: acme/lora, ref: prod}}"),
    ),
    Case(
        "hub repo no member delivers to",
        HUB + promote("{huggingface: {repo: acme/other, ref: prod}}"),
        [(11, 10, "promote: the Hub repo acme/other is not one any member delivers to")],
        "set",
    ),
    Case(
        "s3 alias with an s3 delivery",
        S3 + promote("{s3: {uri: 's3://models/prod/'}}"),
    ),
    Case(
        "s3 alias and no member has an s3 delivery",
        HUB
        + promote("{huggingface: {repo: acme/lora, ref: prod}}, {s3: {uri: 's3://models/prod/'}}"),
        [(11, 55, "promote: an s3 alias copies the run's S3 delivery, and no member has one")],
        "set",
    ),
    Case(
        "s3 alias on the prefix the members deliver under",
        S3 + promote("{s3: {uri: 's3://models/sweeps/'}}"),
        [(11, 10, "promote: s3://models/sweeps/ overlaps where s3://models/sweeps/ delivers")],
        "set",
    ),
    Case(
        # a member delivers under <uri>/<member>/: the set's name is no member's folder
        "s3 alias under the set's own name",
        S3 + promote("{s3: {uri: 's3://models/sweeps/lora/'}}"),
    ),
    Case(
        "replicate deployment of local members",
        S3 + promote("{replicate: {deployment: acme/serve}}"),
        [(11, 10, "promote: a Replicate deployment serves model versions that Replicate")],
        "set",
    ),
    Case(
        "a member's own repo, from its values: only that member can be promoted there",
        PER_RANK + promote("{huggingface: {repo: acme/lora-16, ref: prod}}"),
        [(11, 10, "member lora.8-")],
        "r8",
    ),
]


STOPS = [
    Case("local members report as they go", "  sweep: {}\n"),
    Case(
        "ray members with a shared output folder",
        "",
        provider="ray",
        config=SHARED,
    ),
    Case(
        "ray members whose outputs go to S3",
        "",
        [(8, 56, "Ray runs whose outputs go to S3 (s3://acme-runs/ray) report no metrics while")],
        "set",
        "ray",
        "providers:\n  ray: {output_uri: 's3://acme-runs/ray'}\n",
    ),
    Case(
        "ray members without an output_uri",
        "",
        [(8, 56, "Ray runs report metrics only through providers.ray.output_uri, which is not")],
        "set",
        "ray",
    ),
    Case(
        "replicate members",
        "",
        [(9, 56, "the replicate provider does not report metrics while a run runs")],
        "set",
        "replicate",
    ),
]


def members(result: Validation) -> dict[str, str]:
    """Member name by its rank, from the names (a refused member is in no table)."""
    names = [n for n in {*result.jobs, *result.invalid} if n.startswith("lora.")]
    return {f"r{n.split('.')[1].split('-')[0]}": n for n in names}


def check(tmp_path: Path, case: Case, text: str) -> None:
    files = {"jobs/lora.yaml": text}
    if case.config:
        files["trainops.yaml"] = case.config
    result = validate(tmp_path, files)
    found = [(p.line, p.col, p.message) for p in result.problems]
    assert len(found) == len(case.problems), found
    for (line, col, message), expected in zip(found, case.problems, strict=True):
        assert (line, col) == expected[:2] and message.startswith(expected[2]), found
    assert all(p.hint for p in result.problems)
    by_rank = members(result)
    assert set(by_rank) == {"r8", "r16"}
    if case.refused == "set":
        assert "lora" not in result.sets and "lora" in result.invalid
        assert not result.jobs and set(by_rank.values()) <= result.invalid
    elif case.refused:
        refused = by_rank[case.refused]
        assert "lora" in result.sets and "lora" not in result.invalid
        assert result.invalid == {refused}
        assert set(result.jobs) == set(by_rank.values()) - {refused}
        assert result.problems[0].message.startswith(f"member {refused}: promote: ")
    else:
        assert "lora" in result.sets and not result.invalid
        assert set(result.jobs) == set(by_rank.values())


@pytest.mark.parametrize("case", PROMOTES, ids=[c.id for c in PROMOTES])
def test_a_sets_promote_is_checked_against_every_members_deliver(
    tmp_path: Path, case: Case
) -> None:
    check(tmp_path, case, sweep(case.lines))


@pytest.mark.parametrize("case", STOPS, ids=[c.id for c in STOPS])
def test_stop_when_only_where_members_report_metrics_while_they_run(
    tmp_path: Path, case: Case
) -> None:
    stop = "  sweep: {select: {metric: eval_loss, goal: minimize}, stop_when: {metric: eval_loss, "
    text = sweep(case.lines, case.provider).replace(
        "  sweep: {select: {metric: eval_loss, goal: minimize}}\n",
        stop + "worse_than_best_by: 0.1}}\n",
    )
    check(tmp_path, case, text.replace("  sweep: {}\n", ""))


def test_a_plain_jobs_promote_is_still_checked_against_its_own_deliver(tmp_path: Path) -> None:
    text = (
        "apiVersion: trainops/v1\nkind: TrainingJob\nmetadata: {name: one}\n"
        "spec:\n  provider: local\n  command: [python, train.py]\n"
        + HUB
        + promote("{huggingface: {repo: acme/other, ref: prod}}")
    )
    result = validate(tmp_path, {"jobs/one.yaml": text})
    assert [(p.line, p.message) for p in result.problems] == [
        (
            9,
            "promote: the Hub repo acme/other is not one this job delivers to (or pushes to as "
            "its output_repo)",
        )
    ]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('  hardware: "${{ matrix.gpu }}"\n', (7, 3, "spec.hardware: '${{ matrix.gpu }}' reads")),
        ('  env: ["${{ matrix.var }}"]\n', (7, 9, "spec.env.0: '${{ matrix.var }}' reads")),
        (
            "  deliver: [{s3: {uri: 's3://models/${{ matrix.rank }}/'}}]\n",
            (7, 19, "spec.deliver.0.s3.uri: 's3://models/${{ matrix.rank }}/' reads"),
        ),
        ('  input: {lr: "${{ matrix.lr }}"}\n', None),  # input is text the job gets
    ],
)
def test_a_matrix_reference_without_a_matrix_is_a_located_error(
    tmp_path: Path, line: str, expected: tuple[int, int, str] | None
) -> None:
    text = (
        "apiVersion: trainops/v1\nkind: TrainingJob\nmetadata: {name: one}\n"
        "spec:\n  provider: local\n  command: [python, train.py]\n" + line
    )
    result = validate(tmp_path, {"jobs/one.yaml": text})
    if expected is None:
        assert result.problems == [] and list(result.jobs) == ["one"]
        return
    [problem] = result.problems
    assert (problem.line, problem.col) == expected[:2]
    assert problem.message.startswith(expected[2]), problem.message
    assert problem.message.endswith("reads a matrix, and this manifest has no spec.matrix")
    assert problem.hint and result.invalid == {"one"} and not result.jobs
