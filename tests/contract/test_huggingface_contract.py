"""The Hugging Face Jobs provider against the contract (DESIGN §10): submit, find after a lost
create response, observe in batch, cancel twice, logs, unknown ids, counted at the Jobs emulator.

These cases predate the shared harness in conftest.py (written in parallel for local and
replicate); folding `huggingface` into that harness as one more `<name>_harness` is open work.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.emulators.huggingface import HubEmulator
from tests.support import factories
from trainops.errors import OutcomeUnknown
from trainops.providers.base import Health, Intent, Provider, Submission, input_hash


@dataclass
class Engine:
    """A provider under test and the hooks the contract needs from its engine."""

    provider: Provider
    spec: dict[str, Any]  # manifest spec fields of a job this provider runs
    finish: Callable[[], None]  # let every submitted run reach a terminal state
    created: Callable[[str], int]  # runs the engine created for a job name (counted there)
    lose_next_create: Callable[[], None]  # the next create takes effect but its answer is lost

    def submission(self, name: str, attempt: int = 1, **spec: Any) -> Submission:
        job = factories.job(name, **{**self.spec, **spec})
        value = {"steps": 3, "name": name}
        from trainops.manifest import revision

        return Submission(job, revision(job.spec), attempt, value, input_hash(value), "s.yaml")


@pytest.fixture
def engine(monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    from trainops.providers.huggingface import HuggingFaceProvider

    with HubEmulator(namespaces={"acme"}) as emu:
        for key, value in emu.env().items():
            monkeypatch.setenv(key, value)
        provider = HuggingFaceProvider(
            namespace="acme", environ=emu.env(), sleep=lambda s: None, rng=random.Random(7)
        )
        yield Engine(
            provider,
            {
                "provider": "huggingface",
                "image": "python:3.12",
                "command": ["python", "t.py"],
                "hardware": "a10g-small",
                "output_repo": "acme/out",
            },
            finish=lambda: emu.advance(3600),
            created=lambda name: len(emu.created_jobs(**{"trainops-job": name})),
            lose_next_create=lambda: emu.fail("job-create", 500, after_apply=True) and None,
        )
        assert emu.errors == []


def _intent(engine: Engine, name: str, attempt: int = 1, taken: frozenset[str] = frozenset()):
    sub = engine.submission(name, attempt)
    return Intent(
        name, sub.revision, attempt, sub.input_hash, 0.0, sub.job.spec.provider, taken=taken
    ), sub


def test_submit_then_observe_until_succeeded(engine: Engine) -> None:
    provider = engine.provider
    ref = provider.submit(engine.submission("a"))
    assert provider.observe([ref.run_id])[ref.run_id].health.active
    engine.finish()
    seen = provider.observe([ref.run_id])[ref.run_id]
    assert seen.health is Health.SUCCEEDED
    assert engine.created("a") == 1


def test_find_after_a_lost_create_response(engine: Engine) -> None:
    provider = engine.provider
    intent, sub = _intent(engine, "lost")
    engine.lose_next_create()
    with pytest.raises(OutcomeUnknown):
        provider.submit(sub)
    found = provider.find(intent)
    assert found is not None
    assert engine.created("lost") == 1
    assert provider.find(_intent(engine, "lost", taken=frozenset({found.run_id}))[0]) is None
    assert provider.find(_intent(engine, "lost", attempt=2)[0]) is None


def test_observe_in_batch_and_unknown_ids(engine: Engine) -> None:
    provider = engine.provider
    refs = [provider.submit(engine.submission(f"j{i}")) for i in range(5)]
    unknown = "0" * 24
    seen = provider.observe([r.run_id for r in refs] + [unknown, "not-an-id"])
    assert set(seen) == {r.run_id for r in refs}


def test_cancel_twice_and_unknown(engine: Engine) -> None:
    provider = engine.provider
    ref = provider.submit(engine.submission("c"))
    provider.cancel(ref.run_id)
    provider.cancel(ref.run_id)
    provider.cancel("0" * 24)
    engine.finish()
    assert provider.observe([ref.run_id])[ref.run_id].health is Health.CANCELED


def test_logs(engine: Engine) -> None:
    provider = engine.provider
    ref = provider.submit(engine.submission("l"))
    engine.finish()
    assert "step 3/3" in provider.logs(ref.run_id, tail=10)
    assert provider.logs("0" * 24) == ""
