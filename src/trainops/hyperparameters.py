"""A SageMaker job's `input` as the service takes it (pure, no client): `HyperParameters` are a map
of strings (botocore's service model: at most 100 entries, keys at most 256 characters, values
at most 2500), and every `s3://` value is an input channel named by its key instead.

The conversion: a string is itself; `true`/`false` for a bool; a number as Python writes it
shortest (`0.001`, `1e-05`, `3`); a list or mapping as compact JSON. What the trainer reads back
(a value that parses as JSON is that value, any other text is the text) must be what the
manifest says; a value for which it is not is refused at `validate`: the string `"3"` would reach
the trainer as the number 3, a mapping with non-string keys as one with string keys.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

MAX_ENTRIES, MAX_KEY, MAX_VALUE = 100, 256, 2500  # HyperParameters (service-2.json)
CHANNEL = re.compile(r"[A-Za-z0-9.\-_]{1,64}")  # ChannelName
MAX_CHANNELS = 20  # InputDataConfig: at most 20 channels
S3_URI = re.compile(r"s3://[^/\s]+(/\S*)?")
_REF = re.compile(r"\$\{\{\s*jobs\.")


def encode(value: Any) -> str:
    """One hyperparameter's string."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def decode(text: str) -> Any:
    """What a trainer that parses its hyperparameters as JSON (falling back to the text) reads."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def _same(a: Any, b: Any) -> bool:
    """Equal and of the same JSON type all the way down (True is not 1, 1.0 is 1)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def is_channel(value: Any) -> bool:
    return isinstance(value, str) and S3_URI.fullmatch(value) is not None


def problem(key: str, value: Any) -> str:
    """Why `value` cannot be hyperparameter `key` ("" when it can)."""
    if len(key) > MAX_KEY:
        return f"a hyperparameter name is at most {MAX_KEY} characters"
    if isinstance(value, str) and _REF.search(value):
        return ""  # resolved at apply: another job's output
    if isinstance(value, float) and not math.isfinite(value):
        return "not a finite number"
    try:
        text = encode(value)
    except (TypeError, ValueError):
        return f"a {type(value).__name__} has no SageMaker hyperparameter form"
    if len(text) > MAX_VALUE:
        return f"its string is {len(text)} characters; a hyperparameter is at most {MAX_VALUE}"
    back = decode(text)
    if not _same(back, value):
        shown = json.dumps(back) if not isinstance(back, str) else repr(back)
        return (
            f"it is sent as the string {text[:60]!r}, which a trainer reads back as {shown[:60]} "
            "(hyperparameters are strings): write the value it means"
        )
    return ""


def convert(value: Mapping[str, Any]) -> tuple[dict[str, str], dict[str, str]]:
    """(HyperParameters, channels): `s3://` values become channels named by their key."""
    params: dict[str, str] = {}
    channels: dict[str, str] = {}
    for key in sorted(value):
        item = value[key]
        if is_channel(item) and CHANNEL.fullmatch(key):
            channels[key] = item
        else:
            params[key] = encode(item)
    return params, channels


def problems(value: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(key, why) for every input entry SageMaker cannot take as it is meant."""
    out = []
    params = [k for k, v in value.items() if not is_channel(v)]
    channels = [k for k, v in value.items() if is_channel(v)]
    for key in sorted(value):
        item = value[key]
        if is_channel(item):
            if not CHANNEL.fullmatch(key):
                out.append((key, "a channel name is 1-64 letters, digits, '.', '-' or '_'"))
            continue
        why = problem(key, item)
        if why:
            out.append((key, why))
    if len(params) > MAX_ENTRIES:
        out.append(("", f"{len(params)} hyperparameters; SageMaker takes at most {MAX_ENTRIES}"))
    if len(channels) > MAX_CHANNELS:
        out.append(("", f"{len(channels)} s3:// channels; SageMaker takes at most {MAX_CHANNELS}"))
    return out


def preview(value: Mapping[str, Any]) -> list[str]:
    """The conversion as `plan` shows it, one line per entry."""
    params, channels = convert(value)
    lines = [f"hyperparameter {k} = {json.dumps(v)}" for k, v in params.items()]
    lines += [f"channel {k} <- {v}" for k, v in channels.items()]
    return lines
