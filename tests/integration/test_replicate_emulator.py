"""The Replicate emulator, driven by the official `replicate` client (and raw httpx where the client
hides what we check), with every response validated against Replicate's OpenAPI description."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import replicate
from pydantic.v1 import ValidationError
from replicate.exceptions import ReplicateError

from tests.emulators.replicate import (
    CANCEL_PATH,
    CREATE_PATH,
    FLUX_LORA_OLD_VERSION,
    FLUX_LORA_VERSION,
    LIST_PATH,
    OpenAPIResponses,
    RecordedRequest,
    ReplicateEmulator,
)

TRAINER = f"ostris/flux-dev-lora-trainer:{FLUX_LORA_VERSION}"
INPUT = {"input_images": "https://example.com/portraits.zip", "steps": 1000}
SCHEMAS = OpenAPIResponses()


class FakeMonotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def emu() -> Iterator[ReplicateEmulator]:
    with ReplicateEmulator(queue_seconds=5, run_seconds=100) as emulator:
        emulator.add_model("acme", "portraits", visibility="private")
        yield emulator
        assert emulator.server_errors == []
        assert SCHEMAS.errors(emulator.requests) == []


def make_client(emu: ReplicateEmulator, **kw: Any) -> replicate.Client:
    return replicate.Client(api_token=emu.token, base_url=emu.base_url, **kw)


@pytest.fixture
def client(emu: ReplicateEmulator) -> Iterator[replicate.Client]:
    c = make_client(emu)
    yield c
    c._client.close()


@pytest.fixture
def http(emu: ReplicateEmulator) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {emu.token}"}
    with httpx.Client(base_url=emu.base_url, headers=headers) as c:
        yield c


def train(client: replicate.Client, input: dict[str, Any] | None = None) -> Any:
    return client.trainings.create(
        version=TRAINER, input=input or INPUT, destination="acme/portraits"
    )


def test_create_answers_201_starting_without_times(emu, client) -> None:
    t = train(client)
    raw = emu.requests[-1]
    assert (raw.method, raw.status, raw.body) == (
        "POST",
        201,
        {"input": INPUT, "destination": "acme/portraits"},
    )
    assert raw.response["status"] == "starting"
    assert not {"started_at", "completed_at", "metrics", "output"} & set(raw.response)
    assert raw.response["urls"]["get"] == f"{emu.base_url}/v1/predictions/{t.id}"
    assert (t.model, t.version, t.input) == (
        "ostris/flux-dev-lora-trainer",
        FLUX_LORA_VERSION,
        INPUT,
    )


def test_no_training_answer_names_a_destination(emu, client) -> None:
    # The API's trainings carry no `destination` field, sent or not (shared/ref/README.md
    # "Checked against the real clients"; schemas_training_response in the OpenAPI file).
    t = train(client)
    emu.advance(3600)
    client.trainings.get(t.id)
    client.trainings.list()
    answers = [r.response for r in emu.requests if "/trainings" in r.path]
    assert len(answers) == 3
    for answer in answers:
        items = answer.get("results", [answer])
        assert items and all("destination" not in item for item in items), answer
    assert emu.training_json(t.id)["output"]["version"].startswith("acme/portraits:")


def test_training_progresses_on_the_simulated_clock(emu, client) -> None:
    t = train(client)
    emu.advance(4)
    assert client.trainings.get(t.id).status == "starting"
    emu.advance(31)
    running = client.trainings.get(t.id)
    assert (running.status, running.completed_at) == ("processing", None)
    emu.advance(70)
    done = client.trainings.get(t.id)
    assert done.status == "succeeded"
    assert len(done.logs) > len(running.logs)
    new_version = client.models.get("acme/portraits").latest_version.id
    assert done.output["version"] == f"acme/portraits:{new_version}"
    assert done.output["weights"].startswith(emu.base_url)
    assert emu.requests[-2].response["metrics"]["predict_time"] == 100.0
    assert httpx.get(done.output["weights"]).status_code == 200


def test_input_marker_fails_a_training(emu, client) -> None:
    t = train(client, {**INPUT, "trigger_word": "__fail__"})
    emu.advance(200)
    failed = client.trainings.get(t.id)
    assert failed.status == "failed"
    assert "CUDA out of memory" in failed.error
    assert failed.output is None


def test_cancel_is_answered_for_active_and_terminal_trainings(emu, client) -> None:
    t = train(client)
    emu.advance(10)
    assert client.trainings.cancel(t.id).status == "canceled"
    assert client.trainings.cancel(t.id).status == "canceled"
    emu.advance(500)
    assert client.trainings.get(t.id).status == "canceled"
    assert emu.requests[-1].response["metrics"]["predict_time"] == 5.0
    with pytest.raises(ReplicateError) as err:
        client.trainings.cancel("doesnotexist")
    assert err.value.status == 404


def test_list_pages_newest_first_through_absolute_next_links(emu, client) -> None:
    created = [train(client, {**INPUT, "steps": 10 + i}).id for i in range(205)]
    pages = list(replicate.paginate(client.trainings.list))
    assert [len(p.results) for p in pages] == [100, 100, 5]
    assert [t.id for p in pages for t in p.results] == created[::-1]
    assert pages[0].next.startswith(f"{emu.base_url}/v1/trainings?cursor=")
    assert pages[0].previous is None and pages[-1].next is None
    back = client.trainings.list(pages[1].previous)
    assert [t.id for t in back.results] == [t.id for t in pages[0].results]
    assert emu.count("GET", LIST_PATH) == 4


def test_list_cursor_is_stable_while_trainings_are_created(emu, client) -> None:
    first = [train(client).id for _ in range(150)]
    page1 = client.trainings.list()
    train(client)  # newer than everything listed: must not shift the second page
    page2 = client.trainings.list(page1.next)
    assert [t.id for t in page2.results] == first[:50][::-1]


def test_models_and_versions(emu, client) -> None:
    trainer = client.models.get("ostris/flux-dev-lora-trainer")
    assert trainer.latest_version.id == FLUX_LORA_VERSION
    versions = trainer.versions.list()
    assert [v.id for v in versions.results] == [FLUX_LORA_VERSION, FLUX_LORA_OLD_VERSION]
    schema = trainer.versions.get(FLUX_LORA_VERSION).openapi_schema
    steps = schema["components"]["schemas"]["TrainingInput"]["properties"]["steps"]
    assert (steps["type"], steps["minimum"], steps["maximum"]) == ("integer", 3, 6000)
    made = client.models.create("acme", "new-model", visibility="private", hardware="gpu-t4")
    assert (made.visibility, made.latest_version) == ("private", None)
    assert emu.has_model("acme/new-model")
    with pytest.raises(ReplicateError) as dup:
        client.models.create("acme", "new-model", visibility="private", hardware="gpu-t4")
    with pytest.raises(ReplicateError) as missing:
        client.models.get("acme/nope")
    assert (dup.value.status, missing.value.status) == (409, 404)


def test_tests_can_add_trainers(emu, client) -> None:
    schema = {"type": "object", "required": ["data"], "properties": {"data": {"type": "string"}}}
    vid = emu.add_trainer("lab/tiny-trainer", schema)
    t = client.trainings.create(
        version=f"lab/tiny-trainer:{vid}", input={"data": "x"}, destination="acme/portraits"
    )
    assert t.version == vid


def test_account_and_webhook_secret(emu, client) -> None:
    assert client.accounts.current().username == "acme"
    assert client.webhooks.default.secret().key.startswith("whsec_")


@pytest.mark.parametrize(
    ("destination", "input", "status", "detail"),
    [
        ("acme/missing", INPUT, 404, "The specified training destination does not exist"),
        ("acme/portraits", {"steps": 100}, 422, "- input.input_images: Field required\n"),
        (
            "acme/portraits",
            {**INPUT, "steps": 2},
            422,
            "- input.steps: Must be greater than or equal to 3\n",
        ),
        (
            "acme/portraits",
            {**INPUT, "autocaption": "yes"},
            422,
            "- input.autocaption: Invalid type. Expected: boolean, given: str\n",
        ),
        (
            "acme/portraits",
            {**INPUT, "batch_size": 8},
            422,
            "- input.batch_size: Must be one of: 1, 2, 3, 4\n",
        ),
    ],
    ids=["missing-destination", "missing-required", "out-of-range", "wrong-type", "enum-ref"],
)
def test_create_errors_are_problem_json(emu, client, destination, input, status, detail) -> None:
    with pytest.raises(ReplicateError) as err:
        client.trainings.create(version=TRAINER, input=input, destination=destination)
    assert (err.value.status, err.value.detail) == (status, detail)
    assert emu.requests[-1].content_type == "application/problem+json"
    assert emu.trainings == []


def test_bad_token_is_401_problem_json(emu) -> None:
    bad = replicate.Client(api_token="r8_wrong", base_url=emu.base_url)
    with pytest.raises(ReplicateError) as err:
        bad.trainings.list()
    bad._client.close()
    assert (err.value.status, err.value.title) == (401, "Unauthenticated")
    assert err.value.detail == "You did not pass a valid authentication token"


def test_rate_limit_fault_on_create_is_not_retried_by_the_client(emu, client, http) -> None:
    emu.inject("rate_limit", method="POST", path=CREATE_PATH, retry_after=7)
    with pytest.raises(ReplicateError) as err:
        train(client)
    assert err.value.status == 429
    assert err.value.detail == "Request was throttled. Your rate limit resets in ~7s."
    assert emu.count("POST", CREATE_PATH) == 1 and emu.trainings == []
    emu.inject("rate_limit", path=LIST_PATH, retry_after=3)
    resp = http.get("/v1/trainings")
    assert resp.status_code == 429
    # Replicate promises no Retry-After (shared/ref/README.md "Replicate 429").
    assert "retry-after" not in resp.headers
    assert {k: resp.headers[k] for k in ("ratelimit-remaining", "ratelimit-reset")} == {
        "ratelimit-remaining": "0",
        "ratelimit-reset": "3",
    }


@pytest.mark.parametrize(("status", "requests"), [(429, 2), (503, 2), (500, 1)])
def test_client_retries_gets_on_429_and_503_only(emu, client, status, requests) -> None:
    if status == 429:
        emu.inject("rate_limit", method="GET", path=LIST_PATH, retry_after=0)
    else:
        emu.inject("error", method="GET", path=LIST_PATH, status=status)
    if status == 500:
        with pytest.raises(ReplicateError):
            client.trainings.list()
    else:
        client.trainings.list()
    assert emu.count("GET", LIST_PATH) == requests


def test_slow_response_times_the_client_out_after_the_training_exists(emu) -> None:
    slow = make_client(emu, timeout=httpx.Timeout(0.4))
    fault = emu.inject("delay", method="POST", path=CREATE_PATH, delay=1.5)
    with pytest.raises(httpx.ReadTimeout):
        train(slow)
    slow._client.close()
    assert fault.hits == 1 and len(emu.trainings) == 1


def test_dropped_connection_creates_nothing(emu, client) -> None:
    emu.inject("drop", method="POST", path=CREATE_PATH)
    with pytest.raises(httpx.RemoteProtocolError):
        train(client)
    assert emu.trainings == [] and emu.requests[-1].status == 0


def test_lost_response_after_the_training_was_created(emu, client) -> None:
    emu.inject("lost_response", method="POST", path=CREATE_PATH)
    with pytest.raises(httpx.RemoteProtocolError):
        train(client)
    assert [(t.destination, t.input) for t in emu.trainings] == [("acme/portraits", INPUT)]
    assert (
        emu.training_counts()[
            ("acme/portraits", '{"input_images":"https://example.com/portraits.zip","steps":1000}')
        ]
        == 1
    )


def test_error_after_handling_still_creates(emu, client) -> None:
    emu.inject("error", method="POST", path=CREATE_PATH, status=502, after=True)
    with pytest.raises(ReplicateError) as err:
        train(client)
    assert err.value.status == 502 and len(emu.trainings) == 1


def test_probabilistic_faults_are_reproducible_with_a_seed() -> None:
    def failures(seed: int) -> list[int]:
        with ReplicateEmulator(seed=seed) as e:
            e.inject("error", path="/v1/account", count=None, probability=0.5)
            with httpx.Client(
                base_url=e.base_url, headers={"Authorization": f"Bearer {e.token}"}
            ) as h:
                return [h.get("/v1/account").status_code for _ in range(30)]

    first = failures(7)
    assert first == failures(7)
    assert 5 < first.count(500) < 25


@pytest.mark.parametrize("how", ["fault", "marker", "on-demand"])
def test_aborted_trainings_are_served_and_break_the_client_model(emu, client, http, how) -> None:
    if how == "fault":
        emu.inject("abort", method="POST", path=CREATE_PATH)
    t = train(client, {**INPUT, "trigger_word": "__abort__"} if how == "marker" else INPUT)
    if how == "on-demand":
        emu.abort(t.id)
    emu.advance(300)
    body = http.get(f"/v1/trainings/{t.id}").json()
    assert body["status"] == "aborted" and "started_at" not in body
    assert http.get("/v1/trainings").json()["results"][0]["status"] == "aborted"
    with pytest.raises(ValidationError):
        client.trainings.get(t.id)


def test_rate_limits_are_enforced_per_token_over_a_sliding_window() -> None:
    clock = FakeMonotonic()
    with ReplicateEmulator(
        rate_limits={"default": 3, "create": 1}, rate_clock=clock, tokens={"r8_other": "acme"}
    ) as e:
        with httpx.Client(base_url=e.base_url, headers={"Authorization": f"Bearer {e.token}"}) as h:
            assert [h.get("/v1/account").status_code for _ in range(4)] == [200, 200, 200, 429]
            other = h.get("/v1/account", headers={"Authorization": "Bearer r8_other"})
            assert other.status_code == 200
            clock.now += 30
            throttled = h.get("/v1/account")
            assert (throttled.status_code, throttled.headers["ratelimit-reset"]) == (429, "30")
            clock.now += 30
            assert h.get("/v1/account").headers["ratelimit-remaining"] == "2"
            create = (
                f"/v1/models/ostris/flux-dev-lora-trainer/versions/{FLUX_LORA_VERSION}/trainings"
            )
            e.add_model("acme", "portraits")
            body = {"input": INPUT, "destination": "acme/portraits"}
            assert [h.post(create, json=body).status_code for _ in range(2)] == [201, 429]
        assert len(e.trainings) == 1


def test_recorded_requests_never_hold_the_token(emu, client) -> None:
    train(client)
    client.trainings.list()
    assert emu.token not in repr(emu.requests)
    assert {r.account for r in emu.requests} == {"acme"}


def test_response_validation_catches_a_wrong_shape() -> None:
    bad = RecordedRequest(
        method="GET",
        path="/v1/trainings/abc",
        query={},
        body=None,
        status=200,
        response={"id": "abc", "status": "sleeping", "created_at": 5},
        content_type="application/json",
        fault="",
        time=0.0,
        account="acme",
    )
    assert len(SCHEMAS.errors([bad])) == 2


def test_cancel_fault_path_constant_matches(emu, client) -> None:
    t = train(client)
    emu.inject("error", method="POST", path=CANCEL_PATH, status=500)
    with pytest.raises(ReplicateError):
        client.trainings.cancel(t.id)
    assert client.trainings.cancel(t.id).status == "canceled"


def test_standalone_server_serves_the_api() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.emulators.replicate", "--port", "0", "--token", "r8_demo"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().split()[3]
        resp = httpx.get(f"{url}/v1/account", headers={"Authorization": "Bearer r8_demo"})
        assert resp.json()["username"] == "acme"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        proc.stdout.close()
