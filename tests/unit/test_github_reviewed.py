"""The reviewed-plan block of the sticky plan comment (DESIGN §20): what `embed` writes `parse`
reads back exactly, and anything else (edited, duplicated, malformed) reads as no block."""

from __future__ import annotations

import json

import pytest

from trainops.github.plan_report import plan_comment, plan_description
from trainops.github.reviewed import (
    REVIEWED_MARKER,
    ReviewedAction,
    embed,
    parse,
    status_digest,
    status_summary,
)

HEAD = "ab" * 20
A = ReviewedAction("portraits", "3f2c9a1b7d4e", 1, 5.49, ("HF_TOKEN",))
B = ReviewedAction("tiny", "9a1b2c3d4e5f", 2, None, ())
REVIEWED = {"portraits": A, "tiny": B}


def test_embed_is_one_hidden_line_that_parses_back() -> None:
    line = embed(REVIEWED, HEAD)
    assert line.startswith(REVIEWED_MARKER) and line.endswith(" -->") and "\n" not in line
    body = plan_comment("### trainops plan\n\n**Plan: 2 to submit.**\n", HEAD, block=line)
    assert body.splitlines()[:2] == ["<!-- trainops:plan -->", line]
    assert parse(body) == (HEAD, REVIEWED)


def test_a_value_cannot_close_the_html_comment() -> None:
    odd = ReviewedAction("x-->y<!--", "r", 1, 0.0, ())
    line = embed({odd.job: odd}, HEAD)
    assert line.count("-->") == 1 and "<!--" not in line[4:]
    assert parse(line) == (HEAD, {odd.job: odd})


def _block(doc: object) -> str:
    return f"{REVIEWED_MARKER}{json.dumps(doc, sort_keys=True, separators=(',', ':'))} -->"


GOOD = json.loads(embed(REVIEWED, HEAD)[len(REVIEWED_MARKER) : -4])


@pytest.mark.parametrize(
    "body",
    [
        pytest.param("no block here", id="none"),
        pytest.param(embed(REVIEWED, HEAD) + "\n" + embed(REVIEWED, HEAD), id="two blocks"),
        pytest.param(f"{REVIEWED_MARKER}{{not json}} -->", id="not json"),
        pytest.param(_block([1, 2]), id="not an object"),
        pytest.param(_block({**GOOD, "extra": 1}), id="extra key"),
        pytest.param(_block({**GOOD, "head": "HEAD"}), id="head not a sha"),
        pytest.param(_block({**GOOD, "actions": [GOOD["actions"][0]] * 2}), id="job twice"),
        pytest.param(
            _block({**GOOD, "actions": [{**GOOD["actions"][0], "attempt": 0}]}), id="attempt 0"
        ),
        pytest.param(
            _block({**GOOD, "actions": [{**GOOD["actions"][0], "attempt": True}]}),
            id="attempt bool",
        ),
        pytest.param(
            _block({**GOOD, "actions": [{**GOOD["actions"][0], "worst_case_usd": -1}]}),
            id="negative cost",
        ),
        pytest.param(
            _block({**GOOD, "actions": [{**GOOD["actions"][0], "worst_case_usd": "5"}]}),
            id="cost a string",
        ),
        pytest.param(
            _block({**GOOD, "actions": [{**GOOD["actions"][0], "credentials": ["B", "A"]}]}),
            id="credentials unsorted",
        ),
        pytest.param(
            _block({**GOOD, "actions": [{**GOOD["actions"][0], "credentials": ["A=1"]}]}),
            id="credential not a name",
        ),
        pytest.param(
            _block({**GOOD, "actions": [{**GOOD["actions"][0], "job": ""}]}), id="empty job"
        ),
        pytest.param(
            embed(REVIEWED, HEAD).replace('"attempt":1', '"attempt": 1'), id="not canonical"
        ),
    ],
)
def test_anything_but_what_embed_writes_is_no_block(body: str) -> None:
    assert parse(body) is None


def test_the_status_names_the_digest_of_the_block_and_what_it_costs() -> None:
    short = status_digest(REVIEWED, HEAD)
    assert len(short) == 16 and short != status_digest(REVIEWED, "cd" * 20)
    assert status_summary({"portraits": A}, HEAD) == (
        f"plan {status_digest({'portraits': A}, HEAD)}: 1 to submit, up to $5.49"
    )
    assert status_summary(REVIEWED, HEAD) == f"plan {short}: 2 to submit, no worst case"
    assert status_summary({}, HEAD) == f"plan {status_digest({}, HEAD)}: nothing to submit"
    described = plan_description("**Plan: 2 to submit.**", True, [], summary="plan x: 2")
    assert described == "plan x: 2; refused by policy or budget"


def test_a_block_too_large_for_a_comment_is_not_written() -> None:
    many = {
        f"job-{i:05d}": ReviewedAction(f"job-{i:05d}", "f" * 64, 1, 1.0, ()) for i in range(600)
    }
    assert embed(many, HEAD) == ""
