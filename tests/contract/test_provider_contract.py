"""One suite every provider passes (DESIGN §10, conformance): submit, adoption after a lost
response, no adoption without a run, batched observe with an unknown id, cancel twice, cancel a
finished run, logs, and a failing run with a reason. Providers come from the `provider` fixture
in conftest.py."""

from __future__ import annotations

import contextlib

from tests.contract.conftest import Harness
from tests.support.rayhead import TIMEOUT
from trainops.errors import OutcomeUnknown
from trainops.providers.base import Provider
from trainops.state.model import Health

pytestmark = TIMEOUT  # the first ray case waits for the session's Ray head to start


def test_is_a_provider(provider: Harness) -> None:
    assert isinstance(provider.provider, Provider)
    assert provider.provider.name == provider.name


def test_submit_starts_one_run_that_observe_sees(provider: Harness) -> None:
    ref = provider.provider.submit(provider.submission(provider.job("first", "long")))
    seen = provider.provider.observe([ref.run_id])
    assert set(seen) == {ref.run_id}
    assert seen[ref.run_id].health in (Health.PENDING, Health.RUNNING)
    assert provider.runs() == 1


def test_a_lost_response_is_adopted_not_submitted_twice(provider: Harness) -> None:
    sub = provider.submission(provider.job("adopted", "long"))
    intent = provider.intent(sub, provider.now() - 1)
    provider.lose_next_response()
    # on OutcomeUnknown the caller does not know whether a run exists: it asks find(), never
    # resubmits
    with contextlib.suppress(OutcomeUnknown):
        provider.provider.submit(sub)
    found = provider.provider.find(intent)
    assert found is not None
    assert provider.runs() == 1
    assert provider.provider.observe([found.run_id])[found.run_id].health.active


def test_find_without_a_run_finds_nothing(provider: Harness) -> None:
    # an intent whose create never reached the provider: nothing to adopt, the grace decides
    provider.provider.submit(provider.submission(provider.job("other", "ok")))
    sub = provider.submission(provider.job("never", "long"))
    assert provider.provider.find(provider.intent(sub, provider.now() - 1)) is None
    assert provider.runs() == 1


def test_observe_a_batch_with_an_unknown_id(provider: Harness) -> None:
    a = provider.provider.submit(provider.submission(provider.job("one", "long")))
    b = provider.provider.submit(provider.submission(provider.job("two", "long")))
    unknown = "unknown-0123456789ab-1"
    seen = provider.provider.observe([a.run_id, unknown, b.run_id])
    assert set(seen) == {a.run_id, b.run_id}
    assert all(obs.run_id == rid for rid, obs in seen.items())
    assert provider.provider.observe([]) == {}


def test_cancel_twice_is_idempotent(provider: Harness) -> None:
    ref = provider.provider.submit(provider.submission(provider.job("stopme", "long")))
    provider.provider.cancel(ref.run_id)
    provider.provider.cancel(ref.run_id)
    provider.provider.cancel("unknown-0123456789ab-1")
    assert provider.settle(provider.provider, ref.run_id).health == Health.CANCELED


def test_cancel_a_finished_run_changes_nothing(provider: Harness) -> None:
    ref = provider.provider.submit(provider.submission(provider.job("quick", "ok")))
    done = provider.settle(provider.provider, ref.run_id)
    assert done.health == Health.SUCCEEDED, provider.provider.logs(ref.run_id, 20)
    provider.provider.cancel(ref.run_id)
    assert provider.provider.observe([ref.run_id])[ref.run_id].health == Health.SUCCEEDED


def test_logs_tail_of_a_finished_run(provider: Harness) -> None:
    ref = provider.provider.submit(provider.submission(provider.job("talky", "ok")))
    assert provider.settle(provider.provider, ref.run_id).health == Health.SUCCEEDED
    full = provider.provider.logs(ref.run_id, tail=1000).splitlines()
    assert full, "a finished run has a log"
    assert provider.provider.logs(ref.run_id, tail=2).splitlines() == full[-2:]
    assert provider.provider.logs("unknown-0123456789ab-1") == ""


def test_a_failing_run_carries_a_reason(provider: Harness) -> None:
    ref = provider.provider.submit(provider.submission(provider.job("broken", "fail")))
    seen = provider.settle(provider.provider, ref.run_id)
    assert seen.health == Health.FAILED
    assert seen.error.strip(), "a failure says why"
    assert "\n" not in seen.error
