"""Money end to end: the CLI as a subprocess in a real git repository with a bare remote, against
the Replicate emulator (trainer versions pinned by `trainops lock`) and the GitHub emulator.

- A plan over budget is refused before anything is spent, with the dollar figures in every
  output; apply starts only what the policy admits.
- A run past its `max_duration` is canceled, and state, status and the commit comment say why.
- `trainops cost` reports what the emulator billed: predict_time x price, run by run.

Two clocks meet here. trainops measures a run's age with its own wall clock (`time.time()` in the
CLI process) against the provider's `started_at`, and proves a training is its own by a creation
time no earlier than its intent (DESIGN §9). The emulator's clock therefore starts at the wall
clock, as Replicate's does. Where a run must be old, the emulator's clock runs at real speed and
the limit is a few seconds (`max_duration: 4s`); where only the provider's outcome matters (what
was billed), `advance()` moves the emulator ahead, which trainops only reads as finished runs.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.emulators.github import GitHubEmulator
from tests.emulators.replicate import CREATE_PATH, ReplicateEmulator, SimClock
from tests.support.gitrepo import git
from tests.support.reviewed import run_comments
from tests.support.workspace import UserRepo, config, explain

OWNER, NAME = "acme", "models"
GH_TOKEN = "ghs_" + "CostBudgetT0ken" * 3
R8_TOKEN = "r8_" + "CostBudgetT0ken0" * 2
TRAINER = "ostris/flux-dev-lora-trainer"  # no version: trainops.lock pins it
PRICES = {"gpu-h100": 0.001525, "gpu-l40s": 0.000975, "gpu-a100-large": 0.0014}  # defaults
QUEUE = 5.0  # simulated seconds a training waits before it starts


def job(
    name: str,
    hardware: str,
    *,
    steps: int = 1000,
    labels: Mapping[str, str] | None = None,
    **spec: Any,
) -> str:
    """A Replicate TrainingJob training into `acme/<name>`."""
    doc = {
        "apiVersion": "trainops/v1",
        "kind": "TrainingJob",
        "metadata": {"name": name, "labels": dict(labels or {})},
        "spec": {
            "provider": "replicate",
            "trainer": TRAINER,
            "destination": f"acme/{name}",
            "hardware": hardware,
            "input": {"input_images": "https://example.com/data.zip", "steps": steps},
            **spec,
        },
    }
    return yaml.safe_dump(doc, sort_keys=False)


def locked_repo(
    tmp_path: Path, replicate: ReplicateEmulator, jobs: Mapping[str, str], **cfg: Any
) -> UserRepo:
    """The user's repository with `trainops lock` run and committed (pushed to the remote)."""
    repo = UserRepo.create(tmp_path, jobs, cfg=config(**cfg))
    repo.env["REPLICATE_BASE_URL"] = replicate.base_url
    result = repo.trainops("lock", env={"REPLICATE_API_TOKEN": R8_TOKEN})
    assert result.returncode == 0, explain(result)
    repo.commit("lock trainers")
    return repo


def cli(repo: UserRepo, *args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
    result = repo.trainops(*args, env={"REPLICATE_API_TOKEN": R8_TOKEN})
    assert result.returncode == code, explain(result)
    return result


def actions_apply(repo: UserRepo, gh: GitHubEmulator, event: str) -> None:
    """`trainops apply --github` as the apply/reconcile workflows run it."""
    event_file = repo.signals / f"event-{time.monotonic_ns()}.json"
    event_file.write_text(json.dumps({"ref": "refs/heads/main"}))
    env = {
        **gh.env(),
        "GITHUB_ACTIONS": "true",
        "GITHUB_EVENT_NAME": event,
        "GITHUB_EVENT_PATH": str(event_file),
        "GITHUB_SHA": git(repo.root, "rev-parse", "HEAD"),
        "GITHUB_REPOSITORY": f"{OWNER}/{NAME}",
        "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_RUN_ID": "77",
        "REPLICATE_API_TOKEN": R8_TOKEN,
        "TRAINOPS_GITHUB_BACKOFF": "0",
        "TRAINOPS_GITHUB_WRITE_INTERVAL": "0",
    }
    result = repo.trainops("apply", "--github", env=env)
    assert result.returncode == 0, explain(result)
    assert GH_TOKEN not in result.stdout + result.stderr
    assert R8_TOKEN not in result.stdout + result.stderr


def row(table: str, name: str) -> list[str]:
    """The cells of `name`'s row in a text table (columns stand two or more spaces apart)."""
    [line] = [line for line in table.splitlines() if line.split()[:1] == [name]]
    return re.split(r" {2,}", line.strip())


def month_of(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m")


def realtime_emulator(queue: float, **kw: Any) -> ReplicateEmulator:
    """A Replicate emulator whose clock is the wall clock, moving at real speed."""
    return ReplicateEmulator(
        token=R8_TOKEN, queue_seconds=queue, clock=SimClock(time.time(), speed=1.0), **kw
    )


@pytest.fixture
def gh() -> Iterator[GitHubEmulator]:
    with GitHubEmulator(token=GH_TOKEN) as emulator:
        yield emulator
        assert emulator.errors == []


# ---- admission: refused before a dollar is spent ---------------------------------------------

# worst cases: small 20m x $0.000975/s = $1.17; big 2h x $0.001525/s x (1 + 1 retry) = $21.96;
# huge 6h x $0.0014/s = $30.24 (over the per-job cap, so the budget is never asked about it)
SMALL = job("a-small", "gpu-l40s", budget={"max_duration": "20m"})
BIG = job("big", "gpu-h100", budget={"max_duration": "2h"}, retries=1)
HUGE = job("huge", "gpu-a100-large", budget={"max_duration": "6h"})
POLICY = {"max_cost_usd_per_job": 25, "monthly_budget_usd": 20}
BIG_WHY = (
    "monthly budget $20.00 would be exceeded: spent $0.00, running $0.00, "
    "this plan $1.17, this job $21.96"
)
# once a-small runs, its worst case counts as running, no longer as this plan's
BIG_WHY_RUNNING = (
    "monthly budget $20.00 would be exceeded: spent $0.00, running $1.17, "
    "this plan $0.00, this job $21.96"
)
HUGE_WHY = "worst case $30.24 is over max_cost_usd_per_job $25.00"


def test_plan_over_budget_is_refused_with_figures_and_apply_starts_only_what_fits(
    tmp_path: Path,
) -> None:
    with ReplicateEmulator(token=R8_TOKEN, queue_seconds=QUEUE) as replicate:
        repo = locked_repo(
            tmp_path, replicate, {"a-small": SMALL, "big": BIG, "huge": HUGE}, policy=POLICY
        )
        revisions = repo.revisions()
        month = month_of(time.time())

        table = cli(repo, "plan", code=1).stdout
        assert row(table, "a-small") == [
            "a-small",
            "submit (attempt 1)",
            "OutOfSync",
            "Missing",
            revisions["a-small"],
            "$1.17",
            "new revision",
        ]
        assert row(table, "big") == [
            "big",
            "-",
            "Blocked",
            "Missing",
            revisions["big"],
            "$21.96",
            BIG_WHY,
        ]
        assert row(table, "huge") == [
            "huge",
            "-",
            "Blocked",
            "Missing",
            revisions["huge"],
            "$30.24",
            HUGE_WHY,
        ]
        assert (
            f"Cost: new runs up to $1.17, running up to $0.00 more, spent in {month} $0.00 "
            "of the $20.00 monthly budget."
        ) in table

        plan = json.loads(cli(repo, "plan", "-o", "json", code=1).stdout)
        assert plan["money"] == {
            "month": month,
            "spent_usd": 0.0,
            "running_usd": 0.0,
            "new_usd": pytest.approx(1.17),
            "budget_usd": 20.0,
        }
        assert [(a["op"], a["job"]) for a in plan["actions"]] == [("submit", "a-small")]
        jobs = {j["job"]: (j["sync"], j["estimate_usd"], j["reason"]) for j in plan["jobs"]}
        assert jobs == {
            "a-small": ("OutOfSync", 1.17, "new revision"),
            "big": ("Blocked", 21.96, BIG_WHY),
            "huge": ("Blocked", 30.24, HUGE_WHY),
        }

        markdown = cli(repo, "plan", "-o", "markdown", code=1).stdout
        assert (
            f"| `big` | - | Blocked | Missing | `{revisions['big']}` | $21.96 | {BIG_WHY} |"
        ) in markdown
        assert f"| `huge` | - | Blocked | Missing | `{revisions['huge']}` | $30.24 | " in markdown

        # apply acts on what the policy admits and, like plan, exits 1 for what it refuses
        refused = cli(repo, "apply", code=1).stderr.splitlines()
        assert refused == [
            f"refused by policy: big: {BIG_WHY_RUNNING}",
            f"refused by policy: huge: {HUGE_WHY}",
        ]
        [training] = replicate.trainings
        assert training.destination == "acme/a-small"
        assert replicate.count("POST", CREATE_PATH) == 1
        assert set(repo.state()) == {"a-small"}

        plan = json.loads(cli(repo, "plan", "-o", "json", code=1).stdout)
        why = {j["job"]: j["reason"] for j in plan["jobs"]}
        assert why["big"] == BIG_WHY_RUNNING
        assert plan["actions"] == []


# ---- runtime: a run past max_duration is canceled, and GitHub hears why ---------------------

LIMIT = 4  # seconds: capped's max_duration; roomy's is an hour


def test_run_past_max_duration_is_canceled_and_the_commit_comment_says_why(
    tmp_path: Path, gh: GitHubEmulator
) -> None:
    # Two trainings that start together and run for 2h: only the one whose limit they pass is
    # canceled, so the limit itself is what decides.
    with realtime_emulator(1.0, run_seconds=7200) as replicate:
        repo = locked_repo(
            tmp_path,
            replicate,
            {
                "capped": job("capped", "gpu-h100", budget={"max_duration": f"{LIMIT}s"}),
                "roomy": job("roomy", "gpu-h100", budget={"max_duration": "1h"}),
            },
        )
        source = git(repo.root, "rev-parse", "HEAD")
        actions_apply(repo, gh, "push")
        assert len(replicate.trainings) == 2

        started = max(t.created_at for t in replicate.trainings) + 1.0
        time.sleep(max(0.0, started + LIMIT + 1.0 - time.time()))  # capped is past its limit
        ids = {t.destination.split("/")[1]: t.id for t in replicate.trainings}
        assert {t.status for t in replicate.trainings} == {"processing"}
        actions_apply(repo, gh, "schedule")  # cancels capped
        actions_apply(repo, gh, "schedule")  # sees it canceled: reports it, starts nothing
        assert replicate.count("POST", r"/cancel$") == 1
        assert replicate.count("POST", f"/trainings/{ids['capped']}/cancel$") == 1
        status = {t.id: t.status for t in replicate.trainings}  # no training started again
        assert status == {ids["capped"]: "canceled", ids["roomy"]: "processing"}

        [capped] = repo.state()["capped"].runs
        assert (capped.health.value, capped.reason) == ("Canceled", "max_duration exceeded")
        assert repo.state()["roomy"].runs[0].reason == ""
        table = cli(repo, "status").stdout
        capped_row, roomy_row = row(table, "capped"), row(table, "roomy")
        assert capped_row[1:3] == ["Synced", "Canceled"]
        assert capped_row[-1] == "max_duration exceeded"
        assert roomy_row[1:3] == ["Synced", "Running"] and "exceeded" not in " ".join(roomy_row)

        billed = replicate.training_json(ids["capped"])["metrics"]["predict_time"]
        assert LIMIT < billed < 120  # the emulator agrees: it ran past the limit, not for 2h
        [comment] = run_comments(gh, source, pushed=[{"capped", "roomy"}])
        body = comment["body"]
        assert body.startswith(f"<!-- trainops:run:capped:{ids['capped']}:Canceled -->")
        assert "**Reason:** max_duration exceeded" in body
        assert f"| cost | ${billed * PRICES['gpu-h100']:,.2f} |" in body
        [latest, *_] = [s for s in gh.statuses(source) if s["context"] == "trainops/capped"]
        assert latest["state"] == "error" and "max_duration exceeded" in latest["description"]


# ---- spend: what trainops reports is what the provider billed ----------------------------------

RUN_SECONDS = {1000: 100.0, 2000: 250.0, 1500: 400.0}  # by input steps


def test_cost_equals_predict_time_times_price_of_the_emulators_trainings(tmp_path: Path) -> None:
    durations = lambda i: (QUEUE, RUN_SECONDS[i["steps"]])  # noqa: E731
    with ReplicateEmulator(token=R8_TOKEN, durations=durations) as replicate:
        hardware = {"portraits": "gpu-h100", "captions": "gpu-l40s", "styles": "gpu-h100"}
        repo = locked_repo(
            tmp_path,
            replicate,
            {
                "portraits": job(
                    "portraits",
                    "gpu-h100",
                    steps=1000,
                    labels={"team": "vision"},
                    budget={"max_duration": "1h"},
                ),
                "captions": job(
                    "captions",
                    "gpu-l40s",
                    steps=2000,
                    labels={"team": "nlp"},
                    budget={"max_duration": "1h"},
                ),
                "styles": job(
                    "styles",
                    "gpu-h100",
                    steps=1500,
                    labels={"team": "vision"},
                    budget={"max_duration": "1h"},
                ),
            },
            # one price set in trainops.yaml: the other hardware keeps its default price
            prices_usd_per_second={"gpu-t4": 0.0003},
        )
        cli(repo, "apply")
        replicate.advance(1800)
        cli(repo, "apply")

        billed: dict[str, float] = {}
        completed = set()
        for training in replicate.trainings:
            data = replicate.training_json(training.id)
            assert data["status"] == "succeeded"
            name = training.destination.split("/")[1]
            billed[name] = data["metrics"]["predict_time"] * PRICES[hardware[name]]
            completed.add(month_of(datetime.fromisoformat(data["completed_at"]).timestamp()))
        [month] = completed
        assert sorted(billed) == ["captions", "portraits", "styles"]
        total = sum(billed.values())

        report = json.loads(cli(repo, "cost", "--month", month, "-o", "json").stdout)
        assert report["total_usd"] == pytest.approx(total, abs=1e-6)
        assert {g["group"]: (g["runs"], g["usd"]) for g in report["groups"]} == {
            name: (1, pytest.approx(usd, abs=1e-6)) for name, usd in billed.items()
        }
        table = cli(repo, "cost", "--month", month, "--by", "team").stdout
        assert row(table, "vision") == [
            "vision",
            "2",
            f"${billed['portraits'] + billed['styles']:,.2f}",
        ]
        assert row(table, "nlp") == ["nlp", "1", f"${billed['captions']:,.2f}"]
        assert f"Total for {month}: ${total:,.2f}" in table

        status = cli(repo, "status").stdout
        assert row(status, "styles")[1:3] == ["Synced", "Succeeded"]
        assert row(status, "styles")[-1] == f"${billed['styles']:,.2f}"
        if month == month_of(time.time()):  # not so only when a month began mid-test
            assert f"spent in {month} ${total:,.2f}." in status
