"""Runs nobody declared (DESIGN §20, issue 29 part 3) on the Replicate emulator, through the CLI:
`status --all` lists orphaned trainings (this repository's marks, no state file knows them) and
foreign ones (to our destination, without our marks) with age and cost; `adopt` binds only an
orphaned one, checked on the provider's record; apply never cancels nor adopts a foreign one.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.e2e.test_replicate_cli import IMAGES, R8_TOKEN, TRAINER, Replicated, job
from tests.e2e.test_serve import GH_TOKEN, Served, eventually
from tests.emulators.github import GitHubEmulator
from tests.emulators.replicate import (
    CANCEL_PATH,
    FLUX_LORA_VERSION,
    LIST_PATH,
    OpenAPIResponses,
    ReplicateEmulator,
    SimClock,
)
from tests.support.undeclared import HOUR, ProviderSetup, forge_runs, undeclared_repo
from tests.support.workspace import UserRepo, explain
from trainops.github.orphan_report import ORPHAN_MARKER
from trainops.serve.controller import CENSUS_EVERY

__all__ = ["undeclared_repo"]  # the fixture `repo` (tests/support/undeclared.py)


@pytest.fixture
def emu() -> Iterator[ReplicateEmulator]:
    # Simulated time starts an hour ago: trainings made before `advance` are past the grace.
    with ReplicateEmulator(
        token=R8_TOKEN, queue_seconds=5, run_seconds=100, clock=SimClock(time.time() - HOUR)
    ) as emulator:
        yield emulator
        assert emulator.server_errors == []
        assert OpenAPIResponses().errors(emulator.requests) == []


@pytest.fixture
def provider_setup(emu: ReplicateEmulator) -> ProviderSetup:
    return ProviderSetup({"portraits": job("portraits")}, env={"REPLICATE_BASE_URL": emu.base_url})


@pytest.fixture
def user(repo: UserRepo, emu: ReplicateEmulator) -> Replicated:
    """The repository as `trainops lock` left it, the CLI run with the Replicate token."""
    made = Replicated(repo, emu)
    made.ok("lock")
    made.repo.commit("trainops lock")
    return made


def strays(emu: ReplicateEmulator) -> tuple[str, str]:
    """One training as trainops would have made it for `portraits` (same trainer, version,
    input, through the API) and one to its destination with another input; both finished an
    hour ago, and the simulated clock then catches up with the real one."""
    emu.add_model("acme", "portraits", visibility="private")
    emu.add_model("someone", "else")
    trainer = f"{TRAINER}:{FLUX_LORA_VERSION}"
    ours = emu.create_training(
        trainer, "acme/portraits", {"input_images": IMAGES, "steps": 1000}, source="api"
    )
    theirs = emu.create_training(
        trainer, "acme/portraits", {"input_images": IMAGES, "steps": 7}, source="api"
    )
    emu.create_training(trainer, "someone/else", {"steps": 1}, source="api")  # not ours at all
    emu.advance(HOUR - 5)
    return ours, theirs


def census(user: Replicated) -> dict[str, Any]:
    doc = json.loads(user.ok("status", "--all", "-o", "json").stdout)
    return dict(doc["undeclared"])


def test_status_all_lists_orphaned_and_foreign_trainings_with_age_and_cost(
    user: Replicated,
) -> None:
    ours, theirs = strays(user.emu)
    user.emu.reset_requests()
    found = census(user)
    runs = {r["run_id"]: r for r in found["runs"]}
    assert set(runs) == {ours, theirs}
    assert (runs[ours]["kind"], runs[ours]["job"]) == ("orphaned", "portraits")
    assert (runs[theirs]["kind"], runs[theirs]["job"]) == ("foreign", "portraits")
    assert runs[ours]["age_seconds"] > 3000
    assert runs[ours]["cost_usd"] == pytest.approx(100 * 0.001525, abs=1e-4)  # gpu-h100
    assert found["list_calls"] == {"replicate": 1} and found["not_listable"] == []
    assert user.emu.count("GET", LIST_PATH) >= 1
    table = user.ok("status", "--all").stdout
    assert "runs nobody declared:" in table and ours in table and "orphaned" in table
    md = user.ok("status", "--all", "-o", "markdown").stdout
    assert "#### Runs nobody declared" in md
    row = next(line for line in md.splitlines() if ours in line)
    assert row.startswith("| replicate | orphaned | `portraits` |") and "$0.15" in row
    assert "Runs nobody declared" not in user.ok("status", "-o", "markdown").stdout
    # Without --all the report is as before: no `undeclared` key.
    assert "undeclared" not in json.loads(user.ok("status", "-o", "json").stdout)


def test_adopt_binds_an_orphaned_training_and_apply_then_submits_nothing(
    user: Replicated,
) -> None:
    ours, theirs = strays(user.emu)
    user.ok("adopt", "portraits", ours)
    [run] = user.state_file("portraits")["runs"]
    assert (run["run_id"], run["health"]) == (ours, "Succeeded")
    assert [r["run_id"] for r in census(user)["runs"]] == [theirs]
    user.emu.reset_requests()
    user.ok("apply")
    assert user.creates() == 0 and user.emu.count("POST", CANCEL_PATH) == 0


def test_adopt_refuses_a_foreign_training_and_one_already_recorded(user: Replicated) -> None:
    ours, theirs = strays(user.emu)
    refused = user.run("adopt", "portraits", theirs)
    assert refused.returncode == 1, explain(refused)
    assert "not this repository's" in refused.stderr and "Traceback" not in refused.stderr
    user.ok("adopt", "portraits", ours)
    again = user.run("adopt", "portraits", ours)
    assert again.returncode == 1 and "already recorded" in again.stderr, explain(again)
    assert [r["run_id"] for r in user.state_file("portraits")["runs"]] == [ours]


def test_apply_and_prune_never_cancel_a_foreign_training(user: Replicated) -> None:
    _ours, theirs = strays(user.emu)
    running = user.emu.create_training(
        f"{TRAINER}:{FLUX_LORA_VERSION}", "acme/portraits", {"steps": 9}, source="api"
    )  # running, to our destination, not ours
    user.ok("apply")
    user.repo.remove_job("portraits")
    user.repo.commit("drop portraits")
    user.ok("apply")
    assert user.emu.training_json(theirs)["status"] == "succeeded"
    assert user.emu.training_json(running)["status"] != "canceled"
    assert user.emu.count("POST", CANCEL_PATH) == 1  # only the training apply itself made


def test_a_forged_state_file_cannot_make_adopt_bind_nor_apply_cancel_a_foreign_training(
    user: Replicated,
) -> None:
    ours, theirs = strays(user.emu)
    running = user.emu.create_training(
        f"{TRAINER}:{FLUX_LORA_VERSION}", "acme/portraits", {"steps": 9}, source="api"
    )
    user.ok("adopt", "portraits", ours)
    # Someone with push access rewrites the record: the adopted run is now the foreign one.
    forge_runs(user.repo, "portraits", running)
    refused = user.run("adopt", "portraits", theirs)
    assert refused.returncode == 1 and "not this repository's" in refused.stderr, explain(refused)
    user.repo.write_job("portraits", job("portraits", steps=1200))
    user.repo.commit("more steps")
    user.run("apply")
    assert user.emu.training_json(running)["status"] != "canceled"
    assert user.emu.training_json(theirs)["status"] == "succeeded"


@pytest.fixture
def gh() -> Iterator[GitHubEmulator]:
    with GitHubEmulator(token=GH_TOKEN) as emulator:
        yield emulator
        assert emulator.errors == []


def test_serve_shows_orphaned_runs_on_metrics_and_the_page_listing_once_per_cadence(
    user: Replicated, gh: GitHubEmulator
) -> None:
    ours, theirs = strays(user.emu)
    served = Served(user.repo, gh, user.emu, interval="1s", public=False)
    try:
        assert served.metric("trainops_orphaned_runs", provider="replicate") == 1
        found = served.status()["undeclared"]
        kinds = {r["run_id"]: r["kind"] for r in found["runs"]}
        assert kinds == {ours: "orphaned", theirs: "foreign"}
        page = httpx.get(f"{served.url}/", timeout=10).text
        assert "Runs nobody declared" in page and f'data-run="{ours}"' in page

        def settled() -> tuple[float, int]:
            # (passes done, list requests so far), read while no pass runs in between
            while True:
                before = user.emu.count("GET", LIST_PATH)
                passes = served.idle()
                if user.emu.count("GET", LIST_PATH) == before:
                    return passes, before

        first, listed = settled()
        # Later passes list once each (observing the recorded run, `replicate/observe.py`) and
        # reuse the census: none lists again before CENSUS_EVERY passes.
        eventually(lambda: served.idle() >= first + 2, what="two more passes")
        later, now_listed = settled()
        assert later < CENSUS_EVERY
        assert now_listed - listed == later - first
        assert served.metric("trainops_orphaned_runs", provider="replicate") == 1
        # serve --github reports it on the job's source commit, as a scheduled reconcile does
        # (tests/e2e/test_orphan_report.py: once per run id).
        [run] = user.state_file("portraits")["runs"]
        reports = [
            c["body"]
            for c in gh.commit_comments(run["source_commit"])
            if c["body"].startswith(ORPHAN_MARKER)
        ]
        assert len(reports) == 1 and f"trainops adopt portraits {ours}" in reports[0]
    finally:
        code, err = served.stop()
    assert code == 0, err
