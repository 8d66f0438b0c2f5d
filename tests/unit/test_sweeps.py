"""Sweeps (DESIGN §21), the core: the manifest models, member names, the expansion of a matrix
into member jobs in validate, its located errors, and the planner seeing members as jobs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.factories import run
from trainops.manifest import (
    Matrix,
    Member,
    Sweep,
    SweepSet,
    member_name,
    revision,
    scalar_text,
    set_of,
)
from trainops.plan import Desired, Limits, Submit, Sync, Target, plan
from trainops.repo import WorkingTree
from trainops.state.model import Health, JobState
from trainops.validate import Validation, validate_source
from trainops.validate.sweep import combinations
from trainops.yamlsource import load_text

NOW = 10_000.0


def test_member_name_is_the_set_a_dot_and_a_suffix_of_its_own_values():
    member = Member("lora", {"learning_rate": 1.0e-4, "rank": 8})
    assert member.name == member_name("lora", {"learning_rate": 1.0e-4, "rank": 8})
    assert member.name.startswith("lora.0-0001-8-")
    assert set_of(member.name) == "lora"
    assert set_of("lora") == ""


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ({"x": 1}, {"x": 1.0}),  # YAML types kept: int and float are different members
        ({"x": 1}, {"x": "1"}),
        ({"x": True}, {"x": "true"}),
        ({"x": "a_b"}, {"x": "a-b"}),  # the same slug, a different hash
        ({"x": 1, "y": 2}, {"x": 2, "y": 1}),
    ],
)
def test_different_values_never_share_a_name(a, b):
    assert member_name("s", a) != member_name("s", b)


def test_the_suffix_ignores_axis_order_and_falls_back_to_a_hash_when_long():
    assert member_name("s", {"a": 1, "b": 2}) == member_name("s", {"b": 2, "a": 1})
    long = member_name("s", {"prompt": "x" * 80})
    assert len(long) == len("s.") + 10 and all(c in "0123456789abcdef" for c in long[2:])
    assert len(member_name("s", {"cfg": {"a": 1}})) == len("s.") + 10


@pytest.mark.parametrize(
    ("value", "text"),
    [(1.0e-4, "0.0001"), (1.0e-5, "1.0e-05"), (True, "true"), (None, "null"), (8, "8"), ("a", "a")],
)
def test_scalar_text_is_what_yaml_writes(value, text):
    assert scalar_text(value) == text


def test_models_of_the_set_settings():
    matrix = Matrix.model_validate({"lr": [1, 2], "include": [{"lr": 3}], "exclude": []})
    assert matrix.axes == {"lr": [1, 2]}
    sweep = Sweep.model_validate(
        {"max_parallel": 2, "select": {"metric": "eval_loss", "goal": "minimize"}}
    )
    assert sweep.max_parallel == 2 and sweep.select is not None
    sweep_set = SweepSet("lora", ("lora.a", "lora.b"), sweep, 20.0)
    assert sweep_set.members == ("lora.a", "lora.b") and sweep_set.promote is None


def test_a_recorded_member_of_a_set_that_does_not_validate_is_invalid_too():
    desired = Desired({}, invalid=frozenset({"lora"}))
    assert desired.is_invalid("lora.0-0001-8-67d14dec05")
    assert desired.is_invalid("lora")
    assert not desired.is_invalid("lora2.x") and not desired.is_invalid("other")


# --- the expansion in validate ------------------------------------------------------------------


def sweep(matrix: str, spec: str = "", name: str = "lora") -> str:
    """A local set; `matrix` is the flow mapping of spec.matrix (line 7), `spec` lines follow."""
    return (
        "apiVersion: trainops/v1\nkind: TrainingJob\n"
        f"metadata: {{name: {name}}}\n"
        "spec:\n  provider: local\n  command: [python, train.py]\n"
        f"  matrix: {matrix}\n" + spec
    )


def validate(root: Path, files: dict[str, str]) -> Validation:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    return validate_source(WorkingTree(root))


def member_values(result: Validation, set_name: str = "lora") -> list[dict[str, Any]]:
    members = result.sets[set_name].members
    return [dict(result.jobs[m].member.values) for m in members]  # type: ignore[union-attr]


@dataclass
class Expansion:
    id: str
    matrix: str
    members: list[dict[str, Any]]


EXPANSIONS = [
    Expansion("one axis", "{rank: [8, 16]}", [{"rank": 8}, {"rank": 16}]),
    Expansion(
        "the product, first axis slowest",
        "{lr: [0.1, 0.2], rank: [8, 16]}",
        [
            {"lr": 0.1, "rank": 8},
            {"lr": 0.1, "rank": 16},
            {"lr": 0.2, "rank": 8},
            {"lr": 0.2, "rank": 16},
        ],
    ),
    Expansion(
        "exclude: a partial match is enough",
        "{lr: [0.1, 0.2], rank: [8, 16], exclude: [{lr: 0.2}]}",
        [{"lr": 0.1, "rank": 8}, {"lr": 0.1, "rank": 16}],
    ),
    Expansion(
        "the brief's example: exclude one, include one of its own",
        "{learning_rate: [1.0e-4, 3.0e-4], rank: [8, 16], "
        "include: [{learning_rate: 1.0e-3, rank: 4}], "
        "exclude: [{learning_rate: 3.0e-4, rank: 16}]}",
        [
            {"learning_rate": 1.0e-4, "rank": 8},
            {"learning_rate": 1.0e-4, "rank": 16},
            {"learning_rate": 3.0e-4, "rank": 8},
            {"learning_rate": 1.0e-3, "rank": 4},
        ],
    ),
    Expansion(
        "include is applied after exclude: an excluded combination comes back on its own",
        "{rank: [8, 16], exclude: [{rank: 16}], include: [{rank: 16}]}",
        [{"rank": 8}, {"rank": 16}],
    ),
    Expansion(
        "include with only axis values that match adds nothing",
        "{rank: [8, 16], include: [{rank: 8}]}",
        [{"rank": 8}, {"rank": 16}],
    ),
    Expansion(
        "only include",
        "{include: [{rank: 4}, {rank: 5}]}",
        [{"rank": 4}, {"rank": 5}],
    ),
    # GitHub's own example (docs.github.com, "Expanding or adding matrix configurations"):
    # fruit/animal axes, include entries that extend, overwrite added values, or stand alone.
    Expansion(
        "GitHub's example",
        "{fruit: [apple, pear], animal: [cat, dog], include: [{color: green}, "
        "{color: pink, animal: cat}, {fruit: apple, shape: circle}, {fruit: banana}, "
        "{fruit: banana, animal: cat}]}",
        [
            {"fruit": "apple", "animal": "cat", "color": "pink", "shape": "circle"},
            {"fruit": "apple", "animal": "dog", "color": "green", "shape": "circle"},
            {"fruit": "pear", "animal": "cat", "color": "pink"},
            {"fruit": "pear", "animal": "dog", "color": "green"},
            {"fruit": "banana"},
            {"fruit": "banana", "animal": "cat"},
        ],
    ),
]


@pytest.mark.parametrize("case", EXPANSIONS, ids=[c.id for c in EXPANSIONS])
def test_expansion(case: Expansion) -> None:
    (doc,), _ = load_text(sweep(case.matrix), "jobs/lora.yaml")
    combos, problems = combinations(doc, Matrix.model_validate(doc.data["spec"]["matrix"]))
    assert problems == []
    assert combos == case.members
    assert [list(c) for c in combos] == [list(m) for m in case.members]  # axis order first


def test_members_are_read_from_the_manifest_as_jobs(tmp_path: Path) -> None:
    matrix = EXPANSIONS[3].matrix
    spec = '  input: {lr: "${{ matrix.learning_rate }}", rank: "${{ matrix.rank }}"}\n'
    result = validate(tmp_path, {"jobs/lora.yaml": sweep(matrix, spec)})
    assert result.problems == []
    assert member_values(result) == EXPANSIONS[3].members
    assert list(result.jobs) == list(result.sets["lora"].members)
    for name, job in result.jobs.items():
        assert set_of(name) == "lora" and job.name == name and job.manifest.metadata.name == name
        assert job.spec.input == {
            "lr": job.member.values["learning_rate"],
            "rank": job.member.values["rank"],
        }  # type: ignore[union-attr]


def test_a_member_without_a_value_a_reference_reads_is_a_located_error(tmp_path: Path) -> None:
    # GitHub gives an empty string; trainops refuses to guess a typed input
    spec = '  input: {c: "${{ matrix.color }}"}\n'
    matrix = "{fruit: [apple], include: [{color: green}, {fruit: banana}]}"
    result = validate(tmp_path, {"jobs/lora.yaml": sweep(matrix, spec)})
    apple, banana = result.sets["lora"].members
    assert list(result.jobs) == [apple] and banana in result.invalid
    assert [(p.line, p.col, p.message) for p in result.problems] == [
        (8, 11, f"member {banana} has no value for matrix.color")
    ]


def test_a_whole_reference_keeps_the_yaml_type_and_a_longer_string_gets_yaml_text(
    tmp_path: Path,
) -> None:
    spec = (
        '  input: {lr: "${{ matrix.lr }}", flag: "${{ matrix.flag }}", '
        'tag: "lr=${{ matrix.lr }} rank=${{ matrix.rank }} ${{ matrix.flag }}", '
        'nested: [{r: "${{ matrix.rank }}"}]}\n'
        '  hardware: "${{ matrix.hw }}"\n'
        '  env: ["${{ matrix.var }}"]\n'
        '  deliver: [{s3: {uri: "s3://bucket/lora/${{ matrix.rank }}/"}}]\n'
    )
    matrix = "{lr: [1.0e-5], rank: [8], flag: [true], hw: [cpu], var: [HF_HOME]}"
    result = validate(tmp_path, {"jobs/lora.yaml": sweep(matrix, spec)})
    assert result.problems == []
    (job,) = result.jobs.values()
    assert job.spec.input == {
        "lr": 1.0e-5,
        "flag": True,
        "tag": "lr=1.0e-05 rank=8 true",
        "nested": [{"r": 8}],
    }
    assert type(job.spec.input["lr"]) is float
    assert job.spec.hardware == "cpu" and job.spec.env == ["HF_HOME"]  # type: ignore[union-attr]
    assert job.spec.deliver[0].s3.uri == "s3://bucket/lora/8/"  # type: ignore[union-attr]
    # the set's own fields stay with the set
    assert job.spec.matrix is None and job.spec.sweep is None and job.spec.promote is None


def test_members_are_jobs_with_their_own_revision_and_the_set_keeps_its_settings(
    tmp_path: Path,
) -> None:
    spec = (
        "  sweep: {max_parallel: 2, select: {metric: eval_loss, goal: minimize}}\n"
        "  budget: {max_duration: 30m, max_cost_usd_total: 20}\n"
        '  input: {lr: "${{ matrix.lr }}", epochs: 3}\n'
    )
    result = validate(tmp_path, {"jobs/lora.yaml": sweep("{lr: [0.1, 0.2]}", spec)})
    assert result.problems == []
    lora = result.sets["lora"]
    assert lora.sweep.max_parallel == 2 and lora.sweep.select is not None
    assert lora.max_cost_usd_total == 20 and lora.axes == ("lr",) and lora.file == "jobs/lora.yaml"
    a, b = (result.jobs[m] for m in lora.members)
    assert a.spec.budget.max_duration == 1800 and a.spec.budget.max_cost_usd_total is None
    assert revision(a.spec) != revision(b.spec)
    # a member's revision is the revision of the same job written by hand
    hand = validate(
        tmp_path / "hand",
        {
            "jobs/x.yaml": "apiVersion: trainops/v1\nkind: TrainingJob\nmetadata: {name: x}\n"
            "spec:\n  provider: local\n  command: [python, train.py]\n"
            "  budget: {max_duration: 30m}\n  input: {lr: 0.1, epochs: 3}\n"
        },
    )
    assert revision(hand.jobs["x"].spec) == revision(a.spec)


def test_adding_a_value_to_an_axis_renames_no_member(tmp_path: Path) -> None:
    before = validate(tmp_path / "1", {"jobs/l.yaml": sweep("{lr: [0.1, 0.2], rank: [8]}")})
    after = validate(tmp_path / "2", {"jobs/l.yaml": sweep("{lr: [0.1, 0.2, 0.3], rank: [8, 16]}")})
    kept = set(before.sets["lora"].members)
    assert kept < set(after.sets["lora"].members)
    reordered = validate(tmp_path / "3", {"jobs/l.yaml": sweep("{rank: [8], lr: [0.2, 0.1]}")})
    assert set(reordered.sets["lora"].members) == kept


@pytest.mark.parametrize(
    ("matrix", "spec", "expected"),
    [
        ("{rank: 8}", "", (7, 12, "axis 'rank' is not a list")),
        ("{rank: []}", "", (7, 12, "axis 'rank' has no values")),
        ("{}", "", (7, 3, "spec.matrix has no axis")),
        (
            "[8, 16]",
            "",
            (7, 3, "spec.matrix is a mapping of axes (name: [values]) and include/exclude"),
        ),
        ("{rank: [8, 16, 8]}", "", (7, 26, "axis 'rank' lists 8 twice (items 1 and 3)")),
        (
            "{rank: [8], exclude: [{rnk: 8}]}",
            "",
            (7, 34, "exclude names 'rnk', which is not an axis of the matrix"),
        ),
        (
            "{rank: [8], include: [{rnak: 4}]}",
            "",
            (7, 34, "include names 'rnak', which is not an axis and no ${{ matrix.rnak }} reads"),
        ),
        (
            "{rank: [8], include: [{rank: 4}, {rank: 4}]}",
            "",
            (7, 44, "include entry is the same combination as include entry 1"),
        ),
        (
            "{rank: [8], exclude: [{rank: 8}]}",
            "",
            (7, 3, "exclude removes every combination: the set has no member"),
        ),
        (
            "{a: [1,2,3,4,5,6,7,8,9,10], b: [1,2,3,4,5,6,7,8,9,10], c: [1,2,3,4,5,6,7,8,9,10,11]}",
            "",
            (7, 3, "the matrix makes 1,100 members; a set has at most 1,000"),
        ),
        (
            "{rank: [8]}",
            '  input: {r: "${{ matrix.rnk }}"}\n',
            (8, 11, "${{ matrix.rnk }}: the matrix has no axis 'rnk'"),
        ),
        (
            "{rank: [8]}",
            '  input: {r: "${{ matrix }}"}\n',
            (8, 11, "'${{ matrix }}' is not a matrix reference: write ${{ matrix.NAME }}"),
        ),
        (
            "{rank: [8]}",
            '  workdir: "w${{ matrix.rank }}"\n',
            (8, 3, "spec.workdir: ${{ matrix.NAME }} is not allowed here"),
        ),
        (
            "{rank: [8]}",
            '  estimate: {duration: "${{ matrix.rank }}"}\n',
            (8, 14, "spec.estimate.duration: ${{ matrix.NAME }} is not allowed here"),
        ),
        (
            "{rank: [8]}",
            '  input: {"${{ matrix.rank }}": 1}\n',
            (
                8,
                11,
                "spec.input.${{ matrix.rank }}: ${{ matrix.NAME }} is not allowed here (in a key)",
            ),
        ),
        (
            "{rank: [8]}",
            '  after: ["${{ matrix.rank }}"]\n',
            (8, 11, "spec.after.0: ${{ matrix.NAME }} is not allowed here"),
        ),
        (
            "{rank: [8]}",
            "  sweep: {max_parallel: 0}\n",
            (8, 11, "spec.sweep.max_parallel: Input should be greater than or equal to 1"),
        ),
        (
            "{rank: [8]}",
            "  budget: {max_cost_usd_total: -1}\n",
            (8, 12, "spec.budget.max_cost_usd_total: Input should be greater than 0"),
        ),
        (
            "{rank: [8]}",
            "  sweep: {select: {metric: eval_loss, goal: lowest}}\n",
            (8, 39, "spec.sweep.select.goal: Input should be 'minimize' or 'maximize'"),
        ),
    ],
)
def test_located_errors_of_a_bad_matrix(
    tmp_path: Path, matrix: str, spec: str, expected: tuple[int, int, str]
) -> None:
    result = validate(tmp_path, {"jobs/lora.yaml": sweep(matrix, spec)})
    assert [(p.line, p.col, p.message) for p in result.problems][:1] == [expected]
    assert all(p.hint for p in result.problems[:1]) or "Input should" in expected[2]
    assert "lora" in result.invalid and not result.jobs and "lora" not in result.sets


def test_a_value_only_some_members_get_wrong_names_the_member(tmp_path: Path) -> None:
    spec = '  hardware: "${{ matrix.hw }}"\n'
    text = sweep("{hw: [ml.g5.2xlarge, gpu]}", spec).replace(
        "provider: local\n  command: [python, train.py]",
        "provider: sagemaker\n  algorithm: xgboost",
    )
    result = validate(tmp_path, {"jobs/lora.yaml": text})
    good, bad = result.sets["lora"].members
    assert list(result.jobs) == [good] and bad in result.invalid and "lora" not in result.invalid
    (problem,) = result.problems
    assert (problem.line, problem.col) == (8, 3)
    assert problem.message.startswith(f"member {bad}: spec.hardware: String should match")


def test_a_problem_of_the_template_is_reported_once(tmp_path: Path) -> None:
    result = validate(tmp_path, {"jobs/lora.yaml": sweep("{rank: [8, 16, 32]}", "  retries: 99\n")})
    assert [(p.line, p.message) for p in result.problems] == [
        (8, "spec.retries: Input should be less than or equal to 10")
    ]
    assert set(result.invalid) == set(result.sets["lora"].members)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("  sweep: {max_parallel: 2}\n", (7, 3, "spec.sweep is only valid with a spec.matrix")),
        (
            "  budget: {max_cost_usd_total: 5}\n",
            (7, 12, "spec.budget.max_cost_usd_total is only valid with a spec.matrix (a sweep)"),
        ),
    ],
)
def test_set_fields_without_a_matrix_are_located_errors(
    tmp_path: Path, spec: str, expected: tuple[int, int, str]
) -> None:
    text = (
        "apiVersion: trainops/v1\nkind: TrainingJob\nmetadata: {name: one}\n"
        "spec:\n  provider: local\n  command: [python, train.py]\n" + spec
    )
    result = validate(tmp_path, {"jobs/one.yaml": text})
    assert [(p.line, p.col, p.message[: len(expected[2])]) for p in result.problems] == [expected]


def test_a_set_name_is_unique_among_jobs_and_sets(tmp_path: Path) -> None:
    job = (
        "apiVersion: trainops/v1\nkind: TrainingJob\nmetadata: {name: lora}\n"
        "spec:\n  provider: local\n  command: [python, train.py]\n"
    )
    result = validate(tmp_path, {"jobs/a.yaml": sweep("{rank: [8]}"), "jobs/b.yaml": job})
    assert {(p.file, p.line) for p in result.problems} == {("jobs/a.yaml", 3), ("jobs/b.yaml", 3)}
    assert not result.jobs and not result.sets and "lora" in result.invalid


# --- the planner: members are jobs ---------------------------------------------------------------


def desired_of(result: Validation) -> Desired:
    targets = {n: Target(j, revision(j.spec)) for n, j in result.jobs.items()}
    return Desired(targets, frozenset(result.invalid), result.complete, sets=result.sets)


def test_plan_submits_each_member_and_growing_an_axis_touches_no_other_member(
    tmp_path: Path,
) -> None:
    spec = '  input: {lr: "${{ matrix.lr }}"}\n'
    first = desired_of(validate(tmp_path / "1", {"jobs/l.yaml": sweep("{lr: [0.1, 0.2]}", spec)}))
    result = plan(first, {}, Limits(), NOW)
    assert [a.job for a in result.actions if isinstance(a, Submit)] == sorted(first.targets)
    # both ran; one value more: only the new member is submitted
    recorded = state_of(first, Health.SUCCEEDED)
    grown = desired_of(
        validate(tmp_path / "2", {"jobs/l.yaml": sweep("{lr: [0.1, 0.2, 0.3]}", spec)})
    )
    again = plan(grown, recorded, Limits(), NOW)
    (new,) = set(grown.targets) - set(first.targets)
    assert [(a.job, a.reason) for a in again.actions] == [(new, "new revision")]


def test_a_member_whose_value_left_the_axis_is_pruned_as_a_deleted_job(tmp_path: Path) -> None:
    spec = '  input: {lr: "${{ matrix.lr }}"}\n'
    first = desired_of(validate(tmp_path / "1", {"jobs/l.yaml": sweep("{lr: [0.1, 0.2]}", spec)}))
    recorded = state_of(first, Health.RUNNING)
    shrunk = desired_of(validate(tmp_path / "2", {"jobs/l.yaml": sweep("{lr: [0.1]}", spec)}))
    (gone,) = set(first.targets) - set(shrunk.targets)
    result = plan(shrunk, recorded, Limits(), NOW)
    assert [(type(a).__name__, a.job, a.reason) for a in result.actions] == [
        ("Cancel", gone, "removed from git")
    ]


def test_members_of_a_set_that_no_longer_validates_are_left_alone(tmp_path: Path) -> None:
    spec = '  input: {lr: "${{ matrix.lr }}"}\n'
    first = desired_of(validate(tmp_path / "1", {"jobs/l.yaml": sweep("{lr: [0.1, 0.2]}", spec)}))
    recorded = state_of(first, Health.RUNNING)
    broken = validate(tmp_path / "2", {"jobs/l.yaml": sweep("{lr: [0.1, 0.1]}", spec)})
    assert broken.problems and "lora" in broken.invalid
    result = plan(desired_of(broken), recorded, Limits(), NOW)
    assert result.actions == ()
    assert {result.jobs[n].sync for n in first.targets} == {Sync.INVALID}


def state_of(desired: Desired, health: Health) -> dict[str, JobState]:
    return {n: JobState(n, (run(t, health),)) for n, t in desired.targets.items()}


# --- every provider takes a member's name --------------------------------------------------------

LONGEST = "s" * 52  # SET_NAME_MAX: its members' names are 63 characters


@pytest.mark.parametrize(
    "name",
    [
        member_name("lora", {"learning_rate": 1.0e-4, "rank": 8}),
        member_name(LONGEST, {"rank": 8}),
        member_name("x" * 30, {"prompt": "a long value " * 5}),
    ],
)
def test_every_provider_takes_a_member_name(name: str) -> None:
    from trainops.providers.huggingface.labels import labels_of
    from trainops.providers.local.records import RUN_ID as LOCAL_RUN_ID
    from trainops.providers.local.records import run_id_for
    from trainops.providers.ray.ids import RUN_ID as RAY_RUN_ID
    from trainops.providers.ray.ids import submission_id
    from trainops.providers.sagemaker.names import NAME, check_run, training_job_name

    assert len(name) <= 63 and name.count(".") == 1
    rev = "0123456789ab"
    sm = training_job_name(name, rev, 1, "github.com/acme/repo")
    assert NAME.match(sm) and len(sm) <= 63 and "." not in sm
    assert check_run(name, run(rev, run_id=sm, outputs={})) == ""
    # two members of one set never share a SageMaker name (the hash is of the whole name)
    assert sm != training_job_name(name + "0", rev, 1, "github.com/acme/repo")
    assert RAY_RUN_ID.match(submission_id(name, rev, 1, "github.com/acme/repo"))
    assert LOCAL_RUN_ID.match(run_id_for(name, rev, 1))
    assert labels_of(name, rev, 1, "h")["trainops-job"] == name  # a label value of <= 63


def test_a_sweeps_name_leaves_room_for_its_members(tmp_path: Path) -> None:
    ok = validate(tmp_path / "1", {"jobs/l.yaml": sweep("{rank: [8]}", name=LONGEST)})
    assert ok.problems == [] and all(len(n) <= 63 for n in ok.jobs)
    long = validate(tmp_path / "2", {"jobs/l.yaml": sweep("{rank: [8]}", name=LONGEST + "s")})
    assert [(p.line, p.message) for p in long.problems] == [
        (3, "a sweep's name is at most 52 characters, not 53")
    ]
