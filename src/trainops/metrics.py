"""A run's final metrics (DESIGN §19): numbers only, bounded in count and size.

Metrics come from whatever a run wrote (a local run's `metrics.json` among its outputs, a
Replicate training's `metrics` and output, a SageMaker job's `FinalMetricDataList`: `named`) or
from the state branch, so they are hostile input:
only finite numbers under short plain names survive, at most `MAX_COUNT` of them, and a file over
`MAX_BYTES` is not read at all. Anything else is left out, never an error that stops a pass.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

FILE = "metrics.json"
MAX_BYTES = 64 << 10
MAX_COUNT = 64
NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-/]{0,63}\Z")


def is_number(value: Any) -> bool:
    """A finite number, not a bool. An integer too large for a float is not one: JSON may
    spell a thousand digits, and every reader here works in floats."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def clean(data: Any) -> dict[str, float]:
    """The numeric metrics of a JSON object, in name order, at most `MAX_COUNT`."""
    if not isinstance(data, Mapping):
        return {}
    kept = {
        k: float(v)
        for k, v in data.items()
        if isinstance(k, str) and NAME.match(k) and is_number(v)
    }
    return dict(sorted(kept.items())[:MAX_COUNT])


_NOT_IN_NAME = re.compile(r"[^A-Za-z0-9_.\-/]")


def named(pairs: Iterable[tuple[Any, Any]]) -> dict[str, float]:
    """A provider's (name, value) metrics as trainops records them: each character a name
    cannot hold written `_` (SageMaker's `train:loss` is `train_loss`), then `clean`. Of two
    names that become one, the first is kept; a name that is still none is left out."""
    found: dict[str, Any] = {}
    for name, value in pairs:
        if isinstance(name, str) and name:
            found.setdefault(_NOT_IN_NAME.sub("_", name), value)
    return clean(found)


def valid(data: Any) -> bool:
    """`data` is a metrics map as trainops records it (for the state branch's reader)."""
    return (
        isinstance(data, dict)
        and len(data) <= MAX_COUNT
        and all(isinstance(k, str) and NAME.match(k) and is_number(v) for k, v in data.items())
    )


def read(path: Path) -> dict[str, float]:
    """The metrics in the file at `path`; empty when it is missing, too large or not JSON."""
    try:
        if not path.is_file() or path.is_symlink() or path.stat().st_size > MAX_BYTES:
            return {}
        text = path.read_text(encoding="utf-8")
        return clean(json.loads(text, parse_constant=_no_constant))
    except (OSError, ValueError, RecursionError):
        return {}


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON can carry")


def headline(metrics: Mapping[str, float], count: int = 3) -> str:
    """A few metrics on one line, for tables: `eval_loss=0.21 acc=0.93`."""
    return " ".join(f"{k}={fmt(v)}" for k, v in list(metrics.items())[:count])


def fmt(value: float) -> str:
    return f"{value:.6g}"


__all__ = ["FILE", "clean", "fmt", "headline", "named", "read", "valid"]
