"""The document builder: plain data from libyaml's event stream, checked as it is read.

Owns `Document` (one document's data and, worked out when first asked for, where each key or
item stands), the composer that builds it with an explicit stack (nesting depth, the node
budget that alias expansion counts against, duplicate keys and anchors, merge keys, NaN and
token-looking values), and `compose`: every document of a text, or the problem that stopped it,
located. Tags and scalar values are `scalars`' business, positions and refusals `marks`'.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import yaml

from trainops import gcpause
from trainops.errors import Problem
from trainops.yamlsource.marks import (
    COL_BITS,
    COL_MASK,
    Path_,
    Refused,
    at,
    has_token,
    pack,
    redact,
)
from trainops.yamlsource.scalars import CLEAN, LOADER, MISS, SEEN_LEN, check_tag, scalar

MAX_DEPTH = 64
MAX_NODES = 100_000  # per file (all documents), counting every node an alias expands to


@dataclass(slots=True)
class Document:
    """One YAML document of a file: its data and where each key or item stands.

    Positions are worked out when first asked for (`locate`), by reading the file's `text`
    again: a repository of 30,000 manifests keeps one string per file instead of a position per
    key, and only a file with a problem to point at is read twice. A file that fails to load is
    read with positions from the start (its problems are located as it is read).
    """

    file: str
    index: int  # 0-based position of the document in its file
    data: Any  # None once a validated model holds what it said (`Job`)
    positions: dict[Path_, int] | None = None  # packed (see marks.pack); None: not worked out
    secrets: list[Problem] = field(default_factory=list)  # token-looking values found in it
    text: str = ""  # the whole file, to work out positions from

    def locate(self, path: Path_) -> tuple[int, int]:
        """Line and column (1-based) of `path`, or of its nearest located ancestor."""
        positions = self.positions
        if positions is None:
            positions = self.positions = _positions_of(self.text, self.file, self.index)
        while True:
            found = positions.get(path)
            if found is not None:
                return found >> COL_BITS, found & COL_MASK
            if not path:
                return (1, 1)
            path = path[:-1]

    def problem(self, path: Path_, message: str, hint: str = "") -> Problem:
        line, col = self.locate(path)
        return Problem(self.file, line, col, message, hint)

    def lean(self) -> Document:
        """This document without its data (a validated model holds it now): what a `Job`
        keeps, so that a problem found later can still be located."""
        return Document(self.file, self.index, None, self.positions, self.secrets, self.text)


def _positions_of(text: str, file: str, index: int) -> dict[Path_, int]:
    """The positions of document `index` of `text`, read again with positions kept."""
    if not text:
        return {}
    with gcpause.paused():
        docs, _problems = compose(LOADER, text, file, track=True)
    for doc in docs:
        if doc.index == index and doc.positions is not None:
            return doc.positions
    return {}


def compose(
    loader: Any, text: str, display: str, *, track: bool
) -> tuple[list[Document], list[Problem]]:
    """Every document of `text` read with `loader`, and the problem that stopped the reading
    (a refusal of ours or the parser's error), located; never raised."""
    docs: list[Document] = []
    problems: list[Problem] = []
    try:
        for doc in _documents(loader, text, display, track):
            docs.append(doc)
    except Refused as exc:
        problems.append(at(display, exc.mark, redact(exc.message), exc.hint))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        message = " ".join(p for p in (exc.context, exc.problem) if p) or "invalid YAML"
        problems.append(
            at(display, mark, f"invalid YAML: {redact(message)}", "check indentation and quoting")
        )
    except yaml.reader.ReaderError as exc:
        # A character YAML forbids (NUL, most control characters), located by its offset.
        line, col = _line_col(loader, text, exc.position)
        problems.append(
            Problem(
                display,
                line,
                col,
                f"invalid YAML: unacceptable character #x{exc.character:04x}: {exc.reason}",
                "is this a binary file?",
            )
        )
    except yaml.YAMLError as exc:
        problems.append(Problem(display, message=f"invalid YAML: {redact(str(exc))}"))
    return docs, problems


def _line_col(loader: Any, text: str, position: int) -> tuple[int, int]:
    if loader is not yaml.SafeLoader:  # libyaml counts UTF-8 bytes, the Python reader characters
        text = text.encode("utf-8")[:position].decode("utf-8", "replace")
        position = len(text)
    start = text.rfind("\n", 0, position) + 1
    return text.count("\n", 0, start) + 1, position - start + 1


def _documents(loader_class: Any, text: str, file: str, track: bool) -> Iterator[Document]:
    loader = loader_class(text)
    try:
        index = 0
        spent = [0]  # nodes of the whole file: many documents must not multiply the budget
        while True:
            event = loader.get_event()
            if isinstance(event, yaml.StreamEndEvent):
                return
            if isinstance(event, yaml.DocumentStartEvent):
                # A null or empty document (`--- ~`, a bare `---`) is yielded too: what it means
                # (an error in a manifest file, the defaults in trainops.yaml) is the caller's.
                yield _Composer(loader, file, index, spent, track).document()
                index += 1
    finally:
        loader.dispose()


class _Container:
    __slots__ = ("anchor", "key", "key_mark", "mark", "merges", "nodes", "path", "value")

    def __init__(self, value: Any, path: Path_, mark: Any, anchor: str | None) -> None:
        self.value = value
        self.path = path
        self.mark = mark
        self.anchor = anchor
        self.key: Any = _NO_KEY
        self.key_mark: Any = None
        self.merges: list[dict[str, Any]] = []
        self.nodes = 1


_NO_KEY = object()


class _MergeKey:
    def __repr__(self) -> str:
        return "<<"


_MERGE_KEY = _MergeKey()

_DocumentEnd = yaml.DocumentEndEvent
_ScalarEvent = yaml.ScalarEvent
_AliasEvent = yaml.AliasEvent
_MappingStart = yaml.MappingStartEvent
_SequenceStart = yaml.SequenceStartEvent
_MappingEnd = yaml.MappingEndEvent
_SequenceEnd = yaml.SequenceEndEvent


class _Composer:
    """One document from libyaml's events. With `track`, the position of every key and item
    is kept (`Document.positions`); without, no path is even built: the fast path, for a file
    that then loads without a problem (one that fails is read again with `track`)."""

    __slots__ = (
        "anchors",
        "doc",
        "file",
        "loader",
        "opened",
        "positions",
        "result",
        "root_mark",
        "spent",
        "stack",
        "track",
    )

    def __init__(self, loader: Any, file: str, index: int, spent: list[int], track: bool) -> None:
        self.loader = loader
        self.file = file
        self.spent = spent
        self.track = track
        self.positions: dict[Path_, int] = {}
        self.doc = Document(file, index, None, self.positions if track else None)
        self.anchors: dict[str, tuple[Any, int]] = {}
        self.opened: set[str] = set()  # every anchor of the document, from its node's start on
        self.stack: list[_Container] = []
        self.result: Any = None
        self.root_mark: Any = None

    def document(self) -> Document:
        """Read events up to the document's end, each placed where it belongs."""
        loader, stack, spent, track = self.loader, self.stack, self.spent, self.track
        while True:
            event = loader.get_event()
            kind = type(event)
            if kind is _ScalarEvent and event.tag is None and not track and not event.anchor:
                # The common case, inline (a call per scalar would cost more than the rest): an
                # untagged plain value read before and clean (no token, a finite number), placed
                # as an item, a key, or the value after its key.
                key = (event.value, event.implicit)
                value = CLEAN.get(key, MISS)
                if value is MISS and len(event.value) <= SEEN_LEN:
                    # first seen: read once (remembered, with its checks), placed inline as well
                    scalar(loader, event)
                    value = CLEAN.get(key, MISS)
                if value is not MISS and stack and spent[0] < MAX_NODES:
                    top = stack[-1]
                    into = top.value
                    if type(into) is list:
                        spent[0] += 1
                        top.nodes += 1
                        into.append(value)
                        continue
                    key = top.key
                    if key is _NO_KEY:
                        if value != "<<":  # a merge key is read below
                            spent[0] += 1
                            top.nodes += 1
                            top.key, top.key_mark = value, event.start_mark
                            continue
                    elif key is not _MERGE_KEY:
                        if key in into:
                            self._place(value, event.start_mark, 1, 1)  # refused there, as always
                        spent[0] += 1
                        top.nodes += 1
                        top.key = _NO_KEY
                        into[key] = value
                        continue
            if kind is _DocumentEnd:
                return self._finish(event)
            tag = getattr(event, "tag", None)
            if tag is not None:
                check_tag(tag, kind, event.start_mark)
            if kind is _ScalarEvent:
                self._on_scalar(event)
            elif kind is _AliasEvent:
                self._on_alias(event)
            elif kind is _MappingStart or kind is _SequenceStart:
                self._open(event, {} if kind is _MappingStart else [])
            elif kind is _MappingEnd or kind is _SequenceEnd:
                self._close()

    def _finish(self, event: Any) -> Document:
        doc = self.doc
        doc.data = self.result
        if self.track and () not in self.positions:
            # the document itself stands where its root node does (a later document of the
            # file is not at 1:1)
            self.positions[()] = pack(self.root_mark or event.start_mark)
        return doc

    def _on_scalar(self, event: Any) -> None:
        mark = event.start_mark
        if self.track:
            self._child_path(mark)
        value = scalar(self.loader, event)
        if isinstance(value, float) and not math.isfinite(value):
            # JSON cannot carry it: input.json would hold NaN, which no other reader accepts
            raise Refused(
                mark,
                f"{event.value} is not a number JSON can carry (NaN and infinities are not)",
                "write a finite number, or quote it to pass the text",
            )
        if isinstance(value, str) and has_token(value):
            self.doc.secrets.append(
                at(
                    self.file,
                    mark,
                    "value looks like a secret token",
                    "tokens come from the environment, never from manifests",
                )
            )
        if event.anchor:
            self._anchor(event.anchor, mark)
            self.anchors[event.anchor] = (value, 1)
        stack = self.stack
        reading_key = stack and isinstance(stack[-1].value, dict) and stack[-1].key is _NO_KEY
        if reading_key and value == "<<" and event.tag in (None, "!") and event.implicit[0]:
            # `! <<` too: PyYAML resolves a plain scalar with the non-specific tag as if it
            # had none (its parser gives it implicit (True, False)), so it merges
            value = _MERGE_KEY
        self._place(value, mark, 1, 1)

    def _on_alias(self, event: Any) -> None:
        if event.anchor not in self.anchors:
            raise Refused(event.start_mark, f"unknown alias *{event.anchor}")
        value, size = self.anchors[event.anchor]
        if self.track:
            self._child_path(event.start_mark)
        self._place(value, event.start_mark, size, size)

    def _open(self, event: Any, container: dict[Any, Any] | list[Any]) -> None:
        if len(self.stack) >= MAX_DEPTH:
            raise Refused(
                event.start_mark,
                f"nesting deeper than {MAX_DEPTH} levels",
                "manifests are shallow; this file is not a manifest",
            )
        if event.anchor:
            self._anchor(event.anchor, event.start_mark)
        path = self._child_path(event.start_mark)
        self.stack.append(_Container(container, path, event.start_mark, event.anchor))

    def _close(self) -> None:
        done = self.stack.pop()
        if done.merges:
            # The mapping's own keys win, then earlier merged mappings over later ones.
            for merged in done.merges:
                for k, v in merged.items():
                    done.value.setdefault(k, v)
        if done.anchor:
            self.anchors[done.anchor] = (done.value, done.nodes)
        self._place(done.value, done.mark, 1, done.nodes)

    def _anchor(self, name: str, mark: Any) -> None:
        # PyYAML's composer refuses an anchor defined twice in a document (the later one would
        # silently win): so do we, at the second one.
        if name in self.opened:
            raise Refused(
                mark,
                f"anchor &{name} is defined twice in this document",
                "give each anchor its own name",
            )
        self.opened.add(name)

    def _place(self, value: Any, mark: Any, new_nodes: int, size: int) -> None:
        """Put `value` into the open container (as an item, a key, or a key's value), or make
        it the document's root. new_nodes: nodes this adds to the document (an alias adds its
        whole expansion); size: the nodes `value` stands for, which its parent now holds."""
        self.spent[0] += new_nodes
        if self.spent[0] > MAX_NODES:
            raise Refused(
                mark,
                f"file expands to more than {MAX_NODES:,} nodes",
                "manifests are small; an alias (*name) counts every node it repeats",
            )
        if not self.stack:
            self.result, self.root_mark = value, mark
            return
        top = self.stack[-1]
        top.nodes += size
        if isinstance(top.value, list):
            top.value.append(value)
            return
        if top.key is _NO_KEY:
            if isinstance(value, (dict, list)):
                raise Refused(mark, "a mapping key must be a plain value")
            top.key, top.key_mark = value, mark
            return
        key, top.key = top.key, _NO_KEY
        if key is _MERGE_KEY:
            self._merge(top, value)
            return
        if key in top.value:
            first = self.positions.get((*top.path, key)) if self.track else None
            where = f" (first at line {first >> COL_BITS})" if first else ""
            raise Refused(
                top.key_mark,
                f"duplicate key {key!r}{where}",
                "each key may appear once in a mapping",
            )
        top.value[key] = value
        if self.track:
            self.positions[(*top.path, key)] = pack(top.key_mark)

    @staticmethod
    def _merge(top: _Container, value: Any) -> None:
        """The value of a merge key (<<): one mapping or a list of them, merged at the close."""
        if top.merges:
            raise Refused(
                top.key_mark,
                "duplicate key '<<'",
                "merge several mappings with one key: <<: [*a, *b]",
            )
        merged = value if isinstance(value, list) else [value]
        if not all(isinstance(m, dict) for m in merged):
            raise Refused(top.key_mark, "a merge key (<<) must refer to mappings")
        top.merges.extend(merged)

    def _child_path(self, mark: Any) -> Path_:
        """The path of the node starting at `mark` (an item's position is kept here; a key's
        when its value is placed)."""
        if not self.track or not self.stack:
            return ()
        top = self.stack[-1]
        if isinstance(top.value, list):
            path = (*top.path, len(top.value))
            self.positions[path] = pack(mark)
            return path
        if top.key is _NO_KEY:
            return top.path  # a key is being read; keys are scalars
        return (*top.path, top.key) if not isinstance(top.key, _MergeKey) else top.path
