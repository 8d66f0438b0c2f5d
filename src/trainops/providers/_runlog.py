"""Reading a local run's log.txt, bounded (DESIGN §13): a tail is read backwards from the end and
never returns more than `TAIL_BYTES`, and following reads only what was added since the last
read, so neither time nor memory grows with the size of the log.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO

TAIL_BYTES = 256 << 10  # the most a log read returns, whatever the log's size
_BLOCK = 65536


def tail(path: Path, lines: int) -> tuple[str, int]:
    """The last `lines` lines of the file, and the byte offset where they end. Empty when the
    file does not exist."""
    try:
        with open(path, "rb") as f:
            end = f.seek(0, os.SEEK_END)
            return _last_lines(f, end, lines), end
    except OSError:
        return "", 0


def after(path: Path, offset: int, final: bool = False) -> tuple[str, int]:
    """Whole lines written after byte `offset`, at most `TAIL_BYTES` (a longer line comes in
    pieces; with `final`, an unterminated last line too), and the offset to read from next."""
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read(TAIL_BYTES)
    except OSError:
        return "", offset
    cut = data.rfind(b"\n") + 1
    if cut == 0 and len(data) < TAIL_BYTES and not final:
        return "", offset  # a line still being written
    data = data[:cut] if cut and not final else data
    return data.decode("utf-8", "replace"), offset + len(data)


def _last_lines(f: BinaryIO, end: int, lines: int) -> str:
    """Read backwards in blocks until `lines` newlines are seen or `TAIL_BYTES` are read (a
    longer last line is cut at its start)."""
    if lines <= 0:
        return ""
    blocks: list[bytes] = []
    newlines, pos = 0, end
    while pos > 0 and newlines <= lines and end - pos < TAIL_BYTES:
        step = min(_BLOCK, pos, TAIL_BYTES - (end - pos))
        pos -= step
        f.seek(pos)
        block = f.read(step)
        blocks.append(block)
        newlines += block.count(b"\n")
    text = b"".join(reversed(blocks)).decode("utf-8", "replace")
    return "\n".join(text.splitlines()[-lines:])
