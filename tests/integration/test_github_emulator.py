"""The GitHub emulator against the REST subset it claims to serve: shapes, limits, auth, paging.

Requests go through plain httpx so the emulator is checked independently of trainops' client,
including requests that client would refuse to send.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from tests.emulators.github import GitHubEmulator

ROOT = Path(__file__).resolve().parents[2]
SUBSET = json.loads((ROOT / "tests/fixtures/github-rest-subset.json").read_text())
REGISTRY: Registry[Any] = Registry().with_resource(
    "urn:github-subset", Resource.from_contents(SUBSET, default_specification=DRAFT202012)
)
TOKEN = "ghs_emulatortesttoken000000000000000"
SHA = "3f2c" + "0" * 36
OTHER_SHA = "9e1d" + "0" * 36


def schema_at(*pointer: str) -> Draft202012Validator:
    escaped = "/".join(p.replace("~", "~0").replace("/", "~1") for p in pointer)
    return Draft202012Validator(
        {"$ref": f"urn:github-subset#/{escaped}"},
        registry=REGISTRY,
        format_checker=Draft202012Validator.FORMAT_CHECKER,
    )


def operation_for(method: str, path: str) -> str | None:
    for name, op in SUBSET["operations"].items():
        pattern = re.sub(r"\{[^}]+\}", "[^/]+", op["path"])
        if op["method"] == method and re.fullmatch(pattern, path):
            return name
    return None


@pytest.fixture
def emu() -> Iterator[GitHubEmulator]:
    with GitHubEmulator(TOKEN) as emulator:
        yield emulator
    assert emulator.errors == []


@pytest.fixture
def http(emu: GitHubEmulator) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {TOKEN}", "Accept": "application/vnd.github+json"}
    with httpx.Client(base_url=emu.url, headers=headers) as client:
        yield client


def exercise_every_operation(emu: GitHubEmulator, http: httpx.Client) -> None:
    emu.add_pull("acme", "models", 7, head_sha=SHA, merge_commit_sha=OTHER_SHA, state="closed")
    emu.add_issue_comment("acme", "models", 7, "looks good")
    created = http.post("/repos/acme/models/issues/7/comments", json={"body": "plan"}).json()
    http.patch(f"/repos/acme/models/issues/comments/{created['id']}", json={"body": "plan v2"})
    http.get(f"/repos/acme/models/issues/comments/{created['id']}")
    http.get("/repos/acme/models/issues/7/comments", params={"per_page": 1})
    http.post(f"/repos/acme/models/commits/{SHA}/comments", json={"body": "succeeded"})
    http.get(f"/repos/acme/models/commits/{SHA}/comments")
    for state in ("pending", "success"):
        body = {"state": state, "context": "trainops/a", "description": "d", "target_url": None}
        http.post(f"/repos/acme/models/statuses/{SHA}", json=body)
    http.post(f"/repos/acme/models/statuses/{SHA}", json={"state": "failure"})
    http.get(f"/repos/acme/models/commits/{SHA}/statuses")
    http.get(f"/repos/acme/models/commits/{SHA}/status")
    http.get(f"/repos/acme/models/commits/{SHA}/pulls")
    http.get(f"/repos/acme/models/commits/{OTHER_SHA}/pulls")
    # and the error answers
    http.post(
        f"/repos/acme/models/statuses/{SHA}", json={"state": "success", "description": "x" * 141}
    )
    http.post("/repos/acme/models/issues/7/comments", json={"body": "x" * 65_537})
    http.get("/repos/acme/models/issues/7/comments", headers={"Authorization": "Bearer nope"})
    http.patch("/repos/acme/models/issues/comments/999", json={"body": "gone"})


def test_every_response_matches_the_rest_subset(emu: GitHubEmulator, http: httpx.Client) -> None:
    exercise_every_operation(emu, http)

    seen = set()
    for request in emu.requests:
        if request.status == 422:
            schema_at("common", "errors", "422").validate(request.response)
        elif request.status >= 400:
            schema_at("common", "errors", "basic").validate(request.response)
        else:
            name = operation_for(request.method, request.path)
            assert name, f"no operation in the subset for {request.method} {request.path}"
            assert request.status == SUBSET["operations"][name]["success"]
            schema_at("operations", name, "response").validate(request.response)
            seen.add(name)
    # GET /user is refused to the Actions token this emulator holds: see the test below.
    served = {
        name
        for name in SUBSET["operations"]
        if not name.startswith("checks/") and name != "users/get-authenticated"
    }
    assert seen == served
    assert {r.status for r in emu.requests} >= {401, 404, 422}


def test_the_authenticated_user_is_a_user_token_s_login_and_refused_to_an_actions_token() -> None:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with GitHubEmulator(TOKEN, login="octocat") as user, GitHubEmulator(TOKEN) as actions:
        mine = httpx.get(f"{user.url}/user", headers=headers)
        refused = httpx.get(f"{actions.url}/user", headers=headers)
    schema_at("operations", "users/get-authenticated", "response").validate(mine.json())
    schema_at("common", "errors", "basic").validate(refused.json())
    assert (mine.json()["login"], refused.status_code) == ("octocat", 403)
    assert refused.json()["message"] == "Resource not accessible by integration"


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        (
            f"/statuses/{SHA}",
            {"state": "success", "description": "x" * 141},
            "description is too long",
        ),
        (f"/statuses/{SHA}", {"state": "done"}, "is not one of"),
        (f"/statuses/{SHA}", {"description": "no state"}, '"state" wasn\'t supplied'),
        ("/statuses/not-a-sha", {"state": "success"}, "No commit found for SHA"),
        ("/issues/7/comments", {"body": "x" * 65_537}, "Body is too long"),
        (f"/commits/{SHA}/comments", {"body": "x" * 65_537}, "Body is too long"),
        ("/issues/7/comments", {}, '"body" wasn\'t supplied'),
    ],
    ids=[
        "description-141",
        "bad-state",
        "no-state",
        "bad-sha",
        "issue-body",
        "commit-body",
        "no-body",
    ],
)
def test_documented_limits_answer_422(
    emu: GitHubEmulator, http: httpx.Client, path: str, body: dict[str, Any], message: str
) -> None:
    response = http.post(f"/repos/acme/models{path}", json=body)

    assert response.status_code == 422
    assert message in json.dumps(response.json()).replace("\\n", " ").replace('\\"', '"')
    assert emu.statuses(SHA) == [] and emu.issue_comments("acme", "models", 7) == []


def test_limits_accept_values_at_the_boundary(emu: GitHubEmulator, http: httpx.Client) -> None:
    status = http.post(
        f"/repos/acme/models/statuses/{SHA}", json={"state": "success", "description": "x" * 140}
    )
    comment = http.post("/repos/acme/models/issues/7/comments", json={"body": "x" * 65_536})

    assert (status.status_code, comment.status_code) == (201, 201)
    assert len(emu.statuses(SHA)[0]["description"]) == 140


@pytest.mark.parametrize(
    ("headers", "message"),
    [({}, "Requires authentication"), ({"Authorization": "Bearer wrong"}, "Bad credentials")],
    ids=["missing", "wrong"],
)
def test_401_without_the_accepted_token(
    emu: GitHubEmulator, headers: dict[str, str], message: str
) -> None:
    response = httpx.post(
        f"{emu.url}/repos/acme/models/issues/7/comments", json={"body": "hi"}, headers=headers
    )

    assert (response.status_code, response.json()["message"]) == (401, message)
    assert emu.issue_comments("acme", "models", 7) == []


def test_pages_link_to_absolute_urls_on_the_emulator(
    emu: GitHubEmulator, http: httpx.Client
) -> None:
    for i in range(65):
        http.post(
            f"/repos/acme/models/statuses/{SHA}", json={"state": "pending", "context": f"c{i}"}
        )

    first = http.get(f"/repos/acme/models/commits/{SHA}/statuses", params={"per_page": 30})
    last = http.get(first.links["last"]["url"])

    assert (
        first.links["next"]["url"]
        == f"{emu.url}/repos/acme/models/commits/{SHA}/statuses?per_page=30&page=2"
    )
    assert [s["context"] for s in first.json()][:2] == ["c64", "c63"]  # newest first
    assert len(last.json()) == 5 and "next" not in last.links
    assert last.links["first"]["url"].endswith("page=1")


def test_per_page_is_capped_at_100(emu: GitHubEmulator, http: httpx.Client) -> None:
    for i in range(120):
        emu.add_issue_comment("acme", "models", 7, f"c{i}")

    response = http.get("/repos/acme/models/issues/7/comments", params={"per_page": 500})

    assert len(response.json()) == 100 and "page=2" in response.links["next"]["url"]


def test_combined_status_keeps_the_latest_per_context(
    emu: GitHubEmulator, http: httpx.Client
) -> None:
    for context, state in [
        ("trainops/a", "pending"),
        ("trainops/a", "success"),
        ("trainops/b", "success"),
    ]:
        http.post(f"/repos/acme/models/statuses/{SHA}", json={"state": state, "context": context})
    assert http.get(f"/repos/acme/models/commits/{SHA}/status").json()["state"] == "success"

    http.post(
        f"/repos/acme/models/statuses/{SHA}", json={"state": "error", "context": "TRAINOPS/B"}
    )
    combined = http.get(f"/repos/acme/models/commits/{SHA}/status").json()

    assert (combined["state"], combined["total_count"]) == ("failure", 2)
    assert [s["state"] for s in combined["statuses"]] == ["success", "error"]


def test_faults_hit_matching_requests_the_given_number_of_times(
    emu: GitHubEmulator, http: httpx.Client
) -> None:
    emu.fail_next(2, 502, method="POST", path=r"/statuses/")
    emu.secondary_rate_limit(retry_after=7, status=429, path=r"/comments$")
    post = lambda: http.post(f"/repos/acme/models/statuses/{SHA}", json={"state": "pending"})  # noqa: E731

    codes = [post().status_code for _ in range(3)]
    limited = http.get("/repos/acme/models/issues/7/comments")

    assert codes == [502, 502, 201]
    assert (limited.status_code, limited.headers["retry-after"]) == (429, "7")
    assert http.get("/repos/acme/models/issues/7/comments").status_code == 200
    assert len(emu.statuses(SHA)) == 1


def test_primary_rate_limit_and_fail_all_until_cleared(
    emu: GitHubEmulator, http: httpx.Client
) -> None:
    emu.primary_rate_limit(reset_at=1_700_000_060)
    limited = http.get(f"/repos/acme/models/commits/{SHA}/statuses")
    emu.fail_all(503, method="GET")
    failing = [http.get(f"/repos/acme/models/commits/{SHA}/statuses").status_code for _ in range(3)]
    emu.clear_faults()

    assert limited.status_code == 403
    assert (limited.headers["x-ratelimit-remaining"], limited.headers["x-ratelimit-reset"]) == (
        "0",
        "1700000060",
    )
    assert failing == [503, 503, 503]
    assert http.get(f"/repos/acme/models/commits/{SHA}/statuses").status_code == 200


def test_dropped_connection_gets_no_answer(emu: GitHubEmulator, http: httpx.Client) -> None:
    emu.drop_next(method="GET")

    with pytest.raises(httpx.RemoteProtocolError):
        http.get(f"/repos/acme/models/commits/{SHA}/statuses")
    assert http.get(f"/repos/acme/models/commits/{SHA}/statuses").status_code == 200
    assert [r.status for r in emu.requests] == [0, 200]


def test_records_requests_and_offers_state_helpers(emu: GitHubEmulator, http: httpx.Client) -> None:
    http.post("/repos/acme/models/issues/7/comments", json={"body": "<!-- trainops:plan -->"})
    http.post(f"/repos/acme/models/commits/{SHA}/comments", json={"body": "done"})
    http.post(
        f"/repos/acme/models/statuses/{SHA}", json={"state": "success", "context": "trainops/a"}
    )

    assert [(r.method, r.path, r.json) for r in emu.requests_to("POST")] == [
        ("POST", "/repos/acme/models/issues/7/comments", {"body": "<!-- trainops:plan -->"}),
        ("POST", f"/repos/acme/models/commits/{SHA}/comments", {"body": "done"}),
        (
            "POST",
            f"/repos/acme/models/statuses/{SHA}",
            {"state": "success", "context": "trainops/a"},
        ),
    ]
    assert [c["body"] for c in emu.issue_comments("acme", "models", 7)] == [
        "<!-- trainops:plan -->"
    ]
    assert [c["body"] for c in emu.commit_comments(SHA)] == ["done"]
    assert [(s["context"], s["state"]) for s in emu.statuses(SHA)] == [("trainops/a", "success")]
    assert http.get(f"/repos/acme/models/statuses/{SHA}").json() == emu.statuses(
        SHA
    )  # legacy route


def test_pulls_for_a_commit_by_head_or_merge_commit(
    emu: GitHubEmulator, http: httpx.Client
) -> None:
    emu.add_pull("acme", "models", 7, head_sha=SHA, merge_commit_sha=OTHER_SHA, state="closed")
    emu.add_pull("acme", "other", 8, head_sha=SHA)

    by_head = http.get(f"/repos/acme/models/commits/{SHA}/pulls").json()
    by_merge = http.get(f"/repos/acme/models/commits/{OTHER_SHA}/pulls").json()

    assert [p["number"] for p in by_head] == [7] and [p["number"] for p in by_merge] == [7]
    assert by_head[0]["head"]["sha"] == SHA and by_head[0]["merged_at"] is not None


def test_runs_standalone(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.emulators.github", "--port", "0", "--token", "T"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        url = re.search(r"http://127\.0\.0\.1:\d+", process.stdout.readline())
        assert url, "the emulator did not print its URL"
        response = httpx.post(
            f"{url.group(0)}/repos/o/r/issues/1/comments",
            json={"body": "hi"},
            headers={"Authorization": "token T"},
        )
        assert response.status_code == 201 and response.json()["body"] == "hi"
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()
