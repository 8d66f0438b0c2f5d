"""What the state files mean: per job, the runs trainops started and what became of them.

`state/<xx>/<job>.json` holds a `JobState`: plain frozen values with a JSON round trip, so the
planner can read them without I/O and apply can write them back as text. The state branch is input
(DESIGN §9): anyone who can push can write it, so `parse_state` validates every file strictly —
its JSON, every field's type, the job it claims, run ids that belong to that job and provider —
and a file that fails becomes a `JobState` with a `problem`: the planner leaves that job alone.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import MISSING, asdict, dataclass, field, fields, replace
from typing import Any, Literal

from trainops import metrics as _metrics
from trainops.errors import Problem
from trainops.providers.base import ACTIVE_HEALTH, Health

# The times and amounts a state file may hold: a time is seconds since 1970 up to the end of year
# 9999 (what dates can show: a forged 1e20 would crash every month and date computed from it),
# an amount (seconds billed, dollars) at most 10^15.
MAX_TIME = 253_402_300_799.0
MAX_AMOUNT = 1e15

STATE_DIR = "state"
SNAPSHOT_DIR = "snapshots"
FORMAT = 1


@dataclass(frozen=True, slots=True)
class Run:
    """One submission of one revision, from its intent (DESIGN §8) to its end."""

    revision: str
    attempt: int
    provider: str
    input_hash: str
    created_at: float  # when the intent was recorded
    source_commit: str = ""
    run_id: str | None = None  # None: an intent whose provider call is not yet recorded
    health: Health = Health.PENDING
    lost: bool = False  # an intent that adoption found no run for: it never started
    trainer: str = ""
    destination: str = ""
    hardware: str = ""
    started_at: float | None = None
    completed_at: float | None = None
    billed_seconds: float | None = None
    cost_usd: float | None = None
    outputs: Mapping[str, str] = field(default_factory=dict)
    error: str = ""
    reason: str = ""  # why trainops canceled it (replaced, suspended, max_duration, ...)
    retryable: bool = True
    deliveries: Mapping[str, str] = field(default_factory=dict)  # target key -> "done" | error
    reported: str = ""  # the health last reported (DESIGN §11)
    owner: str = ""  # host:pid of the reconciler that recorded the intent
    # Where the run lives, for providers whose runs belong to one place (Located: a local run's
    # machine and clone). Empty: wherever its provider is.
    location: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)  # the job's labels at submission
    snapshot: str = ""
    metrics: Mapping[str, float] = field(default_factory=dict)  # final metrics (DESIGN §19)
    # sha256 of each file a delivery copied (its name in the delivery manifest), for trace
    # and checkout
    digests: Mapping[str, str] = field(default_factory=dict)
    # Where each delivery put the run's outputs (target key -> the Hub commit, the S3 prefix):
    # what a promotion points an alias at, and what `trace repo@revision` matches
    delivered: Mapping[str, str] = field(default_factory=dict)
    # spec.promote (DESIGN §19), alias key -> "done" (the alias points here), "held: why",
    # "superseded by run X" or "failed: why" (promotion.gate)
    promotions: Mapping[str, str] = field(default_factory=dict)
    # What stood behind each remote URL of its input just before the submit (DESIGN §18), by
    # input key: `fingerprints.record` text, compared by `plan` to show input drift.
    fingerprints: Mapping[str, str] = field(default_factory=dict)
    # Instances the run bills at once (SageMaker's instance_count), for the cost so far of a
    # running run; written only when more than one.
    instances: int = 1

    @property
    def is_intent(self) -> bool:
        return self.run_id is None and not self.lost

    @property
    def where(self) -> str:
        """The human part of `location`: `host:/path/to/clone` (the clone id after `#` is not)."""
        return self.location.rsplit("#", 1)[0] or "another clone"

    @property
    def active(self) -> bool:
        """Might be using (or about to use) the provider's resources."""
        if self.run_id is None:
            return not self.lost  # an intent
        return self.health in ACTIVE_HEALTH

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["health"] = self.health.value
        data["outputs"] = dict(self.outputs)
        data["deliveries"] = dict(self.deliveries)
        data["labels"] = dict(self.labels)
        data["metrics"] = dict(self.metrics)
        data["digests"] = dict(self.digests)
        # Written only when set: the records of jobs without promotion, or without remote
        # inputs, stay as they were.
        for name in ("delivered", "promotions", "fingerprints"):
            data[name] = dict(getattr(self, name))
            if not data[name]:
                del data[name]
        if self.instances == 1:
            del data["instances"]
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Run:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        known["health"] = Health(known.get("health", Health.PENDING.value))
        return cls(**known)


@dataclass(frozen=True, slots=True)
class MonthTotal:
    """What retired runs (dropped from the tip by retention, DESIGN §9) of one job cost in one
    month, per provider, hardware and label set: `cost` prices `billed_seconds` with today's
    prices as it prices a kept run, and adds `usd` (the cost of runs billed in dollars)."""

    month: str
    runs: int
    provider: str = ""
    hardware: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    billed_seconds: float = 0.0
    usd: float = 0.0

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["labels"] = dict(self.labels)
        return data


@dataclass(frozen=True, slots=True)
class JobState:
    job: str
    runs: tuple[Run, ...] = ()
    # The state commit whose copy of this file still holds the runs retention last dropped
    # from it (DESIGN §9); that copy's own `archive` leads further back. `history` follows it.
    archive: str = ""
    totals: tuple[MonthTotal, ...] = ()
    # Why state/<job>.json could not be read. Such a job is left alone (no submit, cancel or
    # delivery) and its file is never rewritten by trainops.
    problem: str = ""
    # The file the problem is in (a legacy flat `state/<job>.json` or the fanned-out path).
    path: str = field(default="", compare=False)
    # Removed from git, its last run ended and was reported: no longer shown by plan and
    # status. The file stays (cost and history read it); the job is shown again if re-added.
    pruned: bool = False

    def of_revision(self, revision: str) -> list[Run]:
        return [r for r in self.runs if r.revision == revision]

    def with_run(self, run: Run) -> JobState:
        """Replace the run with the same (revision, attempt), or append it."""
        runs = list(self.runs)
        for i, existing in enumerate(runs):
            if (existing.revision, existing.attempt) == (run.revision, run.attempt):
                runs[i] = run
                return replace(self, runs=tuple(runs))
        return replace(self, runs=(*runs, run))

    def to_text(self) -> str:
        data: dict[str, Any] = {
            "format": FORMAT,
            "job": self.job,
            "runs": [r.to_json() for r in self.runs],
        }
        if self.pruned:
            data["pruned"] = True
        if self.archive:
            data["archive"] = self.archive
        if self.totals:
            data["totals"] = [t.to_json() for t in self.totals]
        return json.dumps(data, indent=1, sort_keys=True) + "\n"

    @classmethod
    def from_text(cls, text: str, path: str = "") -> JobState:
        """Parse a state file's text (read from `path`); `StateFileError` when it is not a
        valid one.

        Every command reads every job's file, so the types are checked in one compiled pass
        (`_typed_reader`); only a file that fails it, or one that spells NaN or Infinity, is
        read again field by field here, to say exactly what is wrong (or, where the compiled
        check was stricter than this one, to accept it after all). Both paths end in the same
        value checks (`_checked_run`, `_checked_total`), so they accept the same files."""
        typed = _read_typed(text)
        if typed is not None:
            try:
                return cls._from_data(typed, _checked_run, _checked_total, path)
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
        return cls._from_data(data, _run, _total, path)

    @classmethod
    def _from_data(
        cls,
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
        return cls(
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
    values: dict[str, Any] = {}
    for name, required, what, check, is_float in _TOTAL_FIELDS:
        if name not in data:
            if required:
                raise StateFileError(f"{where}.{name} is missing")
            continue
        value = data[name]
        if not check(value):
            raise StateFileError(f"{where}.{name} must be {what}, not {_kind(value)}")
        values[name] = float(value) if is_float else value
    return _checked_total(index, MonthTotal(**values))


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
    values: dict[str, Any] = {}
    for name, required, what, check, is_float in _RUN_FIELDS:
        if name not in data:
            if required:
                raise StateFileError(f"runs[{index}].{name} is missing")
            continue
        value = data[name]
        if not check(value):
            raise StateFileError(f"runs[{index}].{name} must be {what}, not {_kind(value)}")
        values[name] = float(value) if is_float and value is not None else value
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


def fanout(job: str) -> str:
    """The subdirectory a job's files live in: two hex digits of a hash of its name, so that
    a commit touching a few jobs rewrites a few small trees, never one tree of every job."""
    return hashlib.sha1(job.encode()).hexdigest()[:2]


def state_path(job: str) -> str:
    return f"{STATE_DIR}/{fanout(job)}/{job}.json"


def legacy_state_path(job: str) -> str:
    """Where trainops before the fan-out layout kept a job's file (read, and moved on write)."""
    return f"{STATE_DIR}/{job}.json"


def snapshot_path(job: str, revision: str) -> str:
    return f"{SNAPSHOT_DIR}/{fanout(job)}/{job}/{revision}.yaml"


def job_of_path(path: str) -> str | None:
    """The job a state file is for: `state/<xx>/<job>.json` (xx its fan-out) or the legacy
    `state/<job>.json`; None for any other path."""
    parts = path.split("/")
    if parts[0] != STATE_DIR or not parts[-1].endswith(".json"):
        return None
    name = parts[-1][: -len(".json")]
    if len(parts) == 2 or (len(parts) == 3 and parts[1] == fanout(name)):
        return name
    return None


# (job, run) -> why the run cannot be that job's (empty when it can): each provider's rule for
# its run ids and outputs, given by the caller so this module stays free of providers.
RunCheck = Callable[[str, Run], str]


def parse_state(
    files: Mapping[str, str],
    check_run: RunCheck | None = None,
    unreadable: Mapping[str, str] | None = None,
) -> dict[str, JobState]:
    """Every `state/<job>.json`, validated (DESIGN §9: the state branch is input). A file that
    fails, or that the store could not read as text (`unreadable`: path -> why), is returned as
    a `JobState` with only a `problem`, keyed by its file name, so the caller reports it and
    leaves that job alone while every other job proceeds."""
    jobs: dict[str, JobState] = {}
    seen: dict[str, list[str]] = {}
    for path, why in sorted((unreadable or {}).items()):
        name = job_of_path(path)
        if name is not None:
            jobs[name] = JobState(name, problem=why, path=path)
            seen.setdefault(name, []).append(path)
    for path, text in sorted(files.items()):
        name = job_of_path(path)
        if name is None:
            continue
        seen.setdefault(name, []).append(path)
        try:
            state = JobState.from_text(text, path)
            if state.job != name:
                raise StateFileError(f"it claims job {state.job!r}, but its name says {name!r}")
            for i, run in enumerate(state.runs):
                why = check_run(name, run) if check_run is not None else ""
                if why:
                    raise StateFileError(f"runs[{i}]: {why}")
        except StateFileError as exc:
            state = JobState(name, problem=str(exc), path=path)
        if name not in jobs or not jobs[name].problem:  # a bad copy keeps its problem
            jobs[name] = state
    # trainops moves a legacy flat file when it writes the fanned-out one, never keeps both:
    # two records of one job mean a forged one, and which cannot be told.
    for name, paths in seen.items():
        if len(paths) > 1 and not jobs[name].problem:
            legacy = legacy_state_path(name)
            jobs[name] = JobState(
                name, problem=f"a second record of this job beside {state_path(name)}", path=legacy
            )
    _refuse_shared_run_ids(jobs)
    return jobs


def _refuse_shared_run_ids(jobs: dict[str, JobState]) -> None:
    """A run id belongs to one job: files that claim the same run are all left alone, since
    which one is forged cannot be told (acting on either could cancel another job's run)."""
    claims: dict[tuple[str, str], set[str]] = {}
    for name, state in jobs.items():
        for run in state.runs:
            if run.run_id:
                claims.setdefault((run.provider, run.run_id), set()).add(name)
    for (_provider, run_id), names in sorted(claims.items()):
        if len(names) > 1:
            for name in names:
                others = ", ".join(sorted(names - {name}))
                jobs[name] = JobState(
                    name, problem=f"run {run_id} is also claimed by {others}", path=jobs[name].path
                )


def state_problems(jobs: Mapping[str, JobState]) -> list[Problem]:
    """The state files that failed validation, as problems naming each file."""
    return [
        Problem(
            state.path or state_path(name),
            message=state.problem,
            hint="the state branch is input: fix or delete this file on the state branch; "
            "until then this job is left alone",
            job=name,
        )
        for name, state in sorted(jobs.items())
        if state.problem
    ]
