"""ReplicateProvider against the Replicate emulator: the official client on real HTTP, simulated
time for trainings, fake time for pacing and backoff (no test waits for real)."""

from __future__ import annotations

import bisect
import random
import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.emulators.replicate import (
    CANCEL_PATH,
    CREATE_PATH,
    FAST_FLUX_VERSION,
    FLUX_LORA_OLD_VERSION,
    FLUX_LORA_VERSION,
    GET_PATH,
    LIST_PATH,
    OpenAPIResponses,
    ReplicateEmulator,
)
from trainops.errors import OutcomeUnknown, ProviderError
from trainops.lockfile import Lock, LockedTrainer, is_stale, resolve_lock
from trainops.manifest import Job, ReplicateConfig, TrainingJob
from trainops.providers.base import Intent, Provider, Submission, input_hash
from trainops.providers.replicate import Pacer, ReplicateProvider, SubmissionRejected
from trainops.state.model import Health
from trainops.yamlsource import Document

TRAINER = "ostris/flux-dev-lora-trainer"
FAST = "replicate/fast-flux-trainer"
INPUT = {"input_images": "https://example.com/portraits.zip", "steps": 1000}
ENV = "TEST_REPLICATE_TOKEN"


class FakeTime:
    """A monotonic clock that moves only when something sleeps on it."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def fake() -> FakeTime:
    return FakeTime()


@pytest.fixture
def emu(fake: FakeTime) -> Iterator[ReplicateEmulator]:
    with ReplicateEmulator(queue_seconds=5, run_seconds=100, rate_clock=fake.monotonic) as e:
        yield e
        assert e.server_errors == []
        assert OpenAPIResponses().errors(e.requests) == []


def make_provider(emu: ReplicateEmulator, fake: FakeTime, **kw: Any) -> ReplicateProvider:
    kw.setdefault("environ", {ENV: emu.token})
    kw["environ"] = {"REPLICATE_BASE_URL": emu.base_url, **kw["environ"]}
    kw.setdefault("timeout", 5.0)
    return ReplicateProvider(
        token_env=ENV,
        sleep=fake.sleep,
        clock=fake.monotonic,
        rng=random.Random(0),
        **kw,
    )


@pytest.fixture
def provider(emu: ReplicateEmulator, fake: FakeTime) -> Iterator[ReplicateProvider]:
    with make_provider(emu, fake) as p:
        yield p


def job(
    name: str = "portraits",
    trainer: str = f"{TRAINER}:{FLUX_LORA_VERSION}",
    destination: str = "acme/portraits",
    input: dict[str, Any] | None = None,
    **spec: Any,
) -> Job:
    data = {
        "apiVersion": "trainops/v1",
        "kind": "TrainingJob",
        "metadata": {"name": name},
        "spec": {
            "provider": "replicate",
            "trainer": trainer,
            "destination": destination,
            "input": INPUT if input is None else input,
            **spec,
        },
    }
    return Job(TrainingJob.model_validate(data), Document(f"jobs/{name}.yaml", 0, data))


def submission(j: Job, attempt: int = 1) -> Submission:
    spec_input = dict(j.spec.input)
    return Submission(
        j,
        "0123456789ab",
        attempt,
        spec_input,
        input_hash(spec_input),
        f"snapshots/{j.name}/0123456789ab.yaml",
    )


def intent_for(j: Job, created_at: float, attempt: int = 1) -> Intent:
    spec = j.spec
    return Intent(
        j.name,
        "0123456789ab",
        attempt,
        input_hash(dict(spec.input)),
        created_at,
        "replicate",
        spec.trainer,
        spec.destination,
    )  # type: ignore[union-attr]


def test_is_a_provider(provider) -> None:
    assert isinstance(provider, Provider)


def test_submit_creates_missing_destination_once_and_exactly_one_training(emu, provider) -> None:
    first = provider.submit(submission(job(hardware="gpu-h100")))
    second = provider.submit(submission(job("other", input={**INPUT, "steps": 50})))
    created = [r for r in emu.requests if r.method == "POST" and r.path == "/v1/models"]
    assert [r.body for r in created] == [
        {"owner": "acme", "name": "portraits", "visibility": "private", "hardware": "gpu-h100"}
    ]
    assert [t.id for t in emu.trainings] == [first.run_id, second.run_id]
    assert (
        emu.training_counts()[
            ("acme/portraits", '{"input_images":"https://example.com/portraits.zip","steps":1000}')
        ]
        == 1
    )
    # the answer carries microseconds: the emulator's wall-clock float has more
    assert first.created_at == pytest.approx(emu.trainings[0].created_at, abs=1e-6)
    assert emu.count("GET", "^/v1/models/acme/portraits$") == 1


def test_submit_uses_an_existing_destination(emu, provider) -> None:
    emu.add_model("acme", "portraits", visibility="private")
    provider.submit(submission(job()))
    assert emu.count("POST", "^/v1/models$") == 0 and len(emu.trainings) == 1


def test_429_on_create_is_retried_after_retry_after(emu, provider, fake) -> None:
    emu.inject("rate_limit", method="POST", path=CREATE_PATH, count=2, retry_after=7)
    ref = provider.submit(submission(job()))
    assert [t.id for t in emu.trainings] == [ref.run_id]
    assert emu.count("POST", CREATE_PATH) == 3
    assert fake.sleeps.count(7.0) == 2


def test_429_forever_gives_up_with_a_provider_error(emu, provider) -> None:
    emu.inject("rate_limit", method="POST", path=CREATE_PATH, count=None, retry_after=1)
    with pytest.raises(ProviderError, match="still rate limited") as err:
        provider.submit(submission(job()))
    assert not isinstance(err.value, OutcomeUnknown) and emu.trainings == []


@pytest.mark.parametrize(
    ("kind", "options", "trainings"),
    [
        ("lost_response", {}, 1),
        ("error", {"status": 500, "after": True}, 1),
        ("error", {"status": 503}, 0),
        ("drop", {}, 0),
    ],
    ids=["response-lost", "500-after-create", "503", "dropped"],
)
def test_unknown_create_outcome_raises_and_find_adopts(
    emu, provider, kind, options, trainings
) -> None:
    j = job()
    intent = intent_for(j, emu.now())
    emu.inject(kind, method="POST", path=CREATE_PATH, **options)
    with pytest.raises(OutcomeUnknown):
        provider.submit(submission(j))
    assert len(emu.trainings) == trainings
    found = provider.find(intent)
    assert (found.run_id if found else None) == (emu.trainings[0].id if trainings else None)
    assert emu.count("POST", CREATE_PATH) == 1


def test_timeout_after_sending_is_an_unknown_outcome(emu, fake) -> None:
    emu.inject("delay", method="POST", path=CREATE_PATH, delay=1.5)
    with make_provider(emu, fake, timeout=0.4) as slow, pytest.raises(OutcomeUnknown):
        slow.submit(submission(job()))
    assert len(emu.trainings) == 1


def test_find_ignores_other_inputs_destinations_and_older_runs(emu, provider) -> None:
    j = job()
    provider.submit(submission(j))  # attempt 1, long before the intent below
    emu.advance(3600)
    emu.add_model("acme", "elsewhere", visibility="private")
    intent = intent_for(j, emu.now(), attempt=2)
    provider.submit(submission(job(input={**INPUT, "steps": 7})))
    elsewhere = provider.submit(submission(job(destination="acme/elsewhere")))
    emu.advance(200)  # succeeded: output.version names acme/elsewhere
    assert provider.find(intent) is None
    emu.advance(10)
    mine = provider.submit(submission(j, attempt=2))
    assert provider.find(intent).run_id == mine.run_id
    assert elsewhere.run_id != mine.run_id


def test_observe_250_runs_walks_three_pages(emu, provider) -> None:
    emu.add_model("acme", "portraits", visibility="private")
    trainer = f"{TRAINER}:{FLUX_LORA_VERSION}"
    ids = [
        emu.create_training(trainer, "acme/portraits", {**INPUT, "steps": 3 + i})
        for i in range(250)
    ]
    emu.advance(50)
    emu.reset_requests()
    seen = provider.observe(ids)
    assert set(seen) == set(ids)
    assert {o.health for o in seen.values()} == {Health.RUNNING}
    assert (emu.count("GET", LIST_PATH), emu.count("GET", GET_PATH)) == (3, 0)


def test_observe_fetches_runs_older_than_the_pages_one_by_one(emu, provider) -> None:
    emu.add_model("acme", "portraits", visibility="private")
    trainer = f"{TRAINER}:{FLUX_LORA_VERSION}"
    old = emu.create_training(trainer, "acme/portraits", INPUT)
    newer = [emu.create_training(trainer, "acme/portraits", INPUT) for _ in range(400)]
    emu.reset_requests()
    seen = provider.observe([old, *newer[-10:], "unknown0id", "../not-an-id"])
    assert set(seen) == {old, *newer[-10:]}
    assert (emu.count("GET", LIST_PATH), emu.count("GET", GET_PATH)) == (3, 2)


def _interleaved(emu: ReplicateEmulator, ours: int, foreign_each: int) -> dict[str, float]:
    """`ours` trainings, each after `foreign_each` of someone else's, one a second; returns
    our run ids -> when they were recorded, as the reconciler asks."""
    emu.add_model("acme", "portraits", visibility="private")
    emu.add_model("acme", "theirs", visibility="private")
    trainer = f"{TRAINER}:{FLUX_LORA_VERSION}"
    ids: dict[str, float] = {}
    for i in range(ours):
        for j in range(foreign_each):
            emu.create_training(trainer, "acme/theirs", {**INPUT, "steps": 10_000 + i * 10 + j})
            emu.advance(1)
        recorded = emu.now()
        ids[emu.create_training(trainer, "acme/portraits", {**INPUT, "steps": 3 + i})] = recorded
        emu.advance(1)
    return ids


def test_observe_on_a_shared_account_pages_through_foreign_trainings(emu, provider) -> None:
    # 300 ours interleaved with 300 foreign: six pages reach them all, 300 GETs would not.
    ids = _interleaved(emu, 300, 1)
    emu.reset_requests()
    seen = provider.observe(ids)
    assert set(seen) == set(ids)
    assert (emu.count("GET", LIST_PATH), emu.count("GET", GET_PATH)) == (6, 0)


def test_observe_gets_singly_what_the_pages_would_reach_only_dearly(emu, provider) -> None:
    # Five of ours, each behind 150 foreign trainings: paging to the oldest costs 8 pages, the
    # first page shows that, and four GETs are cheaper.
    ids = _interleaved(emu, 5, 150)
    emu.reset_requests()
    seen = provider.observe(ids)
    assert set(seen) == set(ids)
    lists, gets = emu.count("GET", LIST_PATH), emu.count("GET", GET_PATH)
    assert lists + gets <= 5
    assert lists >= 1 and gets >= 4


def test_observe_never_misses_an_active_run_older_than_the_pages(emu, provider) -> None:
    # One long-running training far back, then 250 newer of ours among 250 foreign: the pages
    # are read for the many, the old one is fetched singly, and every run is observed.
    emu.add_model("acme", "portraits", visibility="private")
    trainer = f"{TRAINER}:{FLUX_LORA_VERSION}"
    recorded = emu.now()
    old = emu.create_training(trainer, "acme/portraits", {**INPUT, "steps": 1})
    emu.advance(3600)
    for i in range(2000):  # finished in between, ours and others'
        emu.create_training(trainer, "acme/portraits", {**INPUT, "steps": -i}, outcome="failed")
    emu.advance(3600)
    ids = {old: recorded, **_interleaved(emu, 250, 1)}
    emu.advance(30)
    emu.reset_requests()
    seen = provider.observe(ids)
    assert set(seen) == set(ids)
    assert seen[old].run_id == old
    assert emu.count("GET", GET_PATH) == 1  # only the old one
    assert emu.count("GET", LIST_PATH) <= 6


def test_observe_maps_statuses_outputs_and_billed_seconds(emu, provider) -> None:
    ref = provider.submit(submission(job()))
    assert provider.observe([ref.run_id])[ref.run_id].health == Health.PENDING
    emu.advance(10)
    running = provider.observe([ref.run_id])[ref.run_id]
    assert (running.health, running.started_at) == (Health.RUNNING, ref.created_at + 5)
    emu.advance(100)
    done = provider.observe([ref.run_id])[ref.run_id]
    version = emu.versions("acme/portraits")[0]
    assert (done.health, done.billed_seconds, done.completed_at) == (
        Health.SUCCEEDED,
        100.0,
        ref.created_at + 105,
    )
    assert done.outputs == {
        "version": f"acme/portraits:{version}",
        "weights": f"{emu.base_url}/delivery/{ref.run_id}/trained_model.tar",
    }


def test_failed_run_carries_the_error(emu, provider) -> None:
    ref = provider.submit(submission(job(input={**INPUT, "trigger_word": "__fail__"})))
    emu.advance(500)
    seen = provider.observe([ref.run_id])[ref.run_id]
    assert (seen.health, seen.retryable) == (Health.FAILED, True)
    assert "CUDA out of memory" in seen.error and seen.billed_seconds == 100.0


def test_an_aborted_training_in_a_page_is_failed_and_breaks_nothing(emu, provider) -> None:
    ok = provider.submit(submission(job()))
    aborted = provider.submit(submission(job(input={**INPUT, "trigger_word": "__abort__"})))
    emu.advance(20)
    seen = provider.observe([ok.run_id, aborted.run_id])
    assert seen[ok.run_id].health == Health.RUNNING
    assert (seen[aborted.run_id].health, seen[aborted.run_id].retryable) == (Health.FAILED, True)
    assert "aborted" in seen[aborted.run_id].error
    assert emu.count("GET", LIST_PATH) == 1
    provider.cancel(aborted.run_id)  # the cancel answer is an aborted training too


def test_cancel_is_idempotent(emu, provider) -> None:
    ref = provider.submit(submission(job()))
    emu.advance(20)
    provider.cancel(ref.run_id)
    provider.cancel(ref.run_id)
    provider.cancel("neverexisted")
    provider.cancel("../not-an-id")
    assert provider.observe([ref.run_id])[ref.run_id].health == Health.CANCELED
    assert emu.count("POST", CANCEL_PATH) == 3


def test_cancel_retries_a_5xx(emu, provider, fake) -> None:
    ref = provider.submit(submission(job()))
    emu.inject("error", method="POST", path=CANCEL_PATH, status=500)
    provider.cancel(ref.run_id)
    assert emu.trainings[0].status == "canceled" and len(fake.sleeps) == 1


def test_logs_tail(emu, provider) -> None:
    ref = provider.submit(submission(job()))
    assert provider.logs(ref.run_id) == ""
    emu.advance(200)
    full = emu.training_json(ref.run_id)["logs"].splitlines()
    assert (
        provider.logs(ref.run_id, tail=2).splitlines()
        == full[-2:]
        == ["Saving weights to output/trained_model.tar", "Training complete"]
    )
    assert provider.logs("neverexisted") == ""


def test_get_5xx_backs_off_exponentially_with_jitter_then_gives_up(emu, provider, fake) -> None:
    emu.inject("error", method="GET", path=LIST_PATH, status=500, count=2)
    assert provider.observe([]) == {}
    assert provider.observe(["abc"]) == {}
    assert len(fake.sleeps) == 2 and 0.5 <= fake.sleeps[0] <= 1 and 1 <= fake.sleeps[1] <= 2
    emu.inject("error", method="GET", path=LIST_PATH, status=500, count=None)
    with pytest.raises(ProviderError, match="500 Internal server error after 5 attempts"):
        provider.observe(["abc"])
    assert max(fake.sleeps) <= provider.max_backoff


def test_token_never_appears_in_errors(emu, fake) -> None:
    messages = []
    with make_provider(emu, fake, environ={ENV: "r8_wrongTokenValue123456789"}) as bad:
        with pytest.raises(ProviderError) as err:
            bad.submit(submission(job()))
        messages.append(str(err.value))
    with make_provider(emu, fake, environ={}) as unset, pytest.raises(ProviderError) as err:
        unset.observe(["abc"])
    messages.append(str(err.value))
    with make_provider(emu, fake) as p:
        emu.inject("lost_response", method="POST", path=CREATE_PATH)
        with pytest.raises(OutcomeUnknown) as err:
            p.submit(submission(job()))
        messages.append(str(err.value))
        with pytest.raises(SubmissionRejected) as err:
            p.submit(submission(job(input={"steps": 1})))
        messages.append(str(err.value))
    assert "401" in messages[0] and ENV in messages[1]
    assert "input.steps: Must be greater than or equal to 3" in messages[3]
    assert not [m for m in messages if emu.token in m or "r8_wrongTokenValue" in m]


def test_500_submissions_pace_under_the_create_limit(emu, provider, fake) -> None:
    start = fake.now
    for i in range(500):
        provider.submit(submission(job(input={**INPUT, "steps": 3 + i})))
    elapsed = fake.now - start
    assert [r.status for r in emu.requests if r.status == 429] == []
    assert len(emu.trainings) == 500
    assert 500 / elapsed * 60 >= 0.9 * 600  # at least 90% of the allowed rate


@pytest.mark.parametrize(("bucket", "limit"), [("create", 600), ("default", 3000)])
def test_pacer_never_exceeds_a_limit_in_any_minute(fake, bucket, limit) -> None:
    pacer = Pacer(clock=fake.monotonic, sleep=fake.sleep)
    times = []
    for _ in range(limit * 3):
        pacer.acquire(bucket)
        times.append(fake.now)
    worst = max(bisect.bisect_left(times, t + 60) - i for i, t in enumerate(times))
    assert worst <= limit
    assert len(times) / (times[-1] - times[0]) * 60 >= 0.9 * limit


def test_unversioned_trainer_uses_the_lock(emu, fake) -> None:
    lock = Lock({TRAINER: LockedTrainer(FLUX_LORA_OLD_VERSION, {})})
    with make_provider(emu, fake, lock=lock) as p:
        p.submit(submission(job(trainer=TRAINER)))
    assert emu.trainings[0].version == FLUX_LORA_OLD_VERSION
    with make_provider(emu, fake) as p, pytest.raises(ProviderError, match="trainops lock"):
        p.submit(submission(job(trainer=TRAINER)))


def test_short_version_is_resolved(emu, provider) -> None:
    provider.submit(submission(job(trainer=f"{TRAINER}:{FLUX_LORA_VERSION[:8]}")))
    assert emu.trainings[0].version == FLUX_LORA_VERSION


def test_from_config(emu, fake) -> None:
    config = ReplicateConfig(token_env=ENV)
    environ = {ENV: emu.token, "REPLICATE_BASE_URL": emu.base_url}
    with ReplicateProvider.from_config(config, environ=environ) as p:
        assert p.observe(["abc"]) == {}


def test_check_reports_input_problems_from_the_lock(provider) -> None:
    schema = {
        "type": "object",
        "required": ["input_images"],
        "properties": {"input_images": {"type": "string"}, "steps": {"type": "integer"}},
    }
    lock = Lock({TRAINER: LockedTrainer(FLUX_LORA_VERSION, schema)})
    problems = provider.check(job(trainer=TRAINER, input={"input_images": "x", "stpes": 5}), lock)
    assert [(p.message, p.hint, p.job) for p in problems] == [
        (f"unknown input 'stpes' of {TRAINER}", "did you mean 'steps'?", "portraits")
    ]
    missing = provider.check(job(trainer="acme/unlocked"), lock)
    assert [p.message for p in missing] == [
        "trainer acme/unlocked has no version and trainops.lock does not pin it"
    ]


@pytest.fixture
def client(emu: ReplicateEmulator) -> Iterator[Any]:
    import replicate

    c = replicate.Client(api_token=emu.token, base_url=emu.base_url)
    yield c
    c._client.close()


def test_resolve_lock_pins_latest_exact_and_prefixed_versions(emu, client) -> None:
    refs = [TRAINER, f"{TRAINER}:{FLUX_LORA_OLD_VERSION}", f"{FAST}:{FAST_FLUX_VERSION[:8]}"]
    lock = resolve_lock(refs, client)
    assert [lock.trainers[r].version for r in refs] == [
        FLUX_LORA_VERSION,
        FLUX_LORA_OLD_VERSION,
        FAST_FLUX_VERSION,
    ]
    assert "lora_rank" in lock.trainers[TRAINER].schema["properties"]
    assert "lora_rank" not in lock.trainers[refs[1]].schema["properties"]
    assert lock.trainers[TRAINER].schema["properties"]["batch_size"]["allOf"] == [
        {
            "enum": [1, 2, 3, 4],
            "type": "integer",
            "title": "batch_size",
            "description": "An enumeration.",
        }
    ]
    assert Lock.loads(lock.dumps()) == lock


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("acme/nothing", "trainer acme/nothing: not found on Replicate"),
        (
            f"{TRAINER}:abcdef12",
            f"trainer {TRAINER}:abcdef12: no version of {TRAINER} starts with abcdef12",
        ),
        ("acme/plain", "trainer acme/plain: version"),
    ],
    ids=["unknown-model", "unknown-prefix", "not-trainable"],
)
def test_resolve_lock_explains_what_it_cannot_pin(emu, client, ref, message) -> None:
    emu.add_version("acme", "plain", openapi_schema={"components": {"schemas": {}}})
    with pytest.raises(ProviderError, match=re.escape(message)):
        resolve_lock([ref], client)


def test_lock_goes_stale_when_the_service_has_a_newer_version(emu, client) -> None:
    lock = resolve_lock([TRAINER], client)
    assert is_stale(lock, [TRAINER], client) == []
    newer = emu.add_trainer(TRAINER, {"type": "object", "properties": {}})
    assert is_stale(lock, [TRAINER], client) == [
        f"{TRAINER}: the lock pins {FLUX_LORA_VERSION[:12]}, the service has {newer[:12]}"
    ]
