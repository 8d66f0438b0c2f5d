"""Problems and errors for a terminal (`file:line:col: message`, the hint under it), for
`--output json`, and as GitHub workflow commands (annotations on the diff)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from trainops import escape
from trainops.errors import Problem, TrainopsError


def problems_text(problems: Iterable[Problem]) -> str:
    return "\n".join(problem_text(p) for p in problems)


def problem_text(p: Problem) -> str:
    """`file:line:col: message` and the hint, each one terminal line (a file name can hold a
    newline followed by `::error …`)."""
    text = f"{escape.line(p.location())}: {escape.line(p.message)}"
    return text + (f"\n  hint: {escape.line(p.hint)}" if p.hint else "")


def error_text(exc: TrainopsError) -> str:
    """An error and its hint for a terminal: the message may quote a file or a provider."""
    text = escape.line(exc.message)
    return text + (f"\n  hint: {escape.line(exc.hint)}" if exc.hint else "")


def problem_dict(p: Problem) -> dict[str, Any]:
    return {"file": p.file, "line": p.line, "col": p.col, "message": p.message, "hint": p.hint}


# GitHub shows at most 10 error annotations per step (and 50 per job): actions/toolkit
# `docs/problem-matchers.md`, shared/ref/README.md "Checked against the real clients".
ANNOTATION_LIMIT = 10


def github_annotations(problems: Iterable[Problem]) -> str:
    """Workflow commands (`::error file=…,line=…,col=…::…`) that GitHub shows on the diff: the
    first `ANNOTATION_LIMIT`, then one warning (a separate limit) counting the rest, which the
    log lists in full. An 11th error would be dropped by GitHub without a word."""
    problems = list(problems)
    lines = []
    for p in problems[:ANNOTATION_LIMIT]:
        props = [f"file={escape.workflow_property(p.file)}"]
        if p.line:
            props.append(f"line={p.line}")
        if p.col:
            props.append(f"col={p.col}")
        text = p.message + (f" (hint: {p.hint})" if p.hint else "")
        lines.append(f"::error {','.join(props)}::{escape.workflow_data(text)}")
    rest = len(problems) - ANNOTATION_LIMIT
    if rest > 0:
        lines.append(
            f"::warning title=trainops::{rest} more problem(s) not annotated (GitHub shows "
            f"{ANNOTATION_LIMIT} per step): the step's log lists all {len(problems)}"
        )
    return "\n".join(lines)
