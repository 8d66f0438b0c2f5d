"""Hostile-input-proof YAML loading that keeps the position of every key.

Values are built from libyaml's event stream with an explicit stack, so nesting depth, alias
expansion and tags are checked as the file is read: a billion-laughs file or a 100,000-deep list
fails fast in bounded memory instead of crashing the interpreter. Only plain data is produced
(safe loading); a `!!python/...` or any custom tag is an error, never executed.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from trainops import gcpause
from trainops.errors import Problem

MAX_FILE_BYTES = 1024 * 1024
MAX_DEPTH = 64
MAX_NODES = 100_000  # per file (all documents), counting every node an alias expands to

Path_ = tuple[str | int, ...]

# A position is kept as one int, line << _COL_BITS | column: no tuple per key for the cyclic
# collector to track (a file is at most MAX_FILE_BYTES, so a column fits in the low bits).
_COL_BITS = 21
_COL_MASK = (1 << _COL_BITS) - 1

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_STD = "tag:yaml.org,2002:"
_TIMESTAMP = f"{_STD}timestamp"
_MERGE = f"{_STD}merge"
_VALUE = f"{_STD}value"
# The tags a manifest may carry, by the kind of node each may stand on ("!" is the non-specific
# tag: the node's kind decides). A tag on another kind of node is refused, as PyYAML's
# constructor fails on it (`!!map foo` made a generator of a scalar; `!!str [1]` was a list).
_SCALAR_TAGS = frozenset(
    {"!", _TIMESTAMP, *(f"{_STD}{t}" for t in ("str", "int", "float", "bool", "null"))}
)
_MAP_TAGS = frozenset({"!", f"{_STD}map"})
_SEQ_TAGS = frozenset({"!", f"{_STD}seq"})
_KNOWN_TAGS = _SCALAR_TAGS | _MAP_TAGS | _SEQ_TAGS
_constructor = yaml.constructor.SafeConstructor()

# Values that look like credentials (DESIGN §13). Matched anywhere in a string.
_TOKEN = re.compile(
    r"\b(?:r8_[A-Za-z0-9]{20,}|hf_[A-Za-z0-9]{20,}|AKIA[0-9A-Z]{16}|ASIA[0-9A-Z]{16}"
    r"|ghp_[A-Za-z0-9]{30,}|gho_[A-Za-z0-9]{30,}|ghs_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{30,})"
)


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
    positions: dict[Path_, int] | None = None  # packed (see _pack); None: not worked out yet
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
                return found >> _COL_BITS, found & _COL_MASK
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
        docs, _problems = _load_with(_Loader, text, file, track=True)
    for doc in docs:
        if doc.index == index and doc.positions is not None:
            return doc.positions
    return {}


def _pack(mark: Any) -> int:
    line: int = mark.line + 1
    col: int = mark.column + 1
    return line << _COL_BITS | col


class _Refused(Exception):
    def __init__(self, mark: Any, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.mark, self.message, self.hint = mark, message, hint


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
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        col = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        return [], [Problem(display, line, col, "file is not valid UTF-8", "save it as UTF-8")]
    return load_text(text, display)


def load_text(text: str, display: str) -> tuple[list[Document], list[Problem]]:
    # Loading allocates many small containers and no cycles: the cyclic collector is paused
    # while a file is read (it otherwise ran over every kept key path, again and again, as
    # thousands of manifests were loaded), and resumed as it was.
    with gcpause.paused():
        return _load_text(text, display)


def _load_text(text: str, display: str) -> tuple[list[Document], list[Problem]]:
    # Most files load without a problem: they are read without positions (see Document). A file
    # that fails is read again keeping them, so each problem says where it is.
    docs, problems = _load_with(_Loader, text, display, track=False)
    if not problems:
        for doc in docs:
            doc.text = text
        return docs, problems
    docs, problems = _load_with(_Loader, text, display, track=True)
    if problems and _Loader is not yaml.SafeLoader and _flow_deeper_than(text, MAX_DEPTH):
        # libyaml may stop a deep flow collection before our depth check sees it: PyYAML 6.0.4's
        # bundled libyaml 0.2.6 caps nesting at 1,000 levels, and its scanner reads up to 1,024
        # characters ahead of the events we check. Our refusal must be the answer on every
        # version the range admits, without reading libyaml's message or moving its private
        # limits: a failed file deep enough in brackets is re-read with the pure-Python parser,
        # which has no cap of its own, and our refusal (message and position) wins there.
        again = _load_with(yaml.SafeLoader, text, display, track=True)
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


def _load_with(
    loader: Any, text: str, display: str, *, track: bool
) -> tuple[list[Document], list[Problem]]:
    docs: list[Document] = []
    problems: list[Problem] = []
    try:
        for doc in _documents(loader, text, display, track):
            docs.append(doc)
    except _Refused as exc:
        problems.append(_at(display, exc.mark, _redact(exc.message), exc.hint))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        message = " ".join(p for p in (exc.context, exc.problem) if p) or "invalid YAML"
        problems.append(
            _at(display, mark, f"invalid YAML: {_redact(message)}", "check indentation and quoting")
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
        problems.append(Problem(display, message=f"invalid YAML: {_redact(str(exc))}"))
    return docs, problems


def _line_col(loader: Any, text: str, position: int) -> tuple[int, int]:
    if loader is not yaml.SafeLoader:  # libyaml counts UTF-8 bytes, the Python reader characters
        text = text.encode("utf-8")[:position].decode("utf-8", "replace")
        position = len(text)
    start = text.rfind("\n", 0, position) + 1
    return text.count("\n", 0, start) + 1, position - start + 1


def _redact(message: str) -> str:
    # Refusals quote keys, aliases and tags; a token used as one must still never be printed.
    return _TOKEN.sub("<redacted token>", message)


def _at(file: str, mark: Any, message: str, hint: str = "") -> Problem:
    if mark is None:
        return Problem(file, message=message, hint=hint)
    return Problem(file, mark.line + 1, mark.column + 1, message, hint)


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
                yield _document(loader, file, index, spent, track)
                index += 1
    finally:
        loader.dispose()


def _document(loader: Any, file: str, index: int, spent: list[int], track: bool) -> Document:
    """One document from libyaml's events. With `track`, the position of every key and item
    is kept (`Document.positions`); without, no path is even built: the fast path, for a file
    that then loads without a problem (one that fails is read again with `track`)."""
    positions: dict[Path_, int] = {}
    doc = Document(file, index, None, positions if track else None)
    anchors: dict[str, tuple[Any, int]] = {}
    opened: set[str] = set()  # every anchor of the document, from its node's start on
    stack: list[_Container] = []
    result: Any = None
    root_mark: Any = None

    def anchor(name: str, mark: Any) -> None:
        # PyYAML's composer refuses an anchor defined twice in a document (the later one would
        # silently win): so do we, at the second one.
        if name in opened:
            raise _Refused(
                mark,
                f"anchor &{name} is defined twice in this document",
                "give each anchor its own name",
            )
        opened.add(name)

    def place(value: Any, mark: Any, new_nodes: int, size: int) -> None:
        # new_nodes: nodes this adds to the document (an alias adds its whole expansion);
        # size: the nodes `value` stands for, which its parent container now holds.
        nonlocal result, root_mark
        spent[0] += new_nodes
        if spent[0] > MAX_NODES:
            raise _Refused(
                mark,
                f"file expands to more than {MAX_NODES:,} nodes",
                "manifests are small; an alias (*name) counts every node it repeats",
            )
        if not stack:
            result, root_mark = value, mark
            return
        top = stack[-1]
        top.nodes += size
        if isinstance(top.value, list):
            top.value.append(value)
            return
        if top.key is _NO_KEY:
            if isinstance(value, (dict, list)):
                raise _Refused(mark, "a mapping key must be a plain value")
            top.key, top.key_mark = value, mark
            return
        key, top.key = top.key, _NO_KEY
        if key is _MERGE_KEY:
            if top.merges:
                raise _Refused(
                    top.key_mark,
                    "duplicate key '<<'",
                    "merge several mappings with one key: <<: [*a, *b]",
                )
            merged = value if isinstance(value, list) else [value]
            if not all(isinstance(m, dict) for m in merged):
                raise _Refused(top.key_mark, "a merge key (<<) must refer to mappings")
            top.merges.extend(merged)
            return
        if key in top.value:
            first = positions.get((*top.path, key)) if track else None
            where = f" (first at line {first >> _COL_BITS})" if first else ""
            raise _Refused(
                top.key_mark,
                f"duplicate key {key!r}{where}",
                "each key may appear once in a mapping",
            )
        top.value[key] = value
        if track:
            positions[(*top.path, key)] = _pack(top.key_mark)

    def child_path(mark: Any) -> Path_:
        if not track or not stack:
            return ()
        top = stack[-1]
        if isinstance(top.value, list):
            path = (*top.path, len(top.value))
            positions[path] = _pack(mark)
            return path
        if top.key is _NO_KEY:
            return top.path  # a key is being read; keys are scalars
        return (*top.path, top.key) if not isinstance(top.key, _MergeKey) else top.path

    while True:
        event = loader.get_event()
        kind = type(event)
        if kind is _ScalarEvent and event.tag is None and not track and not event.anchor:
            # The common case, inline: an untagged plain value read before and clean (no
            # token, a finite number), placed as an item, a key, or the value after its key.
            key = (event.value, event.implicit)
            value = _CLEAN.get(key, _MISS)
            if value is _MISS and len(event.value) <= _SEEN_LEN:
                # first seen: read once (remembered, with its checks) and placed inline as well
                _scalar(loader, event)
                value = _CLEAN.get(key, _MISS)
            if value is not _MISS and stack and spent[0] < MAX_NODES:
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
                        place(value, event.start_mark, 1, 1)  # refused there, as always
                    spent[0] += 1
                    top.nodes += 1
                    top.key = _NO_KEY
                    into[key] = value
                    continue
        if kind is _DocumentEnd:
            doc.data = result
            if track and () not in positions:
                # the document itself stands where its root node does (a later document of
                # the file is not at 1:1)
                positions[()] = _pack(root_mark or event.start_mark)
            return doc
        tag = getattr(event, "tag", None)
        if tag is not None:
            _check_tag(tag, kind, event.start_mark)
        if kind is _ScalarEvent:
            if track:
                child_path(event.start_mark)
            value = _scalar(loader, event)
            if isinstance(value, float) and not math.isfinite(value):
                # JSON cannot carry it: input.json would hold NaN, which no other reader accepts
                raise _Refused(
                    event.start_mark,
                    f"{event.value} is not a number JSON can carry (NaN and infinities are not)",
                    "write a finite number, or quote it to pass the text",
                )
            if isinstance(value, str) and _TOKEN.search(value):
                doc.secrets.append(
                    _at(
                        file,
                        event.start_mark,
                        "value looks like a secret token",
                        "tokens come from the environment, never from manifests",
                    )
                )
            if event.anchor:
                anchor(event.anchor, event.start_mark)
                anchors[event.anchor] = (value, 1)
            reading_key = stack and isinstance(stack[-1].value, dict) and stack[-1].key is _NO_KEY
            if reading_key and value == "<<" and event.tag in (None, "!") and event.implicit[0]:
                # `! <<` too: PyYAML resolves a plain scalar with the non-specific tag as if it
                # had none (its parser gives it implicit (True, False)), so it merges
                value = _MERGE_KEY
            place(value, event.start_mark, 1, 1)
        elif kind is yaml.AliasEvent:
            if event.anchor not in anchors:
                raise _Refused(event.start_mark, f"unknown alias *{event.anchor}")
            value, size = anchors[event.anchor]
            if track:
                child_path(event.start_mark)
            place(value, event.start_mark, size, size)
        elif kind is yaml.MappingStartEvent or kind is yaml.SequenceStartEvent:
            if len(stack) >= MAX_DEPTH:
                raise _Refused(
                    event.start_mark,
                    f"nesting deeper than {MAX_DEPTH} levels",
                    "manifests are shallow; this file is not a manifest",
                )
            if event.anchor:
                anchor(event.anchor, event.start_mark)
            path = child_path(event.start_mark)
            container: Any = {} if kind is yaml.MappingStartEvent else []
            stack.append(_Container(container, path, event.start_mark, event.anchor))
        elif kind is yaml.MappingEndEvent or kind is yaml.SequenceEndEvent:
            done = stack.pop()
            if done.merges:
                # The mapping's own keys win, then earlier merged mappings over later ones.
                for merged in done.merges:
                    for k, v in merged.items():
                        done.value.setdefault(k, v)
            if done.anchor:
                anchors[done.anchor] = (done.value, done.nodes)
            place(done.value, done.mark, 1, done.nodes)


class _MergeKey:
    def __repr__(self) -> str:
        return "<<"


_MERGE_KEY = _MergeKey()


_DocumentEnd = yaml.DocumentEndEvent
_ScalarEvent = yaml.ScalarEvent

# Untagged scalars already read -> their value (str, int, float, bool or None: immutable), so
# the thousandth `provider: local` is not resolved and constructed again. Short values only,
# and forgotten wholesale when full: memory stays bounded whatever the files hold.
_SEEN: dict[tuple[str, Any], Any] = {}
_SEEN_MAX = 20_000
_SEEN_LEN = 48


# The subset of _SEEN that needs no check once read (every value but a token-looking string or
# a number JSON cannot carry): the loop places those without looking at them again.
_CLEAN: dict[tuple[str, Any], Any] = {}
_MISS = object()

# The first characters of a plain scalar the loader resolves by pattern (bool, int, float, null,
# merge, timestamp, value), from its own table; a None key would be a pattern for any character,
# and then no first character would tell text.
_PATTERNED: frozenset[str | None] = frozenset(_Loader.yaml_implicit_resolvers)
_TEXT_BY_FIRST = None not in _PATTERNED
_DECIMAL = re.compile(r"[-+]?(?:0|[1-9][0-9]*)\Z")


def _scalar(loader: Any, event: Any) -> Any:
    if event.tag is None and len(event.value) <= _SEEN_LEN:
        key = (event.value, event.implicit)
        try:
            return _SEEN[key]
        except KeyError:
            pass
        value = _construct(loader, event)
        if len(_SEEN) >= _SEEN_MAX:
            _SEEN.clear()
            _CLEAN.clear()
        _SEEN[key] = value
        if not (
            (isinstance(value, float) and not math.isfinite(value))
            or (isinstance(value, str) and _TOKEN.search(value))
        ):
            _CLEAN[key] = value
        return value
    return _construct(loader, event)


def _construct(loader: Any, event: Any) -> Any:
    tag = event.tag
    if tag is None and event.implicit[0]:
        # Plain, untagged: the two answers most values of a file get, without a resolver's
        # walk over its patterns (a name, a seed: read once each, 30,000 files read 60,000).
        # A first character no implicit pattern starts with is text; a decimal without leading
        # zeros, separators or colons is an int in YAML 1.1 as in Python (a test compares both
        # with the resolver over thousands of shapes).
        value: str = event.value
        if _TEXT_BY_FIRST and value and value[0] not in _PATTERNED:
            return value
        if _DECIMAL.match(value):
            try:
                return int(value)
            except ValueError:  # more digits than int() reads: refused below, as PyYAML fails
                pass
    if tag in (None, "!"):
        tag = loader.resolve(yaml.ScalarNode, event.value, event.implicit)
    if tag in (f"{_STD}str", _MERGE):
        return event.value
    shown = _redact(event.value) if len(event.value) <= 40 else "this value"
    if tag == _VALUE:  # a plain `=`: YAML 1.1's value key, which PyYAML cannot construct
        raise _Refused(
            event.start_mark,
            f"{shown} reads as YAML's !!value tag, which no manifest can hold",
            f'quote it to pass the text: "{shown}"',
        )
    node = yaml.ScalarNode(tag, event.value, event.start_mark, event.end_mark, event.style)
    constructor = _constructor.yaml_constructors.get(tag)
    if constructor is None:
        raise _Refused(event.start_mark, f"tag {_short(tag)} is not allowed")
    try:
        value = constructor(_constructor, node)
    except (ValueError, KeyError, IndexError, TypeError, AttributeError, OverflowError):
        # What PyYAML's constructor fails on, as the error it raises for it: a number's shape
        # without its digits (0x_, 0b_) or with too many, `!!bool foo` (KeyError), `!!int ""`
        # (IndexError), `!!timestamp foo` (AttributeError), an impossible date (ValueError).
        what = _short(tag)[2:]
        if tag in _NUMBER_TAGS:
            raise _Refused(
                event.start_mark,
                f"{shown or '(empty)'} reads as {what} in YAML but is not a number trainops "
                "can read",
                "write the number out, or quote it to pass the text",
            ) from None
        raise _Refused(
            event.start_mark,
            f"{shown or '(empty)'} is not a valid {what} ({_short(tag)})",
            _FIX.get(tag, "write the value out, or quote it to pass the text"),
        ) from None
    if tag == _TIMESTAMP:
        return event.value  # a valid date or time, kept as text: manifests are JSON-shaped
    return value


_NUMBER_TAGS = frozenset({f"{_STD}int", f"{_STD}float"})
_FIX = {
    f"{_STD}bool": "write true or false",
    f"{_STD}timestamp": "write a real date like 2024-05-17 (or 2024-05-17T10:30:00Z), or quote "
    "it to pass the text",
    f"{_STD}null": "write null or ~, or leave the value empty",
}


def _check_tag(tag: str, kind: Any, mark: Any) -> None:
    """Refuse a tag no manifest may hold, or one on the wrong kind of node."""
    if tag not in _KNOWN_TAGS:
        raise _Refused(
            mark, f"tag {_short(tag)} is not allowed", "manifests are plain data: remove the tag"
        )
    allowed = (
        _SCALAR_TAGS
        if kind is _ScalarEvent
        else _MAP_TAGS
        if kind is yaml.MappingStartEvent
        else _SEQ_TAGS
    )
    if tag not in allowed:
        node = (
            "a scalar"
            if kind is _ScalarEvent
            else "a mapping"
            if kind is yaml.MappingStartEvent
            else "a list"
        )
        raise _Refused(
            mark,
            f"tag {_short(tag)} stands on {node}, which it cannot be",
            "remove the tag, or write the value the tag names",
        )


def _short(tag: str) -> str:
    return "!!" + tag[len(_STD) :] if tag.startswith(_STD) else tag
