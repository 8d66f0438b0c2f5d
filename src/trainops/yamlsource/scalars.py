"""Tags and scalars: what a node's tag may be, and the value a scalar event stands for.

Owns the parser trainops reads with (`LOADER`: libyaml when PyYAML has it), the tags a manifest
may carry and on which kind of node (`check_tag`), the construction of a scalar's value as
PyYAML's safe constructor would (`scalar`), refusing what it cannot construct or what no
manifest may hold, and the bounded memo of untagged scalars already read (`CLEAN`).
"""

from __future__ import annotations

import math
import re
from typing import Any

import yaml

from trainops.yamlsource.marks import Refused, has_token, redact

LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# The fast read's (plain.py) event source: libyaml's bare parser, which sets up none of a
# loader's constructor and resolver state for each file, its scalars resolved by one shared
# resolver (implicit resolution reads only the class's table of patterns). None without libyaml:
# the fast read then uses a LOADER, as the composer does.
_CYAML = getattr(yaml, "cyaml", None)
PARSER: Any = getattr(_CYAML, "CParser", None) if LOADER is not yaml.SafeLoader else None
RESOLVER: Any = yaml.resolver.Resolver()
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

_ScalarEvent = yaml.ScalarEvent

# Untagged scalars already read -> their value (str, int, float, bool or None: immutable), so
# the thousandth `provider: local` is not resolved and constructed again. Short values only,
# and forgotten wholesale when full: memory stays bounded whatever the files hold.
_SEEN: dict[tuple[str, Any], Any] = {}
_SEEN_MAX = 20_000
SEEN_LEN = 48


# The subset of _SEEN that needs no check once read (every value but a token-looking string or
# a number JSON cannot carry): the composer places those without looking at them again.
CLEAN: dict[tuple[str, Any], Any] = {}
MISS = object()

# The first characters of a plain scalar the loader resolves by pattern (bool, int, float, null,
# merge, timestamp, value), from its own table; a None key would be a pattern for any character,
# and then no first character would tell text.
_PATTERNED: frozenset[str | None] = frozenset(LOADER.yaml_implicit_resolvers)
_TEXT_BY_FIRST = None not in _PATTERNED
_DECIMAL = re.compile(r"[-+]?(?:0|[1-9][0-9]*)\Z")


def scalar(loader: Any, event: Any) -> Any:
    """The value of a scalar event; `loader` resolves its tag (a loader, or `RESOLVER`)."""
    if event.tag is None and len(event.value) <= SEEN_LEN:
        key = (event.value, event.implicit)
        value = _SEEN.get(key, MISS)  # most are new: no KeyError raised and caught for each
        if value is not MISS:
            return value
        value = _construct(loader, event)
        _remember(key, value)
        return value
    return _construct(loader, event)


def clean_scalar(loader: Any, event: Any) -> Any:
    """The value of an untagged scalar the caller did not find in CLEAN, or MISS when it needs
    a check (a number JSON cannot carry, a token-looking string): `scalar`, without looking
    the value up twice."""
    text = event.value
    if len(text) > SEEN_LEN:
        value = _construct(loader, event)
        return value if _needs_no_check(value) else MISS
    key = (text, event.implicit)
    if key in _SEEN:
        return MISS  # read before and not in CLEAN: it needs the check
    value = _construct(loader, event)
    return value if _remember(key, value) else MISS


def _remember(key: tuple[str, Any], value: Any) -> bool:
    """Keep an untagged short scalar's value in _SEEN, and in CLEAN when it needs no check
    (returned)."""
    if len(_SEEN) >= _SEEN_MAX:
        _SEEN.clear()
        CLEAN.clear()
    _SEEN[key] = value
    if _needs_no_check(value):
        CLEAN[key] = value
        return True
    return False


def _needs_no_check(value: Any) -> bool:
    return not (
        (isinstance(value, float) and not math.isfinite(value))
        or (isinstance(value, str) and has_token(value))
    )


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
    shown = redact(event.value) if len(event.value) <= 40 else "this value"
    if tag == _VALUE:  # a plain `=`: YAML 1.1's value key, which PyYAML cannot construct
        raise Refused(
            event.start_mark,
            f"{shown} reads as YAML's !!value tag, which no manifest can hold",
            f'quote it to pass the text: "{shown}"',
        )
    node = yaml.ScalarNode(tag, event.value, event.start_mark, event.end_mark, event.style)
    constructor = _constructor.yaml_constructors.get(tag)
    if constructor is None:
        raise Refused(event.start_mark, f"tag {_short(tag)} is not allowed")
    try:
        value = constructor(_constructor, node)
    except (ValueError, KeyError, IndexError, TypeError, AttributeError, OverflowError):
        # What PyYAML's constructor fails on, as the error it raises for it: a number's shape
        # without its digits (0x_, 0b_) or with too many, `!!bool foo` (KeyError), `!!int ""`
        # (IndexError), `!!timestamp foo` (AttributeError), an impossible date (ValueError).
        what = _short(tag)[2:]
        if tag in _NUMBER_TAGS:
            raise Refused(
                event.start_mark,
                f"{shown or '(empty)'} reads as {what} in YAML but is not a number trainops "
                "can read",
                "write the number out, or quote it to pass the text",
            ) from None
        raise Refused(
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


def check_tag(tag: str, kind: Any, mark: Any) -> None:
    """Refuse a tag no manifest may hold, or one on the wrong kind of node."""
    if tag not in _KNOWN_TAGS:
        raise Refused(
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
        raise Refused(
            mark,
            f"tag {_short(tag)} stands on {node}, which it cannot be",
            "remove the tag, or write the value the tag names",
        )


def _short(tag: str) -> str:
    return "!!" + tag[len(_STD) :] if tag.startswith(_STD) else tag
