"""Runs nobody declared (DESIGN §20, issue 29 part 3) on Hugging Face Jobs, through the CLI and
the Hub emulator: `status --all` lists the namespace's jobs that carry a job's labels (its marks,
with this repository's) but no state file knows (orphaned), and jobs without them whose
`TRAINOPS_OUTPUT_REPO` is one of our output repos (foreign); `adopt` binds only an orphaned one,
at the attempt its labels name; apply and prune never cancel a foreign one; a forged state file
cannot make adopt bind a job without our marks.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import yaml
from huggingface_hub import HfApi

from tests.e2e.test_huggingface_cli import hf_job
from tests.emulators.huggingface import HubEmulator
from tests.support.undeclared import (
    HOUR,
    ProviderSetup,
    census,
    forge_runs,
    forget,
    ok,
    undeclared_repo,
)
from tests.support.workspace import UserRepo, config, explain
from trainops.providers.huggingface.listing import CANNOT_TELL

__all__ = ["undeclared_repo"]  # the fixture `repo` (tests/support/undeclared.py)


@pytest.fixture
def hub() -> Iterator[HubEmulator]:
    with HubEmulator(namespaces={"acme"}) as emu:
        yield emu
        assert emu.errors == []


@pytest.fixture
def provider_setup(hub: HubEmulator) -> ProviderSetup:
    cfg = config() + yaml.safe_dump({"providers": {"huggingface": {"namespace": "acme"}}})
    return ProviderSetup({"portraits": hf_job("portraits")}, cfg=cfg, env=hub.env())


def someone_runs(
    hub: HubEmulator, labels: dict[str, str] | None = None, to: str = "acme/portraits-out"
) -> str:
    """A job someone started by hand in the namespace, pushing to `to` (portraits' output)."""
    api = HfApi(endpoint=hub.url, token=hub.token)
    info = api.run_job(
        image="python:3.12",
        command=["python", "train.py"],
        env={"TRAINOPS_OUTPUT_REPO": to},
        flavor="a10g-small",
        labels=labels,
        namespace="acme",
    )
    return str(info.id)


def orphaned(repo: UserRepo, hub: HubEmulator) -> str:
    """Portraits' job as trainops started it an hour ago, finished; then the state forgets it."""
    hub.now = time.time() - HOUR
    ok(repo, "apply")
    [job] = hub.created_jobs()
    hub.advance(HOUR - 5)
    forget(repo, "portraits")
    return str(job["id"])


def test_status_all_lists_orphaned_and_foreign_jobs_then_adopt_binds_the_orphan(
    repo: UserRepo, hub: HubEmulator
) -> None:
    ours = orphaned(repo, hub)
    theirs = someone_runs(hub)
    for _ in range(2):
        someone_runs(hub, {"team": "vision"}, to="acme/elsewhere")  # not ours at all
    hub.requests.clear()
    found = census(repo)
    runs = {r["run_id"]: r for r in found["runs"]}
    assert set(runs) == {ours, theirs}
    assert (runs[ours]["kind"], runs[ours]["health"]) == ("orphaned", "Succeeded")
    assert (runs[theirs]["kind"], runs[theirs]["job"]) == ("foreign", "portraits")
    assert runs[ours]["age_seconds"] > 3000 and runs[ours]["cost_usd"] > 0
    assert found["notes"] == [f"huggingface: {CANNOT_TELL}"]
    pages = [r for r in hub.requests if r.endpoint == "job-list"]
    assert found["list_calls"] == {"huggingface": 1} and len(pages) == 1
    refused = repo.trainops("adopt", "portraits", theirs)
    assert refused.returncode == 1 and "not this repository's" in refused.stderr, explain(refused)
    ok(repo, "adopt", "portraits", ours)
    [run] = repo.state()["portraits"].runs
    assert (run.run_id, run.attempt, run.health.value) == (ours, 1, "Succeeded")
    assert [r["run_id"] for r in census(repo)["runs"]] == [theirs]
    ok(repo, "apply")
    assert len(hub.created_jobs()) == 4  # nothing submitted again
    assert hub.jobs[theirs].canceled_at is None


def test_a_job_with_copied_labels_but_no_repository_is_foreign_and_never_adopted(
    repo: UserRepo, hub: HubEmulator
) -> None:
    ours = orphaned(repo, hub)
    copied = {k: v for k, v in hub.jobs[ours].spec["labels"].items() if k != "trainops-repository"}
    copy = someone_runs(hub, copied)
    assert {r["run_id"]: r["kind"] for r in census(repo)["runs"]} == {
        ours: "orphaned",
        copy: "foreign",
    }
    refused = repo.trainops("adopt", "portraits", copy)
    assert refused.returncode == 1, explain(refused)
    assert "no trainops-repository label" in refused.stderr


def test_apply_and_prune_never_cancel_a_foreign_job_even_under_a_forged_state_file(
    repo: UserRepo, hub: HubEmulator
) -> None:
    ours = orphaned(repo, hub)
    ok(repo, "adopt", "portraits", ours)
    running = someone_runs(hub)
    # Someone with push access rewrites the record: the adopted job is now the foreign one.
    forge_runs(repo, "portraits", running)
    refused = repo.trainops("adopt", "portraits", running)
    assert refused.returncode == 1, explain(refused)
    assert "already recorded" in refused.stderr or "not this repository's" in refused.stderr
    repo.write_job("portraits", hf_job("portraits", input={"steps": 2}))
    repo.commit("new revision")
    repo.trainops("apply")
    repo.remove_job("portraits")
    repo.commit("drop portraits")
    repo.trainops("apply")
    assert hub.jobs[running].canceled_at is None
    cancels = [r for r in hub.requests if r.method == "POST" and r.path.endswith("/cancel")]
    assert all(running not in r.path for r in cancels)


def test_the_listing_follows_pages_and_stops_at_max_calls(hub: HubEmulator) -> None:
    from trainops.providers.base import Intent
    from trainops.providers.huggingface import HuggingFaceProvider

    hub.page_size = 2
    for n in range(5):
        someone_runs(hub, to=f"acme/out-{n}")
        hub.advance(1)  # newest first: out-0 is on the last page
    provider = HuggingFaceProvider(namespace="acme", environ=hub.env(), list_page=2)
    probe = Intent("portraits", "0" * 12, 0, "h", 0.0, "huggingface", destination="acme/out-0")
    hub.requests.clear()
    cut = provider.list_runs([probe], max_calls=2)
    assert (cut.calls, cut.complete, cut.runs) == (2, False, [])
    assert len([r for r in hub.requests if r.endpoint == "job-list"]) == 2
    hub.requests.clear()
    whole = provider.list_runs([probe], max_calls=10)
    assert (whole.calls, whole.complete) == (3, True)
    assert [(r.job, r.foreign) for r in whole.runs] == [("portraits", True)]
    assert len([r for r in hub.requests if r.endpoint == "job-list"]) == 3
