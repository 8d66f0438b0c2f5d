"""The state file's schema: one file's text read strictly into a `JobState` (DESIGN §9).

The state branch is input: anyone who can push can write it. `read_state_file` checks a file's
JSON, every field's type, the ranges of its times and amounts, its revisions and commit ids, and
raises `StateFileError` saying what is wrong. Every command reads every job's file, so the types
are checked in one compiled pass (`_typed_reader`); only a file that fails it is read again field
by field (`_run`, `_total`), and both paths end in the same value checks. The records read are
made small (`_shared`): a pass over 30,000 jobs holds every run at once.
"""

from __future__ import annotations

import functools
import json
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import MISSING, fields
from typing import Any, Literal

from trainops import metrics as _metrics
from trainops.state.model import FORMAT, Health, JobState, MonthTotal, Run

__all__ = ["MAX_AMOUNT", "MAX_TIME", "StateFileError", "read_state_file"]

# The times and amounts a state file may hold: a time is seconds since 1970 up to the end of year
# 9999 (what dates can show: a forged 1e20 would crash every month and date computed from it),
# an amount (seconds billed, dollars) at most 10^15.
MAX_TIME = 253_402_300_799.0
MAX_AMOUNT = 1e15


def read_state_file(text: str, path: str = "") -> JobState:
    """Parse a state file's text (read from `path`); `StateFileError` when it is not a
    valid one.

    The types are checked in one compiled pass (`_typed_reader`); only a file that fails it, or
    one that spells NaN or Infinity, is read again field by field here, to say exactly what is
    wrong (or, where the compiled check was stricter than this one, to accept it after all).
    Both paths end in the same value checks (`_checked_run`, `_checked_total`), so they accept
    the same files."""
    typed = _read_typed(text)
    if typed is not None:
        try:
            return _from_data(typed, _checked_run, _checked_total, path)
        except StateFileError:
            pass  # said precisely below
    try:
        data = json.loads(text, parse_constant=_no_constant)
    except ValueError as exc:
        raise StateFileError(f"not valid JSON ({exc})") from None
    except RecursionError:  # arrays or objects nested deeper than the decoder goes
        raise StateFileError("not valid JSON (nested too deeply)") from None
    if not isinstance(data, dict):
        raise StateFileError(f"expected a JSON object, not {_kind(data)}")
    return _from_data(data, _run, _total, path)


def _from_data(
    data: dict[str, Any],
    run: Callable[[int, Any], Run],
    total: Callable[[int, Any], MonthTotal],
    path: str,
) -> JobState:
    if data.get("format", FORMAT) != FORMAT:
        raise StateFileError(
            f"format {data.get('format')!r} is not {FORMAT}: written by another trainops"
        )
    job = data.get("job")
    if not isinstance(job, str) or not job:
        raise StateFileError("'job' is missing or not a string")
    runs = data.get("runs", [])
    if not isinstance(runs, list):
        raise StateFileError(f"'runs' must be a list, not {_kind(runs)}")
    pruned = data.get("pruned", False)
    if not isinstance(pruned, bool):
        raise StateFileError(f"'pruned' must be true or false, not {_kind(pruned)}")
    archive = data.get("archive", "")
    if not isinstance(archive, str) or not (archive == "" or _COMMIT.match(archive)):
        raise StateFileError(f"'archive' must be a commit id, not {_kind(archive)}")
    totals = data.get("totals", [])
    if not isinstance(totals, list):
        raise StateFileError(f"'totals' must be a list, not {_kind(totals)}")
    return JobState(
        job=sys.intern(job),
        runs=tuple(run(i, r) for i, r in enumerate(runs)),
        pruned=pruned,
        archive=archive,
        totals=tuple(total(i, t) for i, t in enumerate(totals)),
        path=path,
    )


class StateFileError(ValueError):
    """A state file that does not validate; the message says what is wrong with it."""


# How each field of `Run` is checked, by its annotation. JSON has no NaN or infinities, and a
# bool is not a number here.
_is_number = _metrics.is_number


# Health by its value: a dict lookup per run, not an enum call (and its check a set lookup).
_HEALTH: dict[Any, Health] = {h.value: h for h in Health}


def _is_health(v: Any) -> bool:
    return isinstance(v, str) and v in _HEALTH


def _is_text_map(v: Any) -> bool:
    return isinstance(v, dict) and all(isinstance(x, str) for kv in v.items() for x in kv)


_FIELD_CHECKS: dict[str, tuple[str, Callable[[Any], bool]]] = {
    "str": ("a string", lambda v: isinstance(v, str)),
    "str | None": ("a string or null", lambda v: v is None or isinstance(v, str)),
    "int": ("an integer", lambda v: isinstance(v, int) and not isinstance(v, bool)),
    "float": ("a number", _is_number),
    "float | None": ("a number or null", lambda v: v is None or _is_number(v)),
    "bool": ("true or false", lambda v: isinstance(v, bool)),
    "Health": ("one of " + ", ".join(h.value for h in Health), _is_health),
    "Mapping[str, str]": ("an object of strings", _is_text_map),
    "Mapping[str, float]": ("an object of at most 64 named numbers", _metrics.valid),
}
assert {str(f.type) for f in fields(Run)} <= set(_FIELD_CHECKS), "a Run field has no check"
# \Z, not $: "$" also matches before a final newline, and a revision ends up in paths.
_REVISION = re.compile(r"[0-9a-f]{12}\Z")
_COMMIT = re.compile(r"[0-9a-f]{40}\Z")
_MONTH = re.compile(r"[0-9]{4}-(0[1-9]|1[0-2])\Z")


# (name, required, what, check, is float) per field of MonthTotal, worked out once as for Run.
_TOTAL_FIELDS = [
    (
        f.name,
        f.default is MISSING and f.default_factory is MISSING,
        *_FIELD_CHECKS[str(f.type)],
        f.type == "float",
    )
    for f in fields(MonthTotal)
]
_TOTAL_NAMES = frozenset(f.name for f in fields(MonthTotal))


def _total(index: int, data: Any) -> MonthTotal:
    where = f"totals[{index}]"
    if not isinstance(data, dict):
        raise StateFileError(f"{where} must be an object, not {_kind(data)}")
    if not data.keys() <= _TOTAL_NAMES:
        unknown = sorted(set(data) - _TOTAL_NAMES)
        raise StateFileError(f"{where}.{unknown[0]} is not a field of a month's total")
    return _checked_total(index, MonthTotal(**_values(where, data, _TOTAL_FIELDS)))


def _values(where: str, data: dict[str, Any], table: list[Any]) -> dict[str, Any]:
    """The fields of one record, each checked against its type (`_TOTAL_FIELDS`, `_RUN_FIELDS`:
    name, required, what, check, is float); a float field's integer is read as a float."""
    values: dict[str, Any] = {}
    for name, required, what, check, is_float in table:
        if name not in data:
            if required:
                raise StateFileError(f"{where}.{name} is missing")
            continue
        value = data[name]
        if not check(value):
            raise StateFileError(f"{where}.{name} must be {what}, not {_kind(value)}")
        values[name] = float(value) if is_float and value is not None else value
    return values


def _checked_total(index: int, total: MonthTotal) -> MonthTotal:
    """A month's total whose fields have their types: the checks of its values (both readers)."""
    where = f"totals[{index}]"
    if not _MONTH.match(total.month):
        raise StateFileError(f"{where}.month {total.month!r} is not a month (YYYY-MM)")
    if total.runs < 1 or not (
        0 <= total.billed_seconds <= MAX_AMOUNT and 0 <= total.usd <= MAX_AMOUNT
    ):
        raise StateFileError(f"{where}: runs, billed_seconds and usd cannot be negative or huge")
    if not total.labels:
        object.__setattr__(total, "labels", _NO_ENTRIES)  # still ours alone: see _shared
    return total


# Text most runs share (the same provider, commit, owner, ...): one string for all of them, not
# one per run of every state file read. `_shared` spells these fields (and `_MAPPINGS`) out;
# tests/unit/test_state_reader.py holds it to both lists.
_SHARED_TEXT = tuple(
    sorted(
        {"provider", "input_hash", "source_commit", "trainer", "destination", "hardware"}
        | {"owner", "location", "reported"}
    )
)
# (name, required, what, check, is float) per field of Run, worked out once, for `_run`.
_RUN_FIELDS = [
    (
        f.name,
        f.default is MISSING and f.default_factory is MISSING,
        *_FIELD_CHECKS[str(f.type)],
        str(f.type) in ("float", "float | None"),  # not Mapping[str, float]
    )
    for f in fields(Run)
]
assert {f.name for f in fields(Run) if f.type == "str"} >= set(_SHARED_TEXT)
_MAPPINGS = tuple(f.name for f in fields(Run) if str(f.type).startswith("Mapping["))


# The one empty mapping each empty mapping field of a parsed run (`_MAPPINGS`: most are empty in
# most runs) and of a month's total is made (`_shared`, `_checked_total`). Never written to:
# Run's fields are read-only Mappings, and every change makes a new Run with a new dict.
_NO_ENTRIES: Mapping[str, Any] = {}


def _run(index: int, data: Any) -> Run:
    if not isinstance(data, dict):
        raise StateFileError(f"runs[{index}] must be an object, not {_kind(data)}")
    values = _values(f"runs[{index}]", data, _RUN_FIELDS)
    values["health"] = _HEALTH[values.get("health", Health.PENDING.value)]
    return _checked_run(index, Run(**values))


def _checked_run(index: int, run: Run) -> Run:
    """A run whose fields have their types: the checks of its values (both readers), then
    `_shared`."""
    if not _REVISION.match(run.revision):
        raise StateFileError(f"runs[{index}].revision {run.revision!r} is not a revision")
    if run.attempt < 1:
        raise StateFileError(f"runs[{index}].attempt must be 1 or more")
    if not 1 <= run.instances <= 10_000:
        raise StateFileError(f"runs[{index}].instances must be 1 to 10000")
    for name in ("created_at", "started_at", "completed_at"):
        at = getattr(run, name)
        if at is not None and not 0 <= at <= MAX_TIME:
            raise StateFileError(f"runs[{index}].{name} {at!r} is not a time trainops records")
    for name in ("billed_seconds", "cost_usd"):
        amount = getattr(run, name)
        if amount is not None and not 0 <= amount <= MAX_AMOUNT:
            raise StateFileError(f"runs[{index}].{name} {amount!r} is out of range")
    if run.metrics and not _metrics.valid(run.metrics):
        what = _FIELD_CHECKS["Mapping[str, float]"][0]
        raise StateFileError(f"runs[{index}].metrics must be {what}")
    return _shared(run)


def _shared(run: Run) -> Run:
    """`run` (just read, not yet handed out, so still free to change) with the text most runs
    share made one string for all of them and each empty mapping the one `_NO_ENTRIES`: a pass
    over 30,000 jobs keeps every run in memory at once. Spelled out field by field, as this
    runs for every run of every pass (`_SHARED_TEXT` and `_MAPPINGS` list the same fields)."""
    put, intern = object.__setattr__, sys.intern
    put(run, "destination", intern(run.destination))
    put(run, "hardware", intern(run.hardware))
    put(run, "input_hash", intern(run.input_hash))
    put(run, "location", intern(run.location))
    put(run, "owner", intern(run.owner))
    put(run, "provider", intern(run.provider))
    put(run, "reported", intern(run.reported))
    put(run, "source_commit", intern(run.source_commit))
    put(run, "trainer", intern(run.trainer))
    if not run.outputs:
        put(run, "outputs", _NO_ENTRIES)
    if not run.deliveries:
        put(run, "deliveries", _NO_ENTRIES)
    if not run.labels:
        put(run, "labels", _NO_ENTRIES)
    if not run.metrics:
        put(run, "metrics", _NO_ENTRIES)
    if not run.digests:
        put(run, "digests", _NO_ENTRIES)
    if not run.delivered:
        put(run, "delivered", _NO_ENTRIES)
    if not run.promotions:
        put(run, "promotions", _NO_ENTRIES)
    if not run.fingerprints:
        put(run, "fingerprints", _NO_ENTRIES)
    # Live, never recorded (Run.progress): what a state file says of it is not read, so a
    # forged one cannot stop a member of a sweep early (DESIGN §21).
    put(run, "progress", _NO_ENTRIES)
    return run


@functools.cache
def _typed_reader() -> Any:
    """The state file's shape (`JobState.to_text`) as one strict pydantic validator over
    `Run`'s and `MonthTotal`'s own fields: JSON in, the records built in one compiled pass.
    Strict: a string is never a number, a bool never an integer; numbers are finite. Unknown
    fields of a run or of the file are dropped, as `_run` drops them; a total's are refused, as
    `_total` refuses them.

    The schema is pydantic-core's, built here from the dataclasses' fields (`core`, by the
    annotation `_FIELD_CHECKS` is keyed by too): what a `TypeAdapter` would generate, without
    the 0.1 s that generating it costs every command that reads state."""
    from pydantic_core import SchemaValidator
    from pydantic_core import core_schema as cs

    config = cs.CoreConfig(strict=True, allow_inf_nan=False)
    number = cs.float_schema(allow_inf_nan=False)
    core = {
        "str": cs.str_schema(),
        "str | None": cs.nullable_schema(cs.str_schema()),
        "int": cs.int_schema(),
        "float": number,
        "float | None": cs.nullable_schema(number),
        "bool": cs.bool_schema(),
        "Health": cs.enum_schema(Health, list(Health), sub_type="str"),
        "Mapping[str, str]": cs.dict_schema(cs.str_schema(), cs.str_schema()),
        "Mapping[str, float]": cs.dict_schema(cs.str_schema(), number),
    }

    def record(cls: type, extra: Literal["ignore", "forbid"]) -> cs.CoreSchema:
        args = []
        for f in fields(cls):
            schema = core[str(f.type)]
            if f.default is not MISSING:
                schema = cs.with_default_schema(schema, default=f.default)
            elif f.default_factory is not MISSING:
                schema = cs.with_default_schema(schema, default_factory=f.default_factory)
            args.append(cs.dataclass_field(f.name, schema))
        return cs.dataclass_schema(
            cls,
            cs.dataclass_args_schema(cls.__name__, args, extra_behavior=extra),
            [f.name for f in fields(cls)],
            slots=True,
            config=config | {"extra_fields_behavior": extra},
        )

    def optional(schema: cs.CoreSchema) -> cs.TypedDictField:
        return cs.typed_dict_field(schema, required=False)

    state_file = cs.typed_dict_schema(
        {
            "format": optional(cs.int_schema()),
            "job": optional(cs.str_schema()),
            "runs": optional(cs.list_schema(record(Run, "ignore"))),
            "pruned": optional(cs.bool_schema()),
            "archive": optional(cs.str_schema()),
            "totals": optional(cs.list_schema(record(MonthTotal, "forbid"))),
        },
        extra_behavior="ignore",
    )
    return SchemaValidator(state_file, config)


def _read_typed(text: str) -> dict[str, Any] | None:
    """`text` read by `_typed_reader`, or None when it does not pass (or names a constant
    JSON has not, which `json.loads` refuses everywhere and pydantic only in numbers)."""
    from pydantic_core import ValidationError

    if "NaN" in text or "Infinity" in text:
        return None
    try:
        data: dict[str, Any] = _typed_reader().validate_json(text)
    except ValidationError:
        return None
    return data


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", str: "a string", int: "a number", float: "a number"}.get(
        type(value), "an object" if isinstance(value, dict) else "a list"
    ) + (f" ({value!r})" if isinstance(value, str | int | float) and len(repr(value)) < 40 else "")
