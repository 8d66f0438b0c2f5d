"""Rendering of problems, plans and status for terminals, JSON and GitHub workflow commands.

Pure text in, text out: the CLI decides where it goes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from trainops.errors import Problem


def problems_text(problems: Iterable[Problem]) -> str:
    return "\n".join(str(p) for p in problems)


def problem_dict(p: Problem) -> dict[str, Any]:
    return {"file": p.file, "line": p.line, "col": p.col, "message": p.message, "hint": p.hint}


def github_annotations(problems: Iterable[Problem]) -> str:
    """Workflow commands (`::error file=…,line=…,col=…::…`) that GitHub shows on the diff."""
    lines = []
    for p in problems:
        props = [f"file={_prop(p.file)}"]
        if p.line:
            props.append(f"line={p.line}")
        if p.col:
            props.append(f"col={p.col}")
        text = p.message + (f" (hint: {p.hint})" if p.hint else "")
        lines.append(f"::error {','.join(props)}::{_data(text)}")
    return "\n".join(lines)


def _data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _prop(text: str) -> str:
    return _data(text).replace(":", "%3A").replace(",", "%2C")


def to_json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=False, default=str)
