"""One retry policy (issue 27 item 6, `trainops.retry`): one layer retries, the service's own wait
is honoured (Replicate's `ratelimit-reset` without Retry-After, the Hub's `RateLimit ...;t=N`),
a pass's waiting is capped, and a create whose outcome is unknown is not sent again.
Facts: shared/ref/README.md, "Checked against the real clients" ("HF rate limits",
"Replicate 429"). Time is injected: nothing here waits."""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest

from tests.emulators.huggingface import HubEmulator
from tests.emulators.replicate import CREATE_PATH, ReplicateEmulator
from tests.integration.test_replicate_provider import (
    FakeTime,
    job,
    make_provider,
    submission,
)
from trainops.errors import OutcomeUnknown, ProviderError
from trainops.providers.huggingface import HuggingFaceProvider
from trainops.retry import Budget, hint

TRAINING = "/v1/trainings/"
RUN = "ufawqhfynnddngldkgtslldrkq"  # a well-formed training id


@pytest.fixture
def fake() -> FakeTime:
    return FakeTime()


@pytest.fixture
def emu(fake: FakeTime) -> Iterator[ReplicateEmulator]:
    with ReplicateEmulator(queue_seconds=5, run_seconds=100, rate_clock=fake.monotonic) as e:
        yield e


def test_a_replicate_read_under_429_makes_at_most_max_attempts_requests(emu, fake) -> None:
    # Before: the client's RetryTransport (10 tries) inside trainops's 5: 50 requests.
    emu.inject("rate_limit", method="GET", path=TRAINING, count=None, retry_after=0)
    with make_provider(emu, fake, max_attempts=5) as provider, pytest.raises(ProviderError):
        provider.logs(RUN)
    assert emu.count("GET", TRAINING) == 5


def test_replicate_waits_its_ratelimit_reset_without_retry_after(emu, fake) -> None:
    emu.inject("rate_limit", method="GET", path=TRAINING, count=1, retry_after=7)
    with make_provider(emu, fake) as provider:
        provider.logs(RUN)
    assert fake.sleeps == [7.0]
    assert emu.count("GET", TRAINING) == 2


def test_the_pass_wait_budget_is_shared_and_enforced(emu, fake) -> None:
    budget = Budget(10.0, sleep=fake.sleep)
    emu.inject("rate_limit", method="GET", path=TRAINING, count=None, retry_after=7)
    with make_provider(emu, fake, budget=budget) as provider:
        with pytest.raises(ProviderError):
            provider.logs(RUN)  # waits 7, then 7 more would pass the budget: gives up
        with pytest.raises(ProviderError):
            provider.logs(RUN)  # the budget is spent: no wait at all
    assert fake.sleeps == [7.0] and budget.spent == 7.0
    assert emu.count("GET", TRAINING) == 3


def test_a_replicate_create_with_an_ambiguous_503_is_not_sent_again(emu, fake) -> None:
    emu.add_model("acme", "portraits", visibility="private")
    emu.inject("error", method="POST", path=CREATE_PATH, count=1, status=503)
    with make_provider(emu, fake) as provider, pytest.raises(OutcomeUnknown):
        provider.submit(submission(job()))
    assert emu.count("POST", CREATE_PATH) == 1 and fake.sleeps == []


UNKNOWN = "f" * 24  # a well-formed HF job id, never issued


@pytest.fixture
def hub() -> Iterator[HubEmulator]:
    with HubEmulator(namespaces={"acme"}) as emulator:
        yield emulator


def test_hf_waits_the_ratelimit_window_instead_of_giving_up(hub) -> None:
    # Before: backoff of 0.05 s doubling, about one second in all, whatever the Hub said.
    hub.rate_limit_reset = 40
    hub.fail("job-cancel", 429, times=2)
    sleeps: list[float] = []
    provider = HuggingFaceProvider(namespace="acme", environ=hub.env(), sleep=sleeps.append)
    provider.cancel(UNKNOWN)
    assert sleeps == [40.0, 40.0]
    assert len(hub.calls("job-cancel")) == 3


def _hf_submission(name: str = "portraits"):
    from tests.contract.conftest import _job
    from trainops.providers.base import Submission

    data = {
        "apiVersion": "trainops/v1",
        "kind": "TrainingJob",
        "metadata": {"name": name},
        "spec": {
            "provider": "huggingface",
            "image": "python:3.12",
            "command": ["python", "train.py"],
            "hardware": "a10g-small",
            "input": {"steps": 3},
        },
    }
    return Submission(_job(data, name), "0123456789ab", 1, {"steps": 3}, "h", "snap/p.yaml")


def test_hf_create_refused_by_429_waits_the_window_and_creates_once(hub) -> None:
    hub.rate_limit_reset = 45
    hub.fail("job-create", 429, times=2)
    sleeps: list[float] = []
    provider = HuggingFaceProvider(namespace="acme", environ=hub.env(), sleep=sleeps.append)
    provider.submit(_hf_submission())
    assert sleeps == [45.0, 45.0]
    assert len(hub.calls("job-create")) == 3 and len(hub.created_jobs()) == 1


def test_hf_create_with_a_lost_answer_is_not_sent_again(hub) -> None:
    hub.fail("job-create", 500, after_apply=True)
    sleeps: list[float] = []
    provider = HuggingFaceProvider(namespace="acme", environ=hub.env(), sleep=sleeps.append)
    with pytest.raises(OutcomeUnknown):
        provider.submit(_hf_submission())
    assert len(hub.calls("job-create")) == 1 and len(hub.created_jobs()) == 1 and sleeps == []


@pytest.mark.parametrize(
    ("headers", "body", "seconds"),
    [
        ({"Retry-After": "12"}, "", 12.0),
        ({"Retry-After": "Thu, 01 Jan 1970 00:01:40 GMT"}, "", 40.0),
        ({"RateLimit": '"api";r=0;t=55'}, "", 55.0),
        ({"ratelimit-remaining": "0", "ratelimit-reset": "9"}, "", 9.0),
        ({"x-ratelimit-remaining": "0", "x-ratelimit-reset": "130"}, "", 70.0),
        ({}, '{"detail": "Request was throttled. Expected available in ~30s."}', 30.0),
        ({"Retry-After": "99999"}, "", 300.0),
        ({}, "", None),
    ],
)
def test_the_wait_hint_reads_every_service_header(headers, body, seconds) -> None:
    assert hint(headers, body, wall=lambda: 60.0) == seconds


def test_backoff_is_jittered_and_capped() -> None:
    from trainops.retry import Policy

    policy = Policy(base=1.0, cap=4.0, rng=random.Random(0), budget=Budget(1e9))
    assert all(0.5 * min(4.0, 2.0 ** (n - 1)) <= policy.delay(n, None) <= 4.0 for n in range(1, 9))
    assert policy.delay(3, 17.0) == 17.0


def test_the_providers_of_one_pass_share_one_wait_budget(tmp_path) -> None:
    from trainops.manifest import Config
    from trainops.providers import Providers

    providers = Providers(tmp_path, Config.model_validate({}))
    replicate, huggingface = providers["replicate"], providers["huggingface"]
    assert replicate.retry.budget is huggingface.retry.budget is providers.budget


def test_github_reads_under_a_20_percent_429_rate_succeed_in_few_requests() -> None:
    from tests.emulators.github import GitHubEmulator
    from trainops.github.client import GitHubClient

    sleeps: list[float] = []
    with GitHubEmulator() as gh_emu:
        gh_emu.throttle(0.2, seed=4, retry_after=3)
        with GitHubClient(
            gh_emu.token, api_url=gh_emu.url, sleep=sleeps.append, clock=lambda: 0.0
        ) as client:
            for _ in range(100):
                client.list_commit_statuses("acme/models", "a" * 40)
        throttled = [r for r in gh_emu.requests if r.status == 429]
        assert throttled and len(gh_emu.requests) <= 200
        assert sleeps == [3.0] * len(throttled)


def test_a_hint_that_is_not_a_number_waits_at_most_the_cap() -> None:
    from trainops.retry import MAX_HINT, hint

    assert hint({"Retry-After": "nan"}) == MAX_HINT
    assert hint({"RateLimit": '"api";r=0;t=99999'}) == MAX_HINT
    assert hint({"ratelimit-reset": "-nan"}) == MAX_HINT
