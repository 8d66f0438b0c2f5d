"""Validation of a repository's manifests: semantic checks, located problems, and the
`invalid` / `complete` signals the planner relies on to stay safe (DESIGN §2, §3, §7, §13)."""

from __future__ import annotations

from pathlib import Path

import pytest

from trainops.errors import Problem
from trainops.manifest import Job
from trainops.repo import WorkingTree
from trainops.validate import Validation, validate_source


def local(name: str, extra: str = "") -> str:
    """A valid local manifest; `extra` lines go under `spec:` from line 7 on."""
    return (
        "apiVersion: trainops/v1\nkind: TrainingJob\n"
        f"metadata: {{name: {name}}}\n"
        "spec:\n  provider: local\n  command: [python, train.py]\n" + extra
    )


def replicate(name: str, extra: str = "") -> str:
    """A valid Replicate manifest; `extra` lines go under `spec:` from line 8 on."""
    return (
        "apiVersion: trainops/v1\nkind: TrainingJob\n"
        f"metadata: {{name: {name}}}\n"
        "spec:\n  provider: replicate\n  trainer: acme/trainer:abcdef12\n"
        "  destination: acme/model\n" + extra
    )


def validate(root: Path, files: dict[str, str | bytes]) -> Validation:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode() if isinstance(content, str) else content)
    return validate_source(WorkingTree(root))


def found(result: Validation) -> list[tuple[str, int, int, str]]:
    return [(p.file, p.line, p.col, p.message) for p in result.problems]


def test_valid_repository_with_both_providers_and_multi_document_files(tmp_path: Path) -> None:
    result = validate(
        tmp_path,
        {
            "jobs/a.yaml": local("prep"),
            "jobs/nested/b.yaml": replicate("lora", "  after: [prep]\n") + "---\n" + local("eval"),
            "notes/readme.yaml": "not: [a, manifest",  # outside the jobs glob: never read
        },
    )
    assert (found(result), sorted(result.jobs), result.invalid, result.complete) == (
        [],
        ["eval", "lora", "prep"],
        set(),
        True,
    )
    assert result.files == ["jobs/a.yaml", "jobs/nested/b.yaml"]
    assert result.jobs["eval"].doc.index == 1


def test_jobs_globs_come_from_trainops_yaml(tmp_path: Path) -> None:
    result = validate(
        tmp_path,
        {
            "trainops.yaml": "jobs: ['ml/*.yml']\n",
            "ml/a.yml": local("a"),
            "ml/deeper/b.yml": local("b"),
            "jobs/c.yaml": local("c"),
        },
    )
    assert (result.files, sorted(result.jobs)) == (["ml/a.yml"], ["a"])


@pytest.mark.parametrize("pattern", ["../**/*.yaml", "/etc/*", "jobs/../../*.yaml"])
def test_jobs_globs_never_leave_the_repository(tmp_path: Path, pattern: str) -> None:
    (tmp_path / "outside.yaml").write_text(local("outside"))
    result = validate(tmp_path / "repo", {"trainops.yaml": f"jobs: ['{pattern}']\n"})
    assert [(p.file, p.line, p.col) for p in result.problems] == [("trainops.yaml", 1, 8)]
    assert "leaves the repository" in result.problems[0].message
    assert (result.jobs, result.complete) == ({}, False)


@pytest.mark.parametrize("name", ["a", "a-b", "x1", "1x", "a" * 63])
def test_dns_label_names_accepted(tmp_path: Path, name: str) -> None:
    result = validate(tmp_path, {"jobs/a.yaml": local(name)})
    assert (found(result), list(result.jobs)) == ([], [name])


@pytest.mark.parametrize(
    ("name", "message"),
    [
        pytest.param("Portraits", "String should match pattern", id="uppercase"),
        pytest.param("a_b", "String should match pattern", id="underscore"),
        pytest.param("'a/b'", "String should match pattern", id="slash"),
        pytest.param("'..'", "String should match pattern", id="dot-dot"),
        pytest.param("-a", "String should match pattern", id="leading-dash"),
        pytest.param("a-", "String should match pattern", id="trailing-dash"),
        pytest.param("''", "String should match pattern", id="empty"),
        pytest.param("a" * 64, "String should have at most 63 characters", id="64-chars"),
    ],
)
def test_dns_label_names_refused(tmp_path: Path, name: str, message: str) -> None:
    result = validate(tmp_path, {"jobs/a.yaml": local(name)})
    assert [(p.line, p.col, p.message.split(" '^")[0]) for p in result.problems] == [
        (3, 12, f"metadata.name: {message}")
    ]
    assert result.problems[0].hint.startswith("a DNS label")
    assert result.jobs == {}


@pytest.mark.parametrize(
    ("duration", "seconds"),
    [("90m", 5400), ("2h", 7200), ("1h30m", 5400), ("45s", 45), ("1h0m30s", 3630), ("600", 600)],
)
def test_durations_accepted(tmp_path: Path, duration: str, seconds: int) -> None:
    result = validate(
        tmp_path, {"jobs/a.yaml": local("a", f"  budget: {{max_duration: {duration}}}\n")}
    )
    assert found(result) == []
    assert result.jobs["a"].spec.budget.max_duration == seconds


@pytest.mark.parametrize(
    ("duration", "message"),
    [
        ("1d", "'1d' is not a duration like 90m, 2h or 1h30m"),
        ("1.5h", "'1.5h' is not a duration like 90m, 2h or 1h30m"),
        ("30m1h", "'30m1h' is not a duration like 90m, 2h or 1h30m"),
        ("''", "'' is not a duration like 90m, 2h or 1h30m"),
        ("0m", "a duration must be positive"),
        ("-5", "a duration must be positive"),
        ("true", "a duration is text like 90m, 2h or 1h30m"),
    ],
)
def test_durations_refused(tmp_path: Path, duration: str, message: str) -> None:
    result = validate(
        tmp_path, {"jobs/a.yaml": local("a", f"  budget: {{max_duration: {duration}}}\n")}
    )
    assert found(result) == [("jobs/a.yaml", 7, 12, f"spec.budget.max_duration: {message}")]
    assert result.invalid == {"a"}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            "  budget: {max_cost_usd: 0}\n",
            "spec.budget.max_cost_usd: Input should be greater than 0",
        ),
        (
            "  budget: {max_cost_usd: -5}\n",
            "spec.budget.max_cost_usd: Input should be greater than 0",
        ),
        ("  retries: -1\n", "spec.retries: Input should be greater than or equal to 0"),
        ("  retries: 11\n", "spec.retries: Input should be less than or equal to 10"),
        ("  rerun: -1\n", "spec.rerun: Input should be greater than or equal to 0"),
    ],
    ids=["cost-zero", "cost-negative", "retries-negative", "retries-over-10", "rerun-negative"],
)
def test_budgets_and_counts_are_positive(tmp_path: Path, spec: str, message: str) -> None:
    result = validate(tmp_path, {"jobs/a.yaml": local("a", spec)})
    assert [(p.line, p.message) for p in result.problems] == [(7, message)]


def test_duplicate_names_across_files_are_an_error_for_both(tmp_path: Path) -> None:
    result = validate(tmp_path, {"jobs/a.yaml": local("same"), "jobs/b.yaml": replicate("same")})
    message = "job name 'same' is used by 2 manifests"
    assert found(result) == [("jobs/a.yaml", 3, 12, message), ("jobs/b.yaml", 3, 12, message)]
    assert (
        result.problems[0].hint
        == "names are unique in the repository: jobs/a.yaml:3, jobs/b.yaml:3"
    )
    assert (result.jobs, result.invalid, result.complete) == ({}, {"same"}, True)


@pytest.mark.parametrize(
    ("files", "expected", "valid"),
    [
        pytest.param(
            {"a": local("a", "  after: [b]\n"), "b": local("bee")},
            [("a", 7, 11, "after: no job named 'b'")],
            ["bee"],
            id="after-unknown",
        ),
        pytest.param(
            {"a": local("a", "  after: [a]\n")},
            [("a", 7, 11, "a job cannot wait for itself")],
            [],
            id="after-self",
        ),
        pytest.param(
            {
                "a": local("a", "  after: [b]\n"),
                "b": local("b", "  after: [c]\n"),
                "c": local("c", "  after: [a]\n"),
                "d": local("d", "  after: [a]\n"),
            },
            [(f, 7, 3, "dependency cycle: a -> b -> c -> a") for f in "abc"],
            ["d"],
            id="after-cycle",
        ),
        pytest.param(
            {
                "a": local("a", "  after: [b]\n"),
                "b": local("b", "  after: [a]\n"),
                "c": local("c", "  after: [d]\n"),
                "d": local("d", "  after: [c]\n"),
            },
            [
                ("a", 7, 3, "dependency cycle: a -> b -> a"),
                ("b", 7, 3, "dependency cycle: a -> b -> a"),
                ("c", 7, 3, "dependency cycle: c -> d -> c"),
                ("d", 7, 3, "dependency cycle: c -> d -> c"),
            ],
            [],
            id="two-cycles",
        ),
        pytest.param(
            {
                "a": local("a", "  input: {w: '${{ jobs.b.output.model }}'}\n"),
                "b": local("b", "  after: [a]\n"),
            },
            [
                ("a", 4, 1, "dependency cycle: a -> b -> a"),
                ("b", 7, 3, "dependency cycle: a -> b -> a"),
            ],
            [],
            id="cycle-through-output",
        ),
        pytest.param(
            {
                "a": local("a", "  after: [b, c]\n"),
                "b": local("b", "  after: [d]\n"),
                "c": local("c", "  after: [d]\n"),
                "d": local("d"),
            },
            [],
            ["a", "b", "c", "d"],
            id="diamond-is-fine",
        ),
        pytest.param(
            {"a": local("a", "  after: [b]\n"), "b": local("b", "  bogus: 1\n")},
            [("b", 7, 3, "unknown key 'spec.bogus'")],
            ["a"],
            id="after-invalid-job-ok",
        ),
    ],
)
def test_after(
    tmp_path: Path,
    files: dict[str, str],
    expected: list[tuple[str, int, int, str]],
    valid: list[str],
) -> None:
    result = validate(tmp_path, {f"jobs/{name}.yaml": text for name, text in files.items()})
    assert found(result) == [(f"jobs/{f}.yaml", line, col, m) for f, line, col, m in expected]
    assert sorted(result.jobs) == valid


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        pytest.param("jobs.lora.output.weights", [], id="replicate-weights"),
        pytest.param("jobs.lora.output.version", [], id="replicate-version"),
        pytest.param("jobs.prep.output.anything", [], id="local-names-outputs-at-run-time"),
        pytest.param(
            "jobs.lora.output.weight",
            [(8, 5, "job 'lora' (replicate) has no output 'weight'")],
            id="replicate-unknown-key",
        ),
        pytest.param(
            "jobs.nope.output.weights",
            [(8, 5, "output reference to unknown job 'nope'")],
            id="unknown-job",
        ),
        pytest.param(
            "jobs.user.output.weights", [(8, 5, "a job cannot use its own output")], id="own-output"
        ),
    ],
)
def test_output_references(tmp_path: Path, ref: str, expected: list[tuple[int, int, str]]) -> None:
    result = validate(
        tmp_path,
        {
            "jobs/lora.yaml": replicate("lora"),
            "jobs/prep.yaml": local("prep"),
            "jobs/user.yaml": local("user", f"  input:\n    w: 'weights at ${{{{ {ref} }}}}'\n"),
        },
    )
    assert [(p.line, p.col, p.message) for p in result.problems] == expected
    assert ("user" in result.jobs) == (not expected)


def test_output_reference_adds_an_implicit_after(tmp_path: Path) -> None:
    result = validate(
        tmp_path,
        {
            "jobs/a.yaml": replicate("base"),
            "jobs/c.yaml": local("prep"),
            "jobs/b.yaml": local(
                "eval", "  after: [prep]\n  input:\n    w: ['${{ jobs.base.output.weights }}']\n"
            ),
        },
    )
    assert result.jobs["eval"].upstream() == ["prep", "base"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            local("a").replace("  command: [python, train.py]\n", ""),
            (4, 1, "missing required key 'spec.command'"),
            id="local-command",
        ),
        pytest.param(
            local("a").replace("[python, train.py]", "[]"),
            (6, 3, "spec.command: List should have at least 1 item after validation, not 0"),
            id="local-empty-command",
        ),
        pytest.param(
            replicate("a").replace("  trainer: acme/trainer:abcdef12\n", ""),
            (4, 1, "missing required key 'spec.trainer'"),
            id="replicate-trainer",
        ),
        pytest.param(
            replicate("a").replace("  destination: acme/model\n", ""),
            (4, 1, "missing required key 'spec.destination'"),
            id="replicate-destination",
        ),
        pytest.param(
            replicate("a", "  command: [x]\n"),
            (8, 3, "unknown key 'spec.command'"),
            id="command-on-replicate",
        ),
        pytest.param(
            local("a", "  workdir: ../elsewhere\n"),
            (
                7,
                3,
                "spec.workdir: '../elsewhere' leaves the repository: a workdir is relative to "
                "its root, without '..'",
            ),
            id="workdir-escapes",
        ),
    ],
)
def test_provider_fields(tmp_path: Path, text: str, expected: tuple[int, int, str]) -> None:
    result = validate(tmp_path, {"jobs/a.yaml": text})
    assert [(p.line, p.col, p.message) for p in result.problems] == [expected]
    assert result.invalid == {"a"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            local("a").replace("local", "replicat"),
            (5, 3, "unknown provider 'replicat'", "did you mean 'replicate'?"),
            id="provider-typo",
        ),
        pytest.param(
            local("a").replace("local", "vertex"),
            (
                5,
                3,
                "unknown provider 'vertex'",
                "providers: local, replicate, huggingface, ray, sagemaker",
            ),
            id="provider-unknown",
        ),
        pytest.param(
            local("a").replace("  provider: local\n", ""),
            (
                4,
                1,
                "missing required key 'spec.provider'",
                "providers: local, replicate, huggingface, ray, sagemaker",
            ),
            id="provider-missing",
        ),
        pytest.param(
            local("a").replace("TrainingJob", "Deployment"),
            (2, 1, "unknown kind 'Deployment'", "expected kind: TrainingJob"),
            id="kind",
        ),
        pytest.param(
            local("a").replace("trainops/v1", "trainops/v2"),
            (
                1,
                1,
                "unknown apiVersion 'trainops/v2'",
                "this trainops reads apiVersion: trainops/v1",
            ),
            id="api-version",
        ),
        pytest.param(
            local("a", "  retry: 2\n"),
            (7, 3, "unknown key 'spec.retry'", "did you mean 'retries'?"),
            id="spec-key",
        ),
        pytest.param(
            local("a") + "metdata: {}\n",
            (7, 1, "unknown key 'metdata'", "did you mean 'metadata'?"),
            id="top-key",
        ),
        pytest.param(
            replicate("a", "  destinaton: x/y\n"),
            (8, 3, "unknown key 'spec.destinaton'", "did you mean 'destination'?"),
            id="replicate-key",
        ),
        pytest.param(
            local("a", "  budget: {max_cost: 3}\n"),
            (7, 12, "unknown key 'spec.budget.max_cost'", "did you mean 'max_cost_usd'?"),
            id="budget-key",
        ),
        pytest.param(
            local("a", "  deliver:\n    - huggingface: {repo: a/b, privat: true}\n"),
            (8, 32, "unknown key 'spec.deliver.0.huggingface.privat'", "did you mean 'private'?"),
            id="deliver-key",
        ),
        pytest.param(
            local("a", "  deliver:\n    - gcs: {uri: x}\n"),
            (8, 7, "unknown key 'spec.deliver.0.gcs'", "allowed keys here: huggingface, s3"),
            id="deliver-target",
        ),
    ],
)
def test_unknown_names_are_named(
    tmp_path: Path, text: str, expected: tuple[int, int, str, str]
) -> None:
    result = validate(tmp_path, {"jobs/a.yaml": text})
    assert [(p.line, p.col, p.message, p.hint) for p in result.problems] == [expected]


def test_token_looking_values_are_errors_that_never_echo_the_token(tmp_path: Path) -> None:
    tokens = [
        "r8_" + "x" * 30,
        "hf_" + "y" * 30,
        "AKIAABCDEFGHIJKLMNOP",
        "ghp_" + "z" * 36,
        "github_pat_" + "A1_b" * 10,
    ]
    keys = "".join(f"    k{i}: '{t}'\n" for i, t in enumerate(tokens))
    result = validate(
        tmp_path, {"jobs/a.yaml": local("a", "  input:\n" + keys), "jobs/b.yaml": local("b")}
    )
    assert found(result) == [
        ("jobs/a.yaml", line, 9, "value looks like a secret token") for line in range(8, 13)
    ]
    assert (sorted(result.jobs), result.invalid) == (["b"], {"a"})
    assert not [t for t in tokens if t in repr(result.problems)]


def test_a_token_in_trainops_yaml_is_an_error(tmp_path: Path) -> None:
    token = "ghp_" + "q" * 36
    result = validate(
        tmp_path,
        {"trainops.yaml": f"github: {{status_context: {token}}}\n", "jobs/a.yaml": local("a")},
    )
    assert found(result) == [("trainops.yaml", 1, 26, "value looks like a secret token")]
    assert token not in repr(result.problems)


def test_bad_files_never_hide_the_problems_of_other_files(tmp_path: Path) -> None:
    result = validate(
        tmp_path,
        {
            "jobs/1-syntax.yaml": "a: [\n",
            "jobs/2-latin1.yaml": b"a: caf\xe9\n",
            "jobs/3-big.yaml": "#" * (1024 * 1024 + 1),
            "jobs/4-tag.yaml": "a: !!python/object/apply:os.getcwd []\n",
            "jobs/5-schema.yaml": local("five", "  retry: 1\n"),
            "jobs/6-good.yaml": local("six"),
        },
    )
    assert [(p.file, p.line) for p in result.problems] == [
        ("jobs/1-syntax.yaml", 2),
        ("jobs/2-latin1.yaml", 1),
        ("jobs/3-big.yaml", 0),
        ("jobs/4-tag.yaml", 1),
        ("jobs/5-schema.yaml", 7),
    ]
    assert (list(result.jobs), result.invalid, result.complete) == (["six"], {"five"}, False)


@pytest.mark.parametrize(
    ("files", "invalid", "complete"),
    [
        pytest.param({"a": local("a", "  retry: 1\n")}, {"a"}, True, id="schema-error-named"),
        pytest.param({"a": local("a"), "b": local("a")}, {"a"}, True, id="duplicate-names"),
        pytest.param({"a": local("a", "  after: [zz]\n")}, {"a"}, True, id="semantic-error"),
        pytest.param(
            {"a": local("a", "  input: {t: r8_" + "k" * 30 + "}\n")}, {"a"}, True, id="token"
        ),
        pytest.param({"a": "a: [\n"}, set(), False, id="unparsable"),
        pytest.param({"a": local("a") + "---\nb: [\n"}, set(), False, id="second-doc-unparsable"),
        pytest.param(
            {"a": local("a").replace("{name: a}", "{labels: {}}")},
            set(),
            False,
            id="schema-error-no-name",
        ),
        pytest.param({"a": "- just\n- a list\n"}, set(), False, id="not-a-mapping"),
        pytest.param({"a": local("a"), "trainops": "jobz: []\n"}, set(), False, id="bad-config"),
    ],
)
def test_invalid_and_complete(
    tmp_path: Path, files: dict[str, str], invalid: set[str], complete: bool
) -> None:
    # The planner never cancels an invalid job's run, and prunes only when `complete`.
    paths = {
        ("trainops.yaml" if n == "trainops" else f"jobs/{n}.yaml"): t for n, t in files.items()
    }
    result = validate(tmp_path, paths)
    assert result.problems
    assert (result.invalid, result.complete) == (invalid, complete)
    assert not set(result.jobs) & result.invalid


def test_input_checker_problems_make_the_job_invalid(tmp_path: Path) -> None:
    def check(job: Job) -> list[Problem]:
        if job.name == "b":
            return [job.doc.problem(("spec", "input", "steps"), "steps: must be an integer")]
        return []

    validate(
        tmp_path,
        {
            "jobs/a.yaml": local("a", "  input: {steps: 10}\n"),
            "jobs/b.yaml": local("b", "  input: {steps: ten}\n"),
        },
    )
    result = validate_source(WorkingTree(tmp_path), check_input=check)
    assert found(result) == [("jobs/b.yaml", 7, 11, "steps: must be an integer")]
    assert (list(result.jobs), result.invalid) == (["a"], {"b"})


DELIVERS = "  deliver: [{huggingface: {repo: acme/m}}, {s3: {uri: 's3://models/m/'}}]\n  promote:\n"


@pytest.mark.parametrize(
    ("promote", "where", "message"),
    [
        ("    when: {eval_loss: '<< 0.25'}\n    to: [{s3: {uri: 's3://models/prod/'}}]\n",
         (9, 11), "'<< 0.25' is not a condition: an operator (<=, >=, ==, !=, <, >) and a number"),
        ("    when: {eval_loss: '< low'}\n    to: [{s3: {uri: 's3://models/prod/'}}]\n",
         (9, 11), "the threshold 'low' is not a number"),
        ("    when: {eval_loss: 0.25}\n    to: [{s3: {uri: 's3://models/prod/'}}]\n",
         (9, 11), 'a condition is text like "< 0.25"'),
        ("    to: [{huggingface: {repo: acme/other, ref: prod}}]\n",
         (9, 10), "the Hub repo acme/other is not one this job delivers to"),
        ("    to: [{s3: {uri: 's3://models/m/m/'}}]\n",
         (9, 10), "overlaps where s3://models/m/ delivers each revision"),
        ("    to: [{replicate: {deployment: acme/serve}}]\n",
         (9, 10), "a Replicate deployment serves model versions"),
        ("    to: [{huggingface: {repo: acme/m, ref: main}}]\n",
         (9, 10), "main is where deliveries land"),
        ("    to: [{s3: {uri: 's3://models/prod/'}, replicate: {deployment: a/b}}]\n",
         (9, 10), "names exactly one target"),
        ("    to: []\n", (9, 9), "at least 1 item"),
    ],
    ids=["operator", "threshold", "bare-number", "hub-repo", "s3-overlap", "replicate-local",
         "main", "two-kinds", "no-targets"],
)  # fmt: skip
def test_promote_is_validated_with_file_line_and_column(
    tmp_path: Path, promote: str, where: tuple[int, int], message: str
) -> None:
    result = validate(tmp_path, {"jobs/m.yaml": local("m", DELIVERS + promote)})
    [problem] = result.problems
    assert (problem.file, problem.line) == ("jobs/m.yaml", where[0])
    assert message in problem.message, problem.message
    assert result.invalid == {"m"}


def test_a_promote_with_free_metric_names_and_every_operator_is_valid(tmp_path: Path) -> None:
    promote = (
        "    when: {eval/loss: '< 0.25', acc: '>= 0.9', f1: '> 0.5', n: '== 3', x: '!= 1',"
        " y: '<= 2'}\n"
        "    to: [{huggingface: {repo: acme/m, ref: prod}}, {huggingface: {repo: acme/m,"
        " ref: v1, kind: tag}}, {s3: {uri: 's3://models/prod/'}}]\n"
    )
    result = validate(tmp_path, {"jobs/m.yaml": local("m", DELIVERS + promote)})
    assert result.problems == []
