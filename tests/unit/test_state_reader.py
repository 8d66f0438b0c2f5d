"""A state file is read by one compiled pass over its types, and only a file that fails it is read
again field by field to say what is wrong (`trainops.state.schema.read_state_file`). Both readers
must accept exactly the same files as the same values: the state branch is input (DESIGN §9), and
a faster reader that let through what the careful one refuses would be a hole, not a speed-up.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from trainops.state.model import Health, JobState, MonthTotal, Run
from trainops.state.schema import (
    StateFileError,
    _from_data,
    _read_typed,
    _run,
    _total,
    read_state_file,
)

FULL = Run(
    revision="0123456789ab",
    attempt=2,
    provider="replicate",
    input_hash="f" * 16,
    created_at=1_700_000_000.5,
    source_commit="c" * 40,
    run_id="r8abc",
    health=Health.SUCCEEDED,
    trainer="acme/trainer:abcdef12",
    destination="acme/model",
    hardware="gpu-l40s",
    started_at=1_700_000_010,  # an integer: read back as a float by both readers
    completed_at=1_700_000_600.25,
    billed_seconds=590.0,
    cost_usd=1.5,
    outputs={"weights": "https://replicate.delivery/w.tar"},
    error="",
    reason="",
    retryable=False,
    deliveries={"hub": "done"},
    reported="Succeeded",
    owner="host:1:2",
    labels={"team": "vision"},
    snapshot="snapshots/aa/a/0123456789ab.yaml",
    metrics={"loss": 0.25, "eval/acc": 1},
    digests={"weights.bin": "e" * 64},
    delivered={"hub": "d" * 40},
    promotions={"prod": "done"},
    fingerprints={"images": "etag=abc"},
)
SPARSE = {  # only the required fields, as an older trainops may have written a run
    "revision": "89abcdef0123",
    "attempt": 1,
    "provider": "local",
    "input_hash": "0" * 16,
    "created_at": 1_700_000_000,
}
TOTAL = MonthTotal("2026-03", 4, "local", "cpu", {"team": "vision"}, 3600, 0.0)


def good_file() -> dict[str, Any]:
    data = json.loads(JobState("a", (FULL,), archive="b" * 40, totals=(TOTAL,)).to_text())
    data["runs"].append(dict(SPARSE))
    return data


def careful(data: dict[str, Any]) -> JobState:
    """The field-by-field reader alone."""
    return _from_data(data, _run, _total, "")


def read_both(data: Any) -> tuple[JobState | str, JobState | str, bool]:
    """What `read_state_file` and the careful reader make of `data` (a value, or the error's text),
    and whether the compiled pass accepted its types."""
    text = json.dumps(data)
    results: list[JobState | str] = []
    for read in (read_state_file, lambda t: careful(json.loads(t))):
        try:
            results.append(read(text))
        except StateFileError as exc:
            results.append(f"error: {exc}")
    return results[0], results[1], _read_typed(text) is not None


def test_a_valid_file_takes_the_compiled_pass_and_reads_as_the_careful_reader_does() -> None:
    fast, slow, typed = read_both(good_file())
    assert typed
    assert isinstance(fast, JobState) and fast == slow
    assert fast.runs[0] == FULL and fast.totals == (TOTAL,)
    assert isinstance(fast.runs[0].started_at, float) and fast.runs[1].created_at == 1.7e9
    assert fast.runs[1].health is Health.PENDING


# Values to put in each field in turn: every JSON type, and the edges of numbers.
ODD: list[Any] = [
    None,
    True,
    False,
    0,
    -1,
    1,
    2.5,
    10**400,  # an integer no float can hold
    1e12,  # a time past year 9999, an amount in range
    1e300,
    "",
    "text",
    "Succeeded",
    "0123456789ab",
    "0123456789ab\n",  # "$" in a Python pattern matches before a final newline; "\\Z" does not
    "2026-03",
    "2026-03\n",
    [],
    ["x"],
    {},
    {"k": "v"},
    {"k": 1},
    {"k": True},
    {"k": None},
]


def mutations() -> list[tuple[str, Any]]:
    """(where, file) for every field of the first run, the first total and the file itself set
    to each odd value, and each removed."""
    out: list[tuple[str, Any]] = []
    base = good_file()
    places: list[tuple[str, dict[str, Any]]] = [("file", base)]
    places += [("runs[0]", base["runs"][0]), ("totals[0]", base["totals"][0])]
    for where, record in places:
        for key in [*record, "unknown"]:
            for value in [*ODD, ...]:  # ...: the field removed
                data = json.loads(json.dumps(base))
                target = data if where == "file" else data[where[:-3]][0]
                if value is ...:
                    target.pop(key, None)
                else:
                    target[key] = value
                out.append((f"{where}.{key}={value!r}"[:80], data))
    return out


def test_every_mutation_is_read_alike_by_both_readers() -> None:
    differ, typed, typed_then_refused = [], 0, 0
    for where, data in mutations():
        fast, slow, passed_types = read_both(data)
        if fast != slow:
            differ.append((where, fast, slow))
        typed += passed_types
        typed_then_refused += passed_types and isinstance(fast, str)
    assert differ == []
    # Both paths were taken, and a value check after the compiled pass refused some files.
    assert 0 < typed < len(mutations()) and typed_then_refused > 0, (typed, typed_then_refused)


@pytest.mark.parametrize(
    "text",
    [
        '{"job": "a", "runs": [], "x": NaN}',
        '{"job": "a", "runs": [], "x": [Infinity]}',
        '{"job": "a", "runs": [{"created_at": -Infinity}]}',
    ],
)
def test_a_constant_json_has_not_is_refused_wherever_it_is(text: str) -> None:
    with pytest.raises(StateFileError, match="not valid JSON"):
        read_state_file(text)


def test_an_integer_too_large_for_a_float_is_an_error_not_a_crash() -> None:
    data = good_file()
    data["runs"][0]["created_at"] = 10**400
    with pytest.raises(StateFileError, match=r"runs\[0\]\.created_at must be a number"):
        read_state_file(json.dumps(data))
    data = good_file()
    data["runs"][0]["metrics"] = {"loss": 10**400}
    with pytest.raises(StateFileError, match=r"runs\[0\]\.metrics must be"):
        read_state_file(json.dumps(data))


@pytest.mark.parametrize(
    ("where", "value"),
    [("revision", "0123456789ab\n"), ("archive", "b" * 40 + "\n"), ("month", "2026-03\n")],
)
def test_a_value_with_a_trailing_newline_is_refused(where: str, value: str) -> None:
    data = good_file()
    if where == "revision":
        data["runs"][0]["revision"] = value
    elif where == "archive":
        data["archive"] = value
    else:
        data["totals"][0]["month"] = value
    with pytest.raises(StateFileError, match=where):
        read_state_file(json.dumps(data))


def test_every_mapping_and_shared_text_field_of_a_run_is_shared_once_read() -> None:
    import sys

    from trainops.state.schema import _MAPPINGS, _NO_ENTRIES, _SHARED_TEXT, _shared

    text = {name: "".join(["x" * 70, name]) for name in _SHARED_TEXT}  # built: not interned
    run = Run("0123456789ab", 1, **{"created_at": 1.0, **text}, **{m: {} for m in _MAPPINGS})
    _shared(run)
    assert all(getattr(run, m) is _NO_ENTRIES for m in _MAPPINGS)
    assert all(getattr(run, name) is sys.intern(text[name]) for name in _SHARED_TEXT)


@pytest.mark.parametrize(
    ("field", "value"),
    [("created_at", 1e12), ("started_at", -5.0), ("billed_seconds", 1e300), ("cost_usd", -1.0)],
)
def test_a_time_or_amount_out_of_range_is_an_error_not_a_crash_later(
    field: str, value: float
) -> None:
    data = good_file()
    data["runs"][0][field] = value
    with pytest.raises(StateFileError, match=rf"runs\[0\]\.{field}"):
        read_state_file(json.dumps(data))


def test_a_forged_progress_is_not_read_by_either_reader() -> None:
    """Run.progress is live (DESIGN §21 early stop reads it): a state file cannot set it."""
    data = good_file()
    data["runs"][0]["progress"] = {"eval_loss": 99.0}
    fast, slow, typed = read_both(data)
    assert typed
    for read in (fast, slow):
        assert isinstance(read, JobState) and read.runs[0].progress == {}
    assert "progress" not in JobState("a", (FULL,)).to_text()
