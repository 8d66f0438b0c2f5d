"""Reading a saved plan a user hands over (DESIGN §20): a file that may have been edited,
truncated or brought from elsewhere gives one located problem (`file:line:col`), never a
traceback (`load`, which `show` uses); `apply FILE` reads it in one pass of pydantic's JSON
parser and only reads a file that does not validate again to say where and why
(`load_to_apply`)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from json.decoder import scanstring  # type: ignore[attr-defined]

from pydantic import ValidationError

from trainops.errors import InvalidInput, Problem
from trainops.savedplan.digest import digest_of
from trainops.savedplan.model import FORMAT, MAX_BYTES, AppliedPlan, SavedPlanDoc


def load(raw: bytes, file: str) -> SavedPlanDoc:
    """The saved plan in `raw`, or `InvalidInput` with one located problem: not JSON (a
    truncated file: where it ends), not a plan (the first wrong field, at its line and
    column), or edited after trainops wrote it (the digest)."""
    hint = "make it again with `trainops plan --out FILE`"
    if len(raw) > MAX_BYTES:
        raise InvalidInput([Problem(file, message=f"larger than {MAX_BYTES} bytes", hint=hint)])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line, col = _line_col(raw[: exc.start].decode("utf-8", "replace"), exc.start)
        raise InvalidInput([Problem(file, line, col, "not UTF-8 text", hint)]) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        problem = Problem(file, exc.lineno, exc.colno, f"not a plan file: {exc.msg}", hint)
        raise InvalidInput([problem]) from None
    except RecursionError:
        raise InvalidInput([Problem(file, message="nested too deeply", hint=hint)]) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        where = _locate(text, ("format",)) if isinstance(data, dict) else (1, 1)
        message = f"not a trainops plan file (format must be {FORMAT!r})"
        raise InvalidInput([Problem(file, *where, message, hint)])
    try:
        doc = SavedPlanDoc.model_validate(data, strict=False)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        path = tuple(first["loc"])
        line, col = _locate(text, path)
        field = ".".join(str(p) for p in path) or "the document"
        problem = Problem(file, line, col, f"{field}: {first['msg']}", hint)
        raise InvalidInput([problem]) from None
    _check_digest(raw, text, doc.digest, file)
    return doc


def load_to_apply(raw: bytes, file: str) -> AppliedPlan:
    """What `apply FILE` checks, read in one pass of pydantic's own JSON parser; a file that
    does not validate is read again by `load`, to say where and why."""
    if len(raw) <= MAX_BYTES:
        try:
            doc = AppliedPlan.model_validate_json(raw)
        except ValidationError:
            pass
        else:
            _check_digest(raw, None, doc.digest, file)
            return doc
    load(raw, file)  # raises the located problem
    raise InvalidInput([Problem(file, message="not a trainops plan file")])


def _check_digest(raw: bytes, text: str | None, digest: str, file: str) -> None:
    if digest_of(raw) == digest:
        return
    text = raw.decode("utf-8", "replace") if text is None else text
    line, col = _locate(text, ("digest",))
    message = "the plan was changed after trainops wrote it (its digest does not match)"
    hint = "make it again with `trainops plan --out FILE`"
    raise InvalidInput([Problem(file, line, col, message, hint)])


def _line_col(text: str, pos: int) -> tuple[int, int]:
    line = text.count("\n", 0, pos) + 1
    return line, pos - (text.rfind("\n", 0, pos) + 1) + 1


def _locate(text: str, path: Sequence[str | int]) -> tuple[int, int]:
    """Line and column of the value at `path` in JSON `text` (or of the deepest part of it
    that exists): walked with the standard decoder, only when a problem is reported."""
    decoder = json.JSONDecoder()
    ws = " \t\n\r"
    pos = 0

    def skip(i: int) -> int:
        while i < len(text) and text[i] in ws:
            i += 1
        return i

    pos = skip(pos)
    for part in path:
        if pos >= len(text):
            break
        found = None
        if text[pos] == "{" and isinstance(part, str):
            i = skip(pos + 1)
            while i < len(text) and text[i] == '"':
                key, i = scanstring(text, i + 1)
                i = skip(skip(i) + 1)  # the colon
                if key == part:
                    found = i
                    break
                _, i = decoder.raw_decode(text, i)
                i = skip(i)
                if i < len(text) and text[i] == ",":
                    i = skip(i + 1)
        elif text[pos] == "[" and isinstance(part, int):
            i = skip(pos + 1)
            for n in range(part + 1):
                if i >= len(text) or text[i] == "]":
                    break
                if n == part:
                    found = i
                    break
                _, i = decoder.raw_decode(text, i)
                i = skip(i)
                if i < len(text) and text[i] == ",":
                    i = skip(i + 1)
        if found is None:
            break
        pos = found
    return _line_col(text, pos)
