"""Hugging Face observe in batch (issue 15): what one pass costs, counted at the Jobs emulator.

The active jobs come from one paged list; jobs that finished since the last pass from the list of
finished ones (newest first), read only while that is cheaper than an inspect each; an inspect
only for what neither list showed. Every asked job that exists is answered, whatever the walk
did.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.emulators.huggingface import HFJob, HubEmulator
from trainops.providers.huggingface import HuggingFaceProvider, labels_of
from trainops.state.model import Health

UNKNOWN = "f" * 24  # well-formed, never issued


@pytest.fixture
def emu() -> Iterator[HubEmulator]:
    with HubEmulator(namespaces={"acme"}) as emulator:
        emulator.page_size = 10
        yield emulator
        assert emulator.errors == []


def add(emu: HubEmulator, n: int, at: float, run_s: float) -> dict[str, float]:
    """`n` trainops jobs created one second apart from `at`, each running `run_s`: id -> created."""
    ids = {}
    for i in range(n):
        job_id = f"{len(emu.jobs) + 1:024x}"
        spec = {
            "command": ["python"],
            "flavor": "cpu-basic",
            "dockerImage": "python",
            "labels": labels_of(f"job-{len(emu.jobs)}", "abc", 1, "h"),
            "environment": {},
        }
        emu.jobs[job_id] = HFJob(spec, "acme", job_id, at + i, 0.0, run_s, "COMPLETED")
        ids[job_id] = at + i
    return ids


def observe(emu: HubEmulator, asked: dict[str, float] | list[str]) -> tuple[dict, dict[str, int]]:
    provider = HuggingFaceProvider(
        namespace="acme", environ=emu.env(), sleep=lambda _s: None, list_page=emu.page_size
    )
    before = len(emu.requests)
    seen = provider.observe(asked)
    calls: dict[str, int] = {}
    for request in emu.requests[before:]:
        calls[request.endpoint] = calls.get(request.endpoint, 0) + 1
    return seen, calls


def test_many_finishing_at_once_cost_pages_not_inspects(emu: HubEmulator) -> None:
    add(emu, 30, emu.now - 10**5, run_s=1)  # finished long ago, never asked again
    asked = add(emu, 25, emu.now - 500, run_s=10**6)
    burst = add(emu, 35, emu.now - 400, run_s=10)  # all finished since the last pass
    seen, calls = observe(emu, {**asked, **burst})
    assert set(seen) == asked.keys() | burst.keys()
    assert {seen[i].health for i in burst} == {Health.SUCCEEDED}
    assert calls == {"job-list": 3 + 4}  # ceil(25 / 10) active + ceil(35 / 10) finished


def test_a_single_finished_job_is_inspected(emu: HubEmulator) -> None:
    asked = add(emu, 5, emu.now - 500, run_s=10**6)
    done = add(emu, 1, emu.now - 400, run_s=10)
    seen, calls = observe(emu, {**asked, **done})
    assert seen[next(iter(done))].health is Health.SUCCEEDED
    assert calls == {"job-list": 1, "job-get": 1}


def test_jobs_deep_in_the_finished_list_are_inspected_not_paged_for(emu: HubEmulator) -> None:
    old = add(emu, 3, emu.now - 10**4, run_s=10**3)  # long runs, finished just now
    add(emu, 200, emu.now - 5000, run_s=1)  # many short ones created after them
    seen, calls = observe(emu, old)
    assert {seen[i].health for i in old} == {Health.SUCCEEDED}
    # 1 active page, then at most 2 pages of finished (3 missing - 1), then an inspect each
    assert calls == {"job-list": 1 + 2, "job-get": 3}


def test_the_walk_stops_past_the_oldest_asked_job(emu: HubEmulator) -> None:
    add(emu, 200, emu.now - 10**5, run_s=1)  # older than anything asked
    burst = add(emu, 15, emu.now - 400, run_s=10)
    gone = {UNKNOWN: emu.now - 300}  # recorded, but the service no longer has it
    seen, calls = observe(emu, {**burst, **gone})
    assert set(seen) == set(burst)
    # 1 active page, 2 finished pages (the second reaches past the oldest asked), 1 inspect
    assert calls == {"job-list": 1 + 2, "job-get": 1}


def test_without_creation_times_the_walk_is_bounded_by_the_inspects_it_saves(
    emu: HubEmulator,
) -> None:
    add(emu, 200, emu.now - 10**5, run_s=1)
    burst = add(emu, 15, emu.now - 400, run_s=10)
    seen, calls = observe(emu, [*burst, UNKNOWN, "0" * 24])
    assert set(seen) == set(burst)
    # 17 missing: 2 pages find the 15 that exist, 2 more find nothing, then 2 inspects
    assert calls == {"job-list": 1 + 4, "job-get": 2}


def test_a_finished_list_that_fails_leaves_the_rest_to_inspects(emu: HubEmulator) -> None:
    burst = add(emu, 15, emu.now - 400, run_s=10)
    emu.fail("job-list", 400, nth=3)  # the finished list's second page is refused
    seen, calls = observe(emu, burst)
    assert {obs.health for obs in seen.values()} == {Health.SUCCEEDED}
    assert set(seen) == set(burst)
    assert calls == {"job-list": 3, "job-get": 5}
