"""The cells every text output shares: the aligned plain table, money, ages, counts, and
a value as JSON text."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from trainops import escape


def to_json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=False, default=str)


def counts(values: Iterable[str], order: Sequence[str]) -> str:
    """`2 Running, 1 Succeeded`: how many of each value, in `order` (then any other, by name)."""
    tally: dict[str, int] = {}
    for value in values:
        tally[value] = tally.get(value, 0) + 1
    known = [v for v in order if v in tally] + sorted(v for v in tally if v not in order)
    return ", ".join(f"{tally[v]} {v}" for v in known)


def worst(estimate: Any) -> str:
    if estimate is None:
        return ""
    if estimate.unpriced:
        return f"no price for {estimate.unpriced}"
    return usd(estimate.worst_usd)


def usd(value: float | None) -> str:
    from trainops.cost import usd

    return usd(value)


def age(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    if seconds < 172800:
        return f"{seconds // 3600}h{(seconds % 3600) // 60:02d}m"
    return f"{seconds // 86400}d"


def table(rows: Iterable[Mapping[str, Any]], columns: list[str]) -> str:
    """A plain, aligned text table: upper-case headers, columns two spaces apart, long cells
    never folded. Formatted here rather than with rich's Table, whose layout cost about 6 ms a
    row: most of a no-op `apply` over 10,000 jobs."""
    header = [c.upper().replace("_", " ") for c in columns]
    lines = [header] + [
        ["" if r.get(c) is None else escape.line(str(r.get(c))) for c in columns] for r in rows
    ]
    widths = [max(_width(line[i]) for line in lines) for i in range(len(columns))]
    return "\n".join(
        "  ".join(
            cell + " " * (width - _width(cell)) for cell, width in zip(line, widths, strict=True)
        ).rstrip()
        for line in lines
    )


def _width(cell: str) -> int:
    """Display width of an escaped cell: its length when ASCII (no control characters are left
    in it), else rich's count, where wide characters take two cells and combining ones none."""
    if cell.isascii():
        return len(cell)
    from rich.cells import cell_len

    return cell_len(cell)
