"""The fast read of a plain file: what almost every manifest is, read at close to libyaml's pace.

A plain file holds mappings, lists and scalars that need no second look: no tag, no anchor or
alias, no merge key, no duplicate key, no value the composer refuses or remembers (a number
JSON cannot carry, a token-looking string), within the depth and node limits. `documents`
reads such a file with the open container and its pending key kept in local variables (the
composer keeps them on a stack of objects, a cost on every one of a repository's events), and
gives up, returning None, at the first event that is not plain, or at any error of the parser:
the caller then reads the file with the composer (`compose.compose`), which says what is wrong
and where. So the fast read answers only what the composer would answer, the same data for the
same file; it decides nothing of its own.
"""

from __future__ import annotations

from typing import Any

import yaml

from trainops.yamlsource.compose import MAX_DEPTH, MAX_NODES, Document
from trainops.yamlsource.marks import Refused
from trainops.yamlsource.scalars import CLEAN, LOADER, MISS, PARSER, RESOLVER, clean_scalar

_ScalarEvent = yaml.ScalarEvent
_MappingStart = yaml.MappingStartEvent
_SequenceStart = yaml.SequenceStartEvent
_MappingEnd = yaml.MappingEndEvent
_SequenceEnd = yaml.SequenceEndEvent
_DocumentStart = yaml.DocumentStartEvent
_DocumentEnd = yaml.DocumentEndEvent
_StreamEnd = yaml.StreamEndEvent

_NO_KEY = object()


class _NotPlain(Exception):
    """An event the fast read leaves to the composer."""


def documents(text: str, file: str) -> list[Document] | None:
    """Every document of `text` when the whole file is plain (see the module docstring), each
    without positions; None when it is not, or when the parser fails on it."""
    if PARSER is not None:  # libyaml's bare parser: events only, scalars resolved by RESOLVER
        parser = PARSER(text)
        resolver = RESOLVER
    else:
        parser = resolver = LOADER(text)
    # A tag starts with "!" and an anchor with "&" in the text, wherever it stands: a file with
    # neither holds none, and its events need no look for them.
    marked = "!" in text or "&" in text
    try:
        return _read(parser, resolver, file, marked)
    except (_NotPlain, Refused, yaml.YAMLError):
        return None
    finally:
        parser.dispose()


def _read(parser: Any, resolver: Any, file: str, marked: bool) -> list[Document]:
    # The hot loop of `validate` (one pass over every event of a repository): the open
    # container, whether it is a mapping and its pending key live in locals; the most frequent
    # case (a mapping's key or value) is tested first; the node budget is checked where a
    # container opens and where a document ends, which refuses the same files as a check per
    # node (the fast read only says "not plain": a file over the budget is the composer's).
    get = parser.get_event
    clean = CLEAN.get
    docs: list[Document] = []
    spent = 0  # nodes of the whole file, as the composer counts them
    while True:
        kind = type(get())
        if kind is _StreamEnd:
            return docs
        if kind is not _DocumentStart:  # the stream's start
            continue
        root: Any = None
        parents: list[tuple[Any, bool]] = []  # (container, is a mapping) of the open ones above
        into: Any = None  # the open container (None: the document's root is being read)
        in_map = False
        key: Any = _NO_KEY
        while True:
            event = get()
            kind = type(event)
            if kind is _ScalarEvent:
                if marked and (event.tag is not None or event.anchor is not None):
                    raise _NotPlain
                value = clean((event.value, event.implicit), MISS)
                if value is MISS:
                    value = clean_scalar(resolver, event)  # a refusal is the composer's to locate
                    if value is MISS:
                        raise _NotPlain
                spent += 1
                if in_map:
                    if key is _NO_KEY:
                        if value == "<<":  # a merge key, or its text: the composer tells which
                            raise _NotPlain
                        key = value
                    elif key in into:
                        raise _NotPlain
                    else:
                        into[key] = value
                        key = _NO_KEY
                elif into is not None:
                    into.append(value)
                else:
                    root = value
            elif kind is _MappingStart or kind is _SequenceStart:
                if marked and (event.tag is not None or event.anchor is not None):
                    raise _NotPlain
                spent += 1
                if spent > MAX_NODES or len(parents) + (into is not None) >= MAX_DEPTH:
                    raise _NotPlain
                made: Any = {} if kind is _MappingStart else []
                if in_map:
                    if key is _NO_KEY or key in into:
                        raise _NotPlain  # a mapping or list as a key, or a duplicate key
                    into[key] = made
                    key = _NO_KEY
                elif into is not None:
                    into.append(made)
                else:
                    root = made
                if into is not None:
                    parents.append((into, in_map))
                into, in_map = made, kind is _MappingStart
            elif kind is _MappingEnd or kind is _SequenceEnd:
                if parents:
                    into, in_map = parents.pop()
                else:
                    into, in_map = None, False
            elif kind is _DocumentEnd:
                if spent > MAX_NODES:
                    raise _NotPlain
                docs.append(Document(file, len(docs), root))
                break
            else:  # an alias
                raise _NotPlain
