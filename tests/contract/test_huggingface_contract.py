"""What the Hugging Face Jobs provider promises beyond the shared suite (test_provider_contract.py
runs it through `huggingface_harness`): adoption matches by the intent's labels (another attempt,
a job already bound, is never adopted), ids of the right shape the service does not know are
left out, a finished job's output is its Hub revision, and logs come from the SSE stream. Counted
at the Jobs emulator.
"""

from __future__ import annotations

import contextlib
import dataclasses

import pytest

from tests.contract.conftest import Harness
from trainops.errors import OutcomeUnknown
from trainops.state.model import Health

UNKNOWN = "0" * 24  # a well-formed job id the service never issued


@pytest.fixture
def hf(huggingface_harness: Harness) -> Harness:
    return huggingface_harness


def test_adoption_matches_the_intents_labels_only(hf: Harness) -> None:
    sub = hf.submission(hf.job("lost", "long"))
    intent = hf.intent(sub, hf.now() - 1)
    hf.lose_next_response()
    with pytest.raises(OutcomeUnknown):
        hf.provider.submit(sub)
    found = hf.provider.find(intent)
    assert found is not None
    assert len(hf.extra["emu"].created_jobs(**{"trainops-job": "lost"})) == 1
    assert hf.provider.find(dataclasses.replace(intent, taken=frozenset({found.run_id}))) is None
    assert hf.provider.find(dataclasses.replace(intent, attempt=2)) is None
    assert hf.provider.find(dataclasses.replace(intent, input_hash="other")) is None


def test_an_intent_older_than_its_job_by_more_than_the_skew_is_not_adopted(hf: Harness) -> None:
    sub = hf.submission(hf.job("late", "long"))
    with contextlib.suppress(OutcomeUnknown):
        hf.provider.submit(sub)
    later = hf.intent(sub, hf.now() + 3600)  # recorded an hour after the job was created
    assert hf.provider.find(later) is None


def test_unknown_well_formed_ids_are_left_out(hf: Harness) -> None:
    refs = [hf.provider.submit(hf.submission(hf.job(f"j{i}", "long"))) for i in range(3)]
    seen = hf.provider.observe([r.run_id for r in refs] + [UNKNOWN, "not-an-id"])
    assert set(seen) == {r.run_id for r in refs}
    hf.provider.cancel(UNKNOWN)
    assert hf.provider.logs(UNKNOWN) == ""


def test_a_finished_job_delivers_its_hub_revision_as_weights(hf: Harness) -> None:
    ref = hf.provider.submit(hf.submission(hf.job("out", "ok")))
    seen = hf.settle(hf.provider, ref.run_id)
    assert seen.health is Health.SUCCEEDED
    head = hf.extra["emu"].commits("acme/out")[-1].oid
    assert seen.outputs == {"weights": f"acme/out@{head}"}
    assert seen.billed_seconds is not None and seen.billed_seconds > 0


def test_logs_come_from_the_event_stream(hf: Harness) -> None:
    ref = hf.provider.submit(hf.submission(hf.job("l", "ok")))
    hf.settle(hf.provider, ref.run_id)
    assert hf.provider.logs(ref.run_id, tail=2).splitlines() == [
        "l: step 3/3 loss=0.333",
        "l: pushed outputs",
    ]
