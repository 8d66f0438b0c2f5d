"""The terminal table: aligned by display width, cells escaped, rows read as they come."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from trainops.render import table


def test_columns_align_by_display_width() -> None:
    rows = [
        {"job": "训练-a", "note": "wide"},  # two cells per CJK character
        {"job": "cafe\u0301", "note": "combining"},  # e + U+0301: four cells
        {"job": "plain-job", "note": None},
    ]
    lines = table(rows, ["job", "note"]).splitlines()
    assert lines == [
        "JOB        NOTE",
        "训练-a     wide",
        "cafe\u0301       combining",
        "plain-job",
    ]


def test_cells_are_escaped_and_rows_may_be_a_generator() -> None:
    def rows() -> Iterator[dict[str, Any]]:
        yield {"job": "evil\x1b[2J", "n": 1}
        yield {"job": "ok", "n": 22}

    assert table(rows(), ["job", "n"]).splitlines() == [
        "JOB          N",
        "evil\\x1b[2J  1",
        "ok           22",
    ]
