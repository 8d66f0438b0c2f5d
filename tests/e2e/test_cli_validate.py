"""`trainops validate`, `schema` and `init` run as a user types them, in temporary directories.

Every class of hostile input exits 1, names the file (and line where the fault has one), prints no
traceback, and finishes well inside its bound (DESIGN §12, §13): the CPU time the process took,
which a loaded machine does not change, while the wall clock only has to allow for that machine.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest

from trainops.manifest import json_schemas

PROJECT = Path(__file__).resolve().parents[2]
CPU_BOUND = 5.0  # CPU seconds: the bound on every hostile input, interpreter start included
WALL = 120.0  # seconds of wall clock: room for a machine busy with other work
TOKEN = "r8_" + "Zq9" * 10

GOOD = """\
apiVersion: trainops/v1
kind: TrainingJob
metadata: {name: good}
spec:
  provider: local
  command: [python, train.py]
"""


def trainops(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`trainops ARGS` run to its end, which must take under CPU_BOUND of CPU (user + system,
    from the kernel's account of the finished process: os.wait4)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "trainops", *args], cwd=cwd, env=env, stdout=out, stderr=err
        )
        ended: list[tuple[int, int, resource.struct_rusage]] = []
        waiter = threading.Thread(target=lambda: ended.append(os.wait4(proc.pid, 0)))
        waiter.start()
        waiter.join(WALL)
        if not ended:  # a hang, not a slow machine
            proc.kill()
            waiter.join()
            raise AssertionError(f"trainops {' '.join(args)}: still running after {WALL:.0f} s")
        _pid, status, usage = ended[0]
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        out.seek(0)
        err.seek(0)
        result = subprocess.CompletedProcess(proc.args, proc.returncode, out.read(), err.read())
    cpu = usage.ru_utime + usage.ru_stime
    assert cpu < CPU_BOUND, f"trainops {' '.join(args)}: {cpu:.1f} s of CPU"
    return result


def repo(root: Path, files: dict[str, str | bytes]) -> Path:
    for name, content in {"jobs/good.yaml": GOOD, **files}.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode() if isinstance(content, str) else content)
    return root


def laughs() -> str:
    text = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True):
        text += f"{name}: &{name} [{', '.join([f'*{prev}'] * 9)}]\n"
    return text


def many_small_bombs() -> str:
    # 400 documents of ~87,000 nodes each: each one under the budget, the file far over it.
    doc = GOOD + "  input:\n    a: &a [" + ",".join(["1"] * 300) + "]\n"
    doc += "    b: [" + ",".join(["*a"] * 290) + "]\n"
    return "---\n".join(doc.replace("good", f"j{i}") for i in range(400))


HOSTILE: dict[str, tuple[str | bytes, str]] = {
    "invalid-yaml": ("a: [\n", "jobs/bad.yaml:2:1: invalid YAML"),
    "duplicate-key": (
        GOOD.replace("good", "bad") + "metadata: {}\n",
        "jobs/bad.yaml:7:1: duplicate key 'metadata' (first at line 3)",
    ),
    "python-tag": (
        "a: !!python/object/apply:os.system ['touch {marker}']\n",
        "jobs/bad.yaml:1:4: tag !!python/object/apply:os.system is not allowed",
    ),
    "custom-tag": ("a: !include other.yaml\n", "jobs/bad.yaml:1:4: tag !include is not allowed"),
    "billion-laughs": (laughs(), "jobs/bad.yaml:6:8: file expands to more than 100,000 nodes"),
    "alias-bombs-over-many-documents": (
        many_small_bombs(),
        "file expands to more than 100,000 nodes",
    ),
    "deep-nesting": (
        "a: " + "[" * 100_000 + "]" * 100_000 + "\n",
        "jobs/bad.yaml:1:67: nesting deeper than 64 levels",
    ),
    "over-1MiB": ("# padding\n" * 110_000, "jobs/bad.yaml: file is over 1,048,576 bytes"),
    "non-utf8": (b"a: 1\nb: caf\xe9\n", "jobs/bad.yaml:2:7: file is not valid UTF-8"),
    "nul-bytes": (
        b"a: 1\n\x00\x00\x00\n",
        "jobs/bad.yaml:2:1: invalid YAML: unacceptable character #x0000",
    ),
    "token": (
        GOOD.replace("good", "bad") + f"  input: {{key: {TOKEN}}}\n",
        "jobs/bad.yaml:7:16: value looks like a secret token",
    ),
    "token-as-duplicate-key": (
        f"{TOKEN}: 1\n{TOKEN}: 2\n",
        "jobs/bad.yaml:2:1: duplicate key '<redacted token>'",
    ),
    "not-a-mapping": ("- a\n- b\n", "jobs/bad.yaml:1:1: a manifest must be a mapping"),
    "unknown-provider": (
        GOOD.replace("good", "bad").replace("local", "vertex"),
        "jobs/bad.yaml:5:3: unknown provider 'vertex'",
    ),
}


@pytest.mark.parametrize(("content", "expected"), list(HOSTILE.values()), ids=list(HOSTILE))
def test_hostile_input_exits_1_with_location_and_no_traceback(
    tmp_path: Path, content: str | bytes, expected: str
) -> None:
    marker = tmp_path / "executed"
    if isinstance(content, str):
        content = content.replace("{marker}", str(marker))
    proc = trainops(
        "validate", "--dir", "repo", cwd=repo(tmp_path / "repo", {"jobs/bad.yaml": content}).parent
    )
    assert proc.returncode == 1
    assert expected in proc.stderr
    assert proc.stderr.endswith("\n1 problem(s) in 1 file(s)\n")
    assert "Traceback" not in proc.stdout + proc.stderr
    assert TOKEN not in proc.stdout + proc.stderr
    assert not marker.exists()


def test_two_bad_files_are_both_reported(tmp_path: Path) -> None:
    root = repo(
        tmp_path,
        {
            "jobs/a.yaml": "a: !!python/name:os.system\n",
            "jobs/z/b.yaml": GOOD.replace("good", "Bad_Name"),
        },
    )
    proc = trainops("validate", cwd=root)
    assert proc.returncode == 1
    assert [
        line.split(": ")[0] for line in proc.stderr.splitlines() if line.startswith("jobs/")
    ] == ["jobs/a.yaml:1:4", "jobs/z/b.yaml:3:12"]
    assert proc.stderr.endswith("\n2 problem(s) in 2 file(s)\n")


def test_json_output(tmp_path: Path) -> None:
    root = repo(tmp_path, {"jobs/b.yaml": GOOD.replace("good", "other") + "  retry: 1\n"})
    proc = trainops("validate", "--output", "json", cwd=root)
    assert (proc.returncode, proc.stderr) == (1, "")
    assert json.loads(proc.stdout) == {
        "ok": False,
        "jobs": ["good"],
        "problems": [
            {
                "file": "jobs/b.yaml",
                "line": 7,
                "col": 3,
                "message": "unknown key 'spec.retry'",
                "hint": "did you mean 'retries'?",
            }
        ],
    }


def test_json_output_when_valid(tmp_path: Path) -> None:
    proc = trainops("validate", "-o", "json", cwd=repo(tmp_path, {}))
    assert (proc.returncode, json.loads(proc.stdout)) == (
        0,
        {"ok": True, "jobs": ["good"], "problems": []},
    )


def test_github_annotations(tmp_path: Path) -> None:
    root = repo(tmp_path, {"jobs/a,b.yaml": GOOD.replace("good", "bad") + "metadata: {}\n"})
    proc = trainops("validate", "--github", cwd=root)
    assert proc.returncode == 1
    assert proc.stdout.splitlines() == [
        "::error file=jobs/a%2Cb.yaml,line=7,col=1::duplicate key 'metadata' (first at line 3)"
        " (hint: each key may appear once in a mapping)"
    ]


def test_github_annotations_stop_at_ten_and_count_the_rest(tmp_path: Path) -> None:
    # GitHub shows 10 error annotations per step (actions/toolkit docs/problem-matchers.md,
    # shared/ref/README.md): the rest are counted in one warning, the log lists them all.
    bad = GOOD.replace("good", "bad") + "metadata: {}\n"
    root = repo(tmp_path, {f"jobs/j{i:02}.yaml": bad for i in range(12)})
    proc = trainops("validate", "--github", cwd=root)
    assert proc.returncode == 1
    lines = proc.stdout.splitlines()
    assert [line.split(",")[0] for line in lines[:10]] == [
        f"::error file=jobs/j{i:02}.yaml" for i in range(10)
    ]
    assert lines[10:] == [
        "::warning title=trainops::2 more problem(s) not annotated (GitHub shows 10 per step):"
        " the step's log lists all 12"
    ]
    assert proc.stderr.count("duplicate key 'metadata'") == 12


def test_the_projects_own_repository_validates() -> None:
    proc = trainops("validate", "--dir", str(PROJECT), cwd=PROJECT)
    assert (proc.returncode, proc.stderr) == (0, "")
    assert "job(s) valid" in proc.stdout


def hermetic_git_env(home: Path) -> dict[str, str]:
    # No user identity or config: `init` must commit on a bare CI runner too.
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    return {**env, "HOME": str(home), "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}


def git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=root, capture_output=True, text=True, check=True, timeout=WALL
    ).stdout.strip()


def test_init_then_validate(tmp_path: Path) -> None:
    env = hermetic_git_env(tmp_path)
    created = trainops("init", "demo", cwd=tmp_path, env=env)
    assert (created.returncode, created.stderr) == (0, "")
    validated = trainops("validate", "--dir", "demo", cwd=tmp_path, env=env)
    assert (validated.returncode, validated.stderr) == (0, "")
    demo = tmp_path / "demo"
    assert (git(demo, "rev-list", "--count", "HEAD"), git(demo, "status", "--porcelain")) == (
        "1",
        "",
    )
    assert {
        "trainops.yaml",
        "jobs/tiny-regression.yaml",
        "jobs/portraits-lora.yaml",
        "schemas/trainingjob.v1.json",
    } <= set(git(demo, "ls-files").splitlines())


@pytest.mark.parametrize("name", sorted(json_schemas()))
def test_committed_schema_matches_the_models(name: str) -> None:
    assert (PROJECT / "schemas" / name).read_text() == json_schemas()[name]


def test_schema_check_on_the_project() -> None:
    proc = trainops("schema", "--check", "--dir", str(PROJECT), cwd=PROJECT)
    assert (proc.returncode, proc.stdout) == (0, "schemas are up to date\n")


def test_schema_check_fails_on_a_stale_schema(tmp_path: Path) -> None:
    shutil.copytree(PROJECT / "schemas", tmp_path / "schemas")
    stale = tmp_path / "schemas" / "trainingjob.v1.json"
    stale.write_text(stale.read_text().replace('"maxLength": 63', '"maxLength": 64'))
    proc = trainops("schema", "--check", "--dir", str(tmp_path), cwd=tmp_path)
    assert proc.returncode == 1
    assert f"{stale}: out of date" in proc.stderr
    assert stale.read_text() != json_schemas()["trainingjob.v1.json"]  # --check never writes


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(["validate", "--bogus"], "No such option", id="unknown-option"),
        pytest.param(
            ["validate", "--output", "xml"], "Invalid value for '--output'", id="bad-choice"
        ),
        pytest.param(["validate", "--dir", "missing"], "no such directory", id="missing-dir"),
        pytest.param(["frobnicate"], "No such command 'frobnicate'", id="unknown-command"),
    ],
)
def test_usage_errors_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    proc = trainops(*args, cwd=tmp_path)
    assert proc.returncode == 2
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr


def test_debug_shows_the_traceback_and_keeps_the_exit_code(tmp_path: Path) -> None:
    proc = trainops("--debug", "validate", "--dir", "missing", cwd=tmp_path)
    assert proc.returncode == 2
    assert "Traceback" in proc.stderr
    assert proc.stderr.endswith("no such directory\n")


def test_console_script_is_installed(tmp_path: Path) -> None:
    script = shutil.which("trainops", path=str(Path(sys.executable).parent)) or "trainops"
    proc = subprocess.run(
        [script, "--version"], capture_output=True, text=True, timeout=WALL, check=False
    )
    assert (proc.returncode, proc.stdout) == (0, "trainops, version 0.1.0\n")
