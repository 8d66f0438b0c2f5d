"""A sweep as a user meets it (DESIGN §21): one manifest with a matrix of 4 local members, its
`select` and its `promote` to an S3 alias (moto's server), a job chained after the set reading
the winner's weights, the set's one commit comment (GitHub is the loopback emulator), `trace` of
the promoted file naming the set, the member and its values; `stop_when` stopping a losing member
that `apply --wait` does not count as a failure; and `apply` SIGKILLed at step boundaries over a
set, after which every member trained exactly once.

`TRAINOPS_SWEEP=full` kills at every step boundary (default: three, tests/support/sweep.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.test_crash_safety import (
    CRASHPOINTS,
    assert_exactly_once,
    assert_submitted_at_most_once,
    settle,
)
from tests.e2e.test_github_flow import GH_TOKEN, Actions
from tests.emulators.github import GitHubEmulator
from tests.emulators.s3 import MotoS3
from tests.support import sweep as kills
from tests.support.reviewed import run_comments
from tests.support.workspace import UserRepo, explain, group_alive, manifest

TRAIN = """\
import json, os, time
p = json.load(open(os.environ["TRAINOPS_INPUT"]))
out, run = os.environ["TRAINOPS_OUTPUT_DIR"], os.environ["TRAINOPS_RUN_ID"]
if p.get("ledger"):
    with open(p["ledger"], "a") as f:
        f.write(run + "\\n")
loss = p["lr"] * 1000 / p["rank"] if "rank" in p else p.get("loss")
if loss is not None and loss > p.get("hold_above", 1e9):
    # a losing member: its metric so far, then it trains on until stopped (or 120 s)
    with open(os.path.join(out, "metrics.json"), "w") as f:
        json.dump({"eval_loss": loss}, f)
    deadline = time.monotonic() + 120
    while not os.path.exists(p["hold"]) and time.monotonic() < deadline:
        time.sleep(0.05)
weights = "chained from " + open(p["from"]).read() if "from" in p else "weights of " + run
with open(os.path.join(out, "weights.bin"), "w") as f:
    f.write(weights)
if loss is not None:
    with open(os.path.join(out, "metrics.json"), "w") as f:
        json.dump({"eval_loss": loss}, f)
"""
ALIAS = "s3://models/prod/"


def sweep_manifest(matrix: dict[str, Any], input: dict[str, Any], **spec: Any) -> str:
    """The set `lora`: `train_sweep.py` over `matrix`, selecting the lowest eval_loss."""
    doc = yaml.safe_load(manifest("lora", input, command=["python", "train_sweep.py"], **spec))
    doc["spec"]["matrix"] = matrix
    doc["spec"].setdefault("sweep", {})["select"] = {"metric": "eval_loss", "goal": "minimize"}
    return yaml.safe_dump(doc, sort_keys=False)


GRID = {"lr": [1.0e-4, 3.0e-4], "rank": [8, 16]}  # eval_loss = lr * 1000 / rank: (1e-4, 16)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[UserRepo, Actions, MotoS3]]:
    with MotoS3() as s3, GitHubEmulator(token=GH_TOKEN) as gh:
        s3.client().create_bucket(Bucket="models")
        repo = UserRepo.create(tmp_path, {})
        repo.env.update(s3.env())
        repo.write("train_sweep.py", TRAIN)
        yield repo, Actions(repo, gh, tmp_path), s3
        repo.cleanup()
        assert gh.errors == []


@pytest.fixture
def repo(tmp_path: Path) -> Iterator[UserRepo]:
    made = UserRepo.create(tmp_path, {})
    made.write("train_sweep.py", TRAIN)
    yield made
    made.cleanup()


def members(repo: UserRepo) -> dict[str, dict[str, Any]]:
    """Each member's name -> its values, as validation expands the manifest at HEAD."""
    from trainops.workspace import Workspace

    targets = Workspace.open(repo.root, ref="HEAD").desired().targets
    return {n: dict(t.job.member.values) for n, t in targets.items() if t.job.member is not None}


@pytest.mark.timeout(300)  # a dozen passes of apply --wait: slow on a loaded machine
def test_a_sweep_promotes_its_winner_and_the_job_after_it_takes_the_winner_s_weights(
    world: tuple[UserRepo, Actions, MotoS3], tmp_path: Path
) -> None:
    repo, actions, s3 = world
    spec = {
        "deliver": [{"s3": {"uri": "s3://models/lora/"}}],
        "promote": {"when": {"eval_loss": "< 0.5"}, "to": [{"s3": {"uri": ALIAS}}]},
    }
    inputs = {"lr": "${{ matrix.lr }}", "rank": "${{ matrix.rank }}"}
    repo.write_job("lora", sweep_manifest(GRID, inputs, **spec))
    chain = {"from": "${{ jobs.lora.output.weights }}"}
    repo.write_job("pick", manifest("pick", chain, command=["python", "train_sweep.py"]))
    sha = repo.commit("a sweep of 4 and a job after it")
    waited = actions.run(
        *("apply", "--github", "--wait", "--interval", "0.2", "--timeout", "200"),
        event="push",
        payload={"ref": "refs/heads/main"},
        sha=sha,
        timeout=240,
    )
    assert waited.returncode == 0, explain(waited)

    grid = members(repo)
    assert sorted(grid.values(), key=lambda v: (v["lr"], v["rank"])) == [
        {"lr": 1.0e-4, "rank": 8},
        {"lr": 1.0e-4, "rank": 16},
        {"lr": 3.0e-4, "rank": 8},
        {"lr": 3.0e-4, "rank": 16},
    ]
    winner = next(n for n, v in grid.items() if v == {"lr": 1.0e-4, "rank": 16})
    state = repo.state()
    runs = {n: [r for r in state[n].runs if r.run_id] for n in [*grid, "pick"]}
    assert {n: [r.health.value for r in rs] for n, rs in runs.items()} == {
        n: ["Succeeded"] for n in [*grid, "pick"]
    }
    won = runs[winner][0]
    assert won.promotions == {f"s3:{ALIAS}": "done"}
    assert all(rs[0].promotions == {} for n, rs in runs.items() if n != winner)
    alias = s3.client().get_object(Bucket="models", Key="prod/trainops.json")["Body"].read()
    assert json.loads(alias)["run_id"] == won.run_id
    weights = s3.client().get_object(Bucket="models", Key="prod/weights.bin")["Body"].read()
    assert weights == f"weights of {won.run_id}".encode()
    chained = Path(runs["pick"][0].outputs["weights"]).read_text()
    assert chained == f"chained from weights of {won.run_id}"

    # one comment for the set, one for the job after it; no member has one of its own (and,
    # pushed straight to main, one list per pass of what no reviewed plan showed: DESIGN §20)
    told = run_comments(actions.emu, sha, pushed=[set(grid), {"pick"}])
    comments = [c["body"] for c in told]
    [table] = [c for c in comments if c.startswith("<!-- trainops:set:lora:")]
    assert len(comments) == 2 and any(c.startswith("<!-- trainops:run:pick:") for c in comments)
    assert f"**Winner: `{winner}`** (eval_loss 0.00625, minimize), with lr `0.0001`, rank `16`" in (
        table
    )
    assert f"| **winner** | `{winner}` | `0.0001` | `16` | Succeeded | 0.00625 |" in table
    assert "**4 members · 4 succeeded · cost $0.00**" in table
    assert f"- `s3:{ALIAS}`: moved to the winner's run" in table
    for name in grid:
        [(status, _description), *_] = actions.statuses(sha, f"trainops/{name}")
        assert status == "success"

    # trace of the promoted file: the set, the member and its values
    promoted = tmp_path / "promoted.bin"
    promoted.write_bytes(weights)
    traced = repo.trainops("trace", str(promoted), "--output", "json")
    assert traced.returncode == 0, explain(traced)
    [found] = json.loads(traced.stdout)["runs"]
    assert (found["job"], found["run_id"]) == (winner, won.run_id)
    assert found["sweep"] == {"set": "lora", "member": winner, "values": grid[winner]}
    text = repo.trainops("trace", won.run_id or "")
    assert text.returncode == 0, explain(text)
    assert f"{winner} (matched by run id)\n  sweep: member of set lora\n" in text.stdout
    assert "  value lr: 0.0001\n  value rank: 16\n" in text.stdout

    again = actions.apply()  # settled: nothing trains, moves or is posted twice
    assert again.returncode == 0, explain(again)
    assert (
        len(repo.run_ids()) == 5
        and run_comments(actions.emu, sha, pushed=[set(grid), {"pick"}]) == told
    )
    actions.assert_no_secrets()


@pytest.mark.timeout(240)
def test_stop_when_stops_a_member_already_worse_and_apply_wait_still_succeeds(
    repo: UserRepo,
) -> None:
    """The member of loss 0.9 reports it in metrics.json and trains on; the one of 0.1 has
    succeeded: 0.9 is worse by more than 0.2, so it is canceled, and `--wait` exits 0."""
    inputs = {"loss": "${{ matrix.loss }}", "hold": repo.hold_path("loser"), "hold_above": 0.5}
    inputs["ledger"] = repo.ledger_path()
    stop = {"stop_when": {"metric": "eval_loss", "worse_than_best_by": 0.2}}
    repo.write_job("lora", sweep_manifest({"loss": [0.1, 0.9]}, inputs, sweep=stop))
    repo.commit("a sweep with stop_when")
    grid = members(repo)
    best = next(n for n, v in grid.items() if v == {"loss": 0.1})
    loser = next(n for n, v in grid.items() if v == {"loss": 0.9})

    waited = repo.trainops("apply", "--wait", "--interval", "0.1", "--timeout", "100", timeout=150)
    assert waited.returncode == 0, explain(waited)
    assert "error:" not in waited.stderr, explain(waited)
    state = repo.state()
    [stopped] = [r for r in state[loser].runs if r.run_id]
    assert stopped.health.value == "Canceled"
    assert stopped.reason == (
        f"stopped early: eval_loss 0.9 so far is worse than 0.1 of {best} by more than 0.2"
    )
    assert repo.status(stopped.run_id or "")["status"] == "canceled"
    assert not group_alive(repo.status(stopped.run_id or "")["pgid"])
    status = repo.trainops("status", "--output", "json")
    rows = {r["job"]: r for r in json.loads(status.stdout)["jobs"]}
    assert rows[best]["reason"].startswith("winner of lora (eval_loss 0.1)")

    again = repo.trainops("apply", "--wait", "--interval", "0.1", "--timeout", "20", timeout=90)
    assert again.returncode == 0, explain(again)
    assert sorted(repo.ledger()) == sorted(repo.run_ids())  # each member started once
    assert len(repo.run_ids()) == 2  # the stopped member is never resubmitted


# ---- SIGKILL over a set's apply ----------------------------------------------------------------

# every step boundary an apply that only submits meets (it cancels nothing: no after-cancel)
EVERY = [p for p in CRASHPOINTS if p != "after-cancel"]
POINTS = kills.points(EVERY, ["after-intents", "after-submit", "before-push#2"])


@pytest.mark.timeout(240)
@pytest.mark.parametrize("point", POINTS)
def test_apply_killed_over_a_set_then_applied_again_trains_each_member_once(
    repo: UserRepo, point: str
) -> None:
    """An apply submitting a set of 4 (two at a time: max_parallel 2) killed by SIGKILL at
    `point`; `apply --wait` until settled: one run per member and attempt, every member
    trained exactly once, a lost intent's next attempt only where nothing reached the provider."""
    inputs = {"lr": "${{ matrix.lr }}", "rank": "${{ matrix.rank }}", "ledger": repo.ledger_path()}
    repo.write_job("lora", sweep_manifest(GRID, inputs, sweep={"max_parallel": 2}))
    repo.commit("a sweep of 4")
    killed = repo.trainops("apply", env={"TRAINOPS_CRASHPOINT": point})
    assert killed.returncode == -9, f"apply was not killed at {point}\n{explain(killed)}"

    recovered = settle(repo, timeout=120)
    assert_submitted_at_most_once(killed.stdout, recovered.stdout)
    counts = assert_exactly_once(repo)
    assert counts["trainings"] == 4
    # two intents recorded per pass (max_parallel 2): killed before the first submit, both are
    # lost; after it, one; once the run ids are recorded, none
    lost = {"after-intents": 2, "after-submit": 1}.get(point, 0)
    assert counts["lost_intents"] == lost
    state = repo.state()
    assert sorted(state) == sorted(members(repo))
    assert all(
        [r.health.value for r in s.runs if r.run_id] == ["Succeeded"] for s in state.values()
    )
