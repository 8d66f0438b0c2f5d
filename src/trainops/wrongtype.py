"""The message of a strict model's type error: what was written, and what to write instead.

The models validate in strict mode (a string is never a bool or a number, a bool never a
number), so `suspend: "no"` is refused rather than read as true. This says so in the user's
terms: `spec.suspend: "no" is a string; write false`.
"""

from __future__ import annotations

import json
import math
from typing import Any

# pydantic's error type -> what the field expects, in words
EXPECTED = {
    "bool_type": "true or false",
    "int_type": "a whole number",
    "float_type": "a number",
    "string_type": "text",
    "list_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
}

_TRUE = frozenset({"true", "yes", "on", "y"})
_FALSE = frozenset({"false", "no", "off", "n"})
_SHOWN = 40  # characters of a written value quoted back at most


def kind_of(value: Any) -> str:
    """What YAML made of a value, in words."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number with a fraction" if math.isfinite(value) else "not a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return "a value of another kind"


def shown(value: Any) -> str:
    """A scalar as YAML writes it (a string in double quotes), shortened; a collection by kind."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, (int, float)):
        text = repr(value)
    elif isinstance(value, str):
        text = json.dumps(value if len(value) <= _SHOWN else value[:_SHOWN] + "...")
    else:
        return kind_of(value)
    return text if len(text) <= _SHOWN + 5 else text[:_SHOWN] + "..."


def message(error_type: str, value: Any) -> str | None:
    """`"no" is a string; write false` for a type error, or None for any other error."""
    expected = EXPECTED.get(error_type)
    if expected is None:
        return None
    what = kind_of(value)
    written = what if isinstance(value, (list, dict)) else f"{shown(value)} is {what}"
    return f"{written}; write {_suggestion(error_type, value) or expected}"


def _suggestion(error_type: str, value: Any) -> str | None:
    """The value the user most likely meant, written the way the field takes it."""
    if error_type == "bool_type":
        if isinstance(value, str) and value.strip().lower() in _TRUE:
            return "true"
        if isinstance(value, str) and value.strip().lower() in _FALSE:
            return "false"
        if isinstance(value, (int, float)) and value in (0, 1):
            return "true" if value else "false"
        return None
    if error_type in ("int_type", "float_type"):
        if isinstance(value, bool):
            return f"{int(value)} (a number, not a boolean)"
        if isinstance(value, str):
            number = _number(value, integral=error_type == "int_type")
            return f"{number} (unquoted)" if number is not None else None
        if isinstance(value, float) and error_type == "int_type":
            return "a whole number"
        return None
    if error_type == "string_type" and (value is None or isinstance(value, (bool, int, float))):
        return f'"{shown(value)}" in quotes, if that text is meant'
    return None


def _number(text: str, *, integral: bool) -> str | None:
    try:
        number = float(text.replace("_", "")) if not integral else int(text.replace("_", ""))
    except ValueError:
        return None
    if isinstance(number, float) and not math.isfinite(number):
        return None
    return repr(number)
