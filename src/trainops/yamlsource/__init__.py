"""Hostile-input-proof YAML loading that keeps the position of every key.

Values are built from libyaml's event stream with an explicit stack, so nesting depth, alias
expansion and tags are checked as the file is read: a billion-laughs file or a 100,000-deep list
fails fast in bounded memory instead of crashing the interpreter. Only plain data is produced
(safe loading); a `!!python/...` or any custom tag is an error, never executed.

This module owns the way in (`load_file`, `load_bytes`, `load_text`: size and encoding limits,
the fast read without positions and the located re-read of a file that failed); `plain` reads
the common file fast, `compose` builds the documents of any other, `scalars` owns tags and
scalar values, `marks` positions and refusals.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from trainops import gcpause
from trainops.errors import Problem
from trainops.yamlsource import plain
from trainops.yamlsource.compose import MAX_DEPTH, MAX_NODES, Document, compose
from trainops.yamlsource.scalars import LOADER

__all__ = [
    "MAX_DEPTH",
    "MAX_FILE_BYTES",
    "MAX_NODES",
    "Document",
    "load_bytes",
    "load_file",
    "load_text",
]

MAX_FILE_BYTES = 1024 * 1024
_BOM = b"\xef\xbb\xbf"


def load_file(path: Path, display: str) -> tuple[list[Document], list[Problem]]:
    """Read every document of one file. Problems are returned, never raised."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        return [], [Problem(display, message=f"cannot read file: {exc.strerror}")]
    if size > MAX_FILE_BYTES:
        return [], [
            Problem(
                display,
                message=f"file is {size:,} bytes; manifests are limited to {MAX_FILE_BYTES:,}",
                hint="split it into several files, or move data out of the manifest",
            )
        ]
    return load_bytes(path.read_bytes(), display)


def load_bytes(raw: bytes, display: str) -> tuple[list[Document], list[Problem]]:
    """Every document of a file's content, refusing oversized and non-UTF-8 input."""
    if len(raw) > MAX_FILE_BYTES:
        return [], [
            Problem(
                display,
                message=f"file is over {MAX_FILE_BYTES:,} bytes; manifests are limited to that",
                hint="split it into several files, or move data out of the manifest",
            )
        ]
    # A byte-order mark is dropped, as the utf-8-sig codec does (whose decoder is Python code,
    # called once per file); an offending byte is located in what follows it.
    body = raw[3:] if raw.startswith(_BOM) else raw
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = body.count(b"\n", 0, exc.start) + 1
        col = exc.start - (body.rfind(b"\n", 0, exc.start) + 1) + 1
        return [], [Problem(display, line, col, "file is not valid UTF-8", "save it as UTF-8")]
    return load_text(text, display)


def load_text(text: str, display: str) -> tuple[list[Document], list[Problem]]:
    # Loading allocates many small containers and no cycles: the cyclic collector is paused
    # while a file is read (it otherwise ran over every kept key path, again and again, as
    # thousands of manifests were loaded), and resumed as it was.
    with gcpause.paused():
        return _load_text(text, display)


def _load_text(text: str, display: str) -> tuple[list[Document], list[Problem]]:
    # Most files are plain (no tag, anchor, merge key, ...): read by the fast path, without
    # positions (see Document). Any other file is read by the composer, without positions too;
    # a file that fails is read again keeping them, so each problem says where it is.
    plain_docs = plain.documents(text, display)
    if plain_docs is not None:
        for doc in plain_docs:
            doc.text = text
        return plain_docs, []
    docs, problems = compose(LOADER, text, display, track=False)
    if not problems:
        for doc in docs:
            doc.text = text
        return docs, problems
    docs, problems = compose(LOADER, text, display, track=True)
    if problems and LOADER is not yaml.SafeLoader and _flow_deeper_than(text, MAX_DEPTH):
        # libyaml may stop a deep flow collection before our depth check sees it: PyYAML 6.0.4's
        # bundled libyaml 0.2.6 caps nesting at 1,000 levels, and its scanner reads up to 1,024
        # characters ahead of the events we check. Our refusal must be the answer on every
        # version the range admits, without reading libyaml's message or moving its private
        # limits: a failed file deep enough in brackets is re-read with the pure-Python parser,
        # which has no cap of its own, and our refusal (message and position) wins there.
        again = compose(yaml.SafeLoader, text, display, track=True)
        if again[1] and not any(p.message.startswith("invalid YAML") for p in again[1]):
            return again
    return docs, problems


_BRACKETS = re.compile(r"[\[\]{}]")


def _flow_deeper_than(text: str, limit: int) -> bool:
    """Whether flow brackets nest deeper than `limit` somewhere in `text`. Brackets in quotes or
    comments are counted too: a wrong guess only costs one more read of a file that failed."""
    depth = 0
    for match in _BRACKETS.finditer(text):
        if match.group() in "[{":
            depth += 1
            if depth > limit:
                return True
        elif depth:
            depth -= 1
    return False
