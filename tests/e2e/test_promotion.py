"""Promotion as a user meets it (DESIGN §19): a local job whose `spec.promote` moves the Hub
`prod` branch (the loopback Hub emulator) and an S3 alias prefix (moto's server) only when its
eval_loss passes. A worse second revision leaves both on the first, and the commit comment on
its source commit says why; a better third moves both; `git revert` of the third moves them back
to the first without a new training. GitHub is the loopback emulator; git is a real repository.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_github_flow import GH_TOKEN, Actions
from tests.emulators.github import GitHubEmulator
from tests.emulators.huggingface import HubEmulator
from tests.emulators.s3 import MotoS3
from tests.support.gitrepo import git
from tests.support.reviewed import run_comments
from tests.support.workspace import UserRepo, explain, manifest

TRAIN = """\
import json, os
params = json.load(open(os.environ["TRAINOPS_INPUT"]))
out = os.environ["TRAINOPS_OUTPUT_DIR"]
with open(os.path.join(out, "weights.bin"), "w") as f:
    f.write("weights of " + os.environ["TRAINOPS_RUN_ID"])
with open(os.path.join(out, "metrics.json"), "w") as f:
    json.dump({"eval_loss": params["loss"]}, f)
"""
HUB_REPO = "acme/m"
ALIAS = "s3://models/prod/"


def job(loss: float) -> str:
    return manifest(
        "m",
        input={"loss": loss},
        command=["python", "train_m.py"],
        deliver=[{"huggingface": {"repo": HUB_REPO}}, {"s3": {"uri": "s3://models/m/"}}],
        promote={
            "when": {"eval_loss": "< 0.25"},
            "to": [{"huggingface": {"repo": HUB_REPO, "ref": "prod"}}, {"s3": {"uri": ALIAS}}],
        },
    )


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[UserRepo, Actions, MotoS3, HubEmulator]]:
    with (
        MotoS3() as s3,
        HubEmulator(namespaces={"acme"}) as hub,
        GitHubEmulator(token=GH_TOKEN) as gh,
    ):
        s3.client().create_bucket(Bucket="models")
        repo = UserRepo.create(tmp_path, {})
        repo.env.update({**s3.env(), **hub.env(), "HF_HOME": str(tmp_path / "hf-home")})
        repo.write("train_m.py", TRAIN)
        yield repo, Actions(repo, gh, tmp_path), s3, hub
        repo.cleanup()
        assert gh.errors == [] and hub.errors == []


def converge(repo: UserRepo, actions: Actions) -> None:
    """Apply until the job's runs are terminal, delivered and promoted (apply --wait's work,
    in steps so the test sees each)."""
    first = actions.apply(event="push")
    assert first.returncode == 0, explain(first)
    repo.wait_all_terminal()
    again = actions.apply()
    assert again.returncode == 0, explain(again)


def alias_run(s3: MotoS3) -> str:
    body = s3.client().get_object(Bucket="models", Key="prod/trainops.json")["Body"].read()
    return str(json.loads(body)["run_id"])


def hub_run(hub: HubEmulator, commit: str | None) -> str:
    """The run whose delivery made `commit` (its trainops.json names it)."""
    for c in hub.commits(HUB_REPO):
        if c.oid == commit:
            return c.summary.rsplit("(run ", 1)[1].rstrip(")")
    return ""


def traced(repo: UserRepo, ref: str) -> dict[str, Any]:
    result = repo.trainops("trace", ref, "--output", "json")
    assert result.returncode == 0, explain(result)
    [found] = json.loads(result.stdout)["runs"]
    return dict(found)


def rows(repo: UserRepo) -> dict[str, Any]:
    status = repo.trainops("status", "--output", "json")
    assert status.returncode == 0, explain(status)
    return {r["job"]: r for r in json.loads(status.stdout)["jobs"]}


def test_aliases_move_only_to_runs_that_pass_and_a_revert_moves_them_back(
    world: tuple[UserRepo, Actions, MotoS3, HubEmulator],
) -> None:
    repo, actions, s3, hub = world
    repo.write_job("m", job(0.2))
    repo.commit("m: first revision")
    converge(repo, actions)
    [first] = repo.run_ids()
    assert hub_run(hub, hub.ref(HUB_REPO, "prod")) == first
    assert alias_run(s3) == first
    assert rows(repo)["m"]["promotions"] == {
        f"huggingface:{HUB_REPO}@prod": "done",
        f"s3:{ALIAS}": "done",
    }
    # trace of a Hub revision: by the commit the delivery made, and by the branch (resolved at
    # the Hub, read-only)
    commit = hub.ref(HUB_REPO, "prod") or ""
    by_commit = traced(repo, f"{HUB_REPO}@{commit[:10]}")
    assert (by_commit["run_id"], by_commit["matched"]) == (first, "Hub revision (delivery)")
    assert by_commit["source_commit"] == repo.state()["m"].runs[-1].source_commit != ""
    by_branch = traced(repo, f"{HUB_REPO}@prod")
    assert by_branch["run_id"] == first
    assert by_branch["matched"] == f"Hub revision (prod -> {commit[:12]})"
    unknown = repo.trainops("trace", f"{HUB_REPO}@nope")
    assert unknown.returncode == 2 and "Traceback" not in unknown.stderr, explain(unknown)

    # A worse second revision: trained and delivered, but neither alias moves.
    repo.write_job("m", job(0.31))
    second_commit = repo.commit("m: a worse revision")
    converge(repo, actions)
    second = next(r for r in repo.run_ids() if r != first)
    assert hub_run(hub, hub.ref(HUB_REPO, "prod")) == first
    assert alias_run(s3) == first
    row = rows(repo)["m"]
    held = row["promotions"][f"huggingface:{HUB_REPO}@prod"]
    assert held.startswith("held: eval_loss 0.31 is not < 0.25")
    assert f"the alias stays on run {first}" in held
    assert "promotion" in row["reason"] and "eval_loss 0.31 is not < 0.25" in row["reason"]
    [comment] = run_comments(actions.emu, second_commit, pushed=[{"m"}])
    assert "**Promotion**" in comment["body"]
    # markdown-escaped: `<` would open an HTML tag
    assert "held, the alias did not move: eval_loss 0.31 is not \\< 0.25" in comment["body"]
    [(state, description), *_] = actions.statuses(second_commit, "trainops/m")
    assert state == "success" and "promotion held: eval_loss 0.31 is not < 0.25" in description

    # A better third revision moves both.
    repo.write_job("m", job(0.1))
    repo.commit("m: a better revision")
    converge(repo, actions)
    third = next(r for r in repo.run_ids() if r not in (first, second))
    assert hub_run(hub, hub.ref(HUB_REPO, "prod")) == third
    assert alias_run(s3) == third
    state_runs = {r.run_id: r for r in repo.state()["m"].runs}
    assert state_runs[first].promotions[f"s3:{ALIAS}"] == f"superseded by run {third}"

    # git revert of the third: the job is back at the second revision, which already ran
    # (and failed the gate): both aliases go back to the first run, and nothing trains.
    git(repo.root, "revert", "--no-edit", "HEAD")
    git(repo.root, "push", "--quiet", "origin", "HEAD:main")
    plan = repo.trainops("plan")
    assert plan.returncode == 0, explain(plan)
    assert f"promote huggingface:{HUB_REPO}@prod" in plan.stdout
    back = actions.apply(event="push")
    assert back.returncode == 0, explain(back)
    revert = git(repo.root, "rev-parse", "HEAD")
    [told] = run_comments(actions.emu, revert)  # on the commit that moved them back
    assert "`m` promotion" in told["body"]
    assert f"huggingface:{HUB_REPO}@prod: held: eval_loss 0.31 is not \\< 0.25" in told["body"]
    assert f"the alias stays on run {first}" in told["body"]
    assert len(repo.run_ids()) == 3  # no new training
    assert hub_run(hub, hub.ref(HUB_REPO, "prod")) == first
    assert alias_run(s3) == first
    objects = s3.client().list_objects_v2(Bucket="models", Prefix="prod/")["Contents"]
    assert sorted(o["Key"] for o in objects) == [
        "prod/metrics.json",
        "prod/trainops.json",
        "prod/weights.bin",
    ]
    weights = s3.client().get_object(Bucket="models", Key="prod/weights.bin")["Body"].read()
    assert weights == f"weights of {first}".encode()
    # moves at the Hub: first, third, first again (the second never moved it)
    assert [hub_run(hub, c) for c in hub.ref_moves(HUB_REPO, "prod")] == [first, third, first]

    again = actions.apply()
    assert again.returncode == 0, explain(again)
    assert len(hub.ref_moves(HUB_REPO, "prod")) == 3  # settled: nothing moves twice
    assert traced(repo, f"{HUB_REPO}@prod")["run_id"] == first
    actions.assert_no_secrets()


def test_a_failing_alias_is_recorded_and_does_not_hold_apply_wait(
    world: tuple[UserRepo, Actions, MotoS3, HubEmulator],
) -> None:
    repo, _actions, _s3, hub = world
    repo.write_job("m", job(0.2))
    repo.commit("m")
    hub.fail("branch-create", 500, times=100)
    waited = repo.trainops("apply", "--wait", "--interval", "0.2", "--timeout", "60")
    assert waited.returncode == 3, explain(waited)  # the failed move, not a timeout
    assert "gave up waiting" not in waited.stderr
    row = rows(repo)["m"]
    failed = row["promotions"][f"huggingface:{HUB_REPO}@prod"]
    assert failed.startswith("failed: moving the branch prod of acme/m failed: HTTP 500")
    assert row["promotions"][f"s3:{ALIAS}"] == "done"  # the other alias is not held back
    assert "promotion to" in row["reason"]
