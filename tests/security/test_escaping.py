"""Escape for the medium (DESIGN §13): a file name, a job's output or a provider's text cannot
forge a workflow command, break out of a markdown code span or table, or drive the terminal."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.support.workspace import UserRepo, explain, manifest
from trainops.errors import Problem
from trainops.render import github_annotations, plan_markdown, problems_text

EVIL = "jobs/evil\n::error file=x::INJECTED`|<!-- trainops:plan -->.yaml"


def test_a_file_name_cannot_forge_a_workflow_command(tmp_path: Path) -> None:
    repo = UserRepo.create(tmp_path, {})
    repo.write(EVIL, "kind: Nope\n")
    for args in (("validate", "--github"), ("plan",)):
        result = repo.trainops(*args)
        assert result.returncode == 1, explain(result)
        lines = (result.stdout + result.stderr).splitlines()
        assert not [line for line in lines if line.startswith("::error file=x")], explain(result)
        assert any("INJECTED" in line for line in lines)
    annotations = github_annotations([Problem(EVIL, 1, 1, "bad")]).splitlines()
    assert len(annotations) == 1 and annotations[0].startswith("::error file=jobs/evil%0A%3A%3A")


def test_markdown_keeps_a_file_name_inside_its_code_span() -> None:
    from trainops.plan import Plan

    problems = [Problem(EVIL, 1, 1, "bad <img src=x> | cell", "see `x`\n# heading")]
    text = plan_markdown(Plan((), {}), 0.0, problems)
    [item] = [line for line in text.splitlines() if "INJECTED" in line]
    # one code span on one line, fenced past its backtick; the text after it inert
    assert item.startswith(
        "- ``jobs/evil\\n::error file=x::INJECTED`|<!-- trainops:plan -->.yaml:1:1``: "
    )
    assert "\\<img src=x\\>" in item and "\n# heading" not in text  # shown, not rendered
    owned = [Problem("jobs/\x1b]0;owned\x07.yaml", 1, 1, "bad \x1b[2J")]
    assert "\x1b" not in problems_text(owned) + github_annotations(owned)


def test_a_jobs_output_is_shown_not_obeyed(tmp_path: Path) -> None:
    script = (
        "print('\\x1b]0;owned\\x07\\x1b[2J::stop-commands::x\\n::add-mask::y\\r\\n  ::error::z')"
    )
    job = manifest("noisy", command=[sys.executable, "-c", script])
    repo = UserRepo.create(tmp_path, {"noisy": job})
    repo.apply_ok()
    [run_id] = repo.run_ids()
    repo.wait_status(run_id, {"succeeded"})
    result = repo.trainops("logs", "noisy")
    assert result.returncode == 0, explain(result)
    assert "\x1b" not in result.stdout and "\x07" not in result.stdout and "\r" not in result.stdout
    assert not [line for line in result.stdout.splitlines() if line.lstrip().startswith("::")]
    assert "add-mask::y" in result.stdout  # still readable


def test_an_unexpected_error_quoting_input_is_escaped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The last boundary, an error trainops did not foresee, may quote anything it was reading
    (a file name, a provider's text): its message and the --debug traceback are escaped too."""
    import trainops.workspace
    from trainops.cli import main

    def broken(root: Path) -> None:
        raise RuntimeError("quoting jobs/x\n::error file=x::INJECTED\x1b]0;title\x07")

    monkeypatch.setattr(trainops.workspace, "validate_workspace", broken)
    for argv in (["validate", "--dir", str(tmp_path)], ["--debug", "validate", "--dir", "."]):
        monkeypatch.chdir(tmp_path)
        assert main(argv) != 0
        err = capsys.readouterr().err
        assert "internal error: RuntimeError: quoting jobs/x\\n::error file=x::INJECTED" in err
        assert "\x1b" not in err and "\x07" not in err
        assert not [line for line in err.splitlines() if line.lstrip().startswith("::")], err


def test_every_control_and_reordering_character_is_shown_escaped() -> None:
    """`line` escapes exactly the C0/C1 controls (Unicode category Cc) and the invisible
    separators and bidirectional controls, over every code point; `block` keeps newline and tab."""
    import unicodedata

    from trainops import escape

    invisible = {0x2028, 0x2029, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)}
    for code in range(0x110000):
        ch = chr(code)
        if unicodedata.category(ch) == "Cs":
            continue  # a lone surrogate is not text a str from a file or an answer can hold
        unsafe = unicodedata.category(ch) == "Cc" or code in invisible
        assert (escape.line(ch) != ch) is unsafe, hex(code)
        assert (escape.block(ch) != ch) is (unsafe and ch not in "\n\t"), hex(code)
    assert escape.line("a\x1b[31m\u202eb\n") == "a\\x1b[31m\\u202eb\\n"
