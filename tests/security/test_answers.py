"""What others answer is data: a provider's malformed answer, a job's missing output, a comment
someone else wrote. None of them may crash trainops, hang it, or be taken for trainops' own.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from tests.emulators.github import GitHubEmulator
from tests.emulators.replicate import FLUX_LORA_VERSION, ReplicateEmulator
from tests.support.workspace import UserRepo, explain, manifest
from trainops.errors import ProviderError
from trainops.github.plan_report import PLAN_MARKER, publish_plan
from trainops.github.run_report import run_marker, run_reporter
from trainops.manifest import Config
from trainops.providers.replicate import ReplicateProvider
from trainops.state.model import Health, Run

PLAN = "### trainops plan\n\n**Plan: 1 to submit.**\n"


def test_a_reference_to_an_output_never_produced_fails_the_job_without_hanging(
    tmp_path: Path,
) -> None:
    down = manifest("down", input={"base": "${{ jobs.up.output.nope }}"})
    repo = UserRepo.create(tmp_path, {"up": manifest("up"), "down": down})
    try:
        result = repo.trainops("apply", "--wait", "--interval", "0.2", timeout=60)
    finally:
        repo.cleanup()
    assert result.returncode == 1, explain(result)
    assert "jobs.up.output.nope does not exist: the run of up produced weights" in result.stderr
    assert repo.run_ids() == [f"up-{repo.revisions()['up']}-1"]


def test_a_training_answer_without_an_id_is_a_provider_error() -> None:
    with ReplicateEmulator(queue_seconds=5, run_seconds=100) as emu:
        trainer = f"ostris/flux-dev-lora-trainer:{FLUX_LORA_VERSION}"
        run_id = emu.create_training(trainer, "acme/portraits", {"steps": 1})
        provider = ReplicateProvider(
            token_env="T",
            environ={"T": emu.token, "REPLICATE_BASE_URL": emu.base_url},
            sleep=lambda _s: None,
            rng=random.Random(0),
        )
        # The list and the training itself answer without `id`.
        emu.inject("no_id", path=r"^/v1/trainings", count=None)
        with provider, pytest.raises(ProviderError, match="without a valid id"):
            provider.observe([run_id])


def test_someone_elses_comment_with_the_marker_is_never_edited(tmp_path: Path) -> None:
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"pull_request": {"number": 7, "head": {"sha": "c" * 40}}}))
    with GitHubEmulator(token="ghs_" + "StickyT0ken" * 3) as emu:
        env = {
            **emu.env(),
            "GITHUB_REPOSITORY": "acme/models",
            "GITHUB_EVENT_NAME": "pull_request",
            "GITHUB_EVENT_PATH": str(event),
            "TRAINOPS_GITHUB_WRITE_INTERVAL": "0",
        }
        bait = emu.add_issue_comment(
            "acme", "models", 7, f"{PLAN_MARKER}\nfake plan", login="mallory"
        )
        assert publish_plan(PLAN, False, [], env=env) == []
        assert publish_plan(PLAN + "\nagain", False, [], env=env) == []
        comments = emu.issue_comments("acme", "models", 7)
    assert [(c["user"]["login"], c["body"].startswith(PLAN_MARKER)) for c in comments] == [
        ("mallory", True),
        ("github-actions[bot]", True),
    ]
    assert comments[0]["body"] == bait["body"]  # untouched
    assert "again" in comments[1]["body"]  # ours, edited in place


def test_someone_elses_commit_comment_with_a_run_marker_does_not_silence_the_report(
    tmp_path: Path,
) -> None:
    sha = "e" * 40
    run = Run(
        revision="3f2c9a1b7d4e",
        attempt=1,
        provider="local",
        input_hash="0" * 16,
        created_at=0.0,
        source_commit=sha,
        run_id="tiny-3f2c9a1b7d4e-1",
        health=Health.FAILED,
        error="boom",
    )
    with GitHubEmulator(token="ghs_" + "ReportT0ken" * 3) as emu:
        env = {**emu.env(), "GITHUB_REPOSITORY": "acme/models", "GITHUB_EVENT_NAME": "push"}
        emu.add_commit_comment("acme", "models", sha, run_marker("tiny", run) + "\nall fine!")
        reporter = run_reporter(Config(), lambda _n: None, env=env)
        assert reporter is not None
        reporter.client.write_interval = 0
        reporter.report("tiny", run, "")
        reporter.close()
        comments = emu.commit_comments(sha)
    assert [c["user"]["login"] for c in comments] == ["octocat", "github-actions[bot]"]
    assert "boom" in comments[1]["body"]


def test_a_user_tokens_sticky_comment_is_its_own_login(tmp_path: Path) -> None:
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"pull_request": {"number": 7, "head": {"sha": "c" * 40}}}))
    with GitHubEmulator(token="ghp_" + "UserT0ken" * 4, login="octocat") as emu:
        env = {
            **emu.env(),
            "GITHUB_REPOSITORY": "acme/models",
            "GITHUB_EVENT_NAME": "pull_request",
            "GITHUB_EVENT_PATH": str(event),
            "TRAINOPS_GITHUB_WRITE_INTERVAL": "0",
        }
        emu.add_issue_comment(
            "acme", "models", 7, f"{PLAN_MARKER}\nold", login="github-actions[bot]"
        )
        publish_plan(PLAN, False, [], env=env)
        publish_plan(PLAN + "\nagain", False, [], env=env)
        comments = emu.issue_comments("acme", "models", 7)
    assert [c["user"]["login"] for c in comments] == ["github-actions[bot]", "octocat"]
    assert comments[0]["body"].endswith("old") and "again" in comments[1]["body"]


@pytest.mark.parametrize("login", ["github-actions[bot]", "trainops-ci[bot]"])
def test_an_installation_tokens_sticky_comment_is_its_own_and_a_forged_one_is_not(
    tmp_path: Path, login: str
) -> None:
    # GET /user answers 403 to the Actions token and to an App's installation token, which
    # posts as <app-slug>[bot] (shared/ref/README.md "Checked against the real clients"): the
    # plan comment is still found again, and the PR author's copy of the marker is never
    # edited or taken as trainops's.
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"pull_request": {"number": 7, "head": {"sha": "c" * 40}}}))
    with GitHubEmulator(token="ghs_" + "Inst4llation" * 3, login=login) as emu:
        env = {
            **emu.env(),
            "GITHUB_REPOSITORY": "acme/models",
            "GITHUB_EVENT_NAME": "pull_request",
            "GITHUB_EVENT_PATH": str(event),
            "TRAINOPS_GITHUB_WRITE_INTERVAL": "0",
        }
        emu.add_issue_comment("acme", "models", 7, f"{PLAN_MARKER}\nforged", login="mallory")
        publish_plan(PLAN, False, [], env=env)  # a first run: nothing of its own yet
        publish_plan(PLAN + "\nagain", False, [], env=env)  # another process, same token
        publish_plan(PLAN + "\nthird", False, [], env=env)
        comments = emu.issue_comments("acme", "models", 7)
    assert [c["user"]["login"] for c in comments] == ["mallory", login]
    assert comments[0]["body"].endswith("forged") and "third" in comments[1]["body"]
    assert comments[1]["performed_via_github_app"]["slug"] == login.removesuffix("[bot]")
    assert (comments[1]["user"]["type"], comments[0]["performed_via_github_app"]) == ("Bot", None)


def test_short_values_are_not_secrets_and_do_not_shred_output() -> None:
    from trainops.scrub import MIN_SECRET_CHARS, Scrubber

    scrub = Scrubber.from_env({"GITHUB_TOKEN": "abc", "HF_TOKEN": "hf-value-that-is-long"})
    assert MIN_SECRET_CHARS == 8
    assert scrub("abcdef: hf-value-that-is-long") == "abcdef: ***"
    assert scrub('{"e": "hf-value-that-is-long"}') == '{"e": "***"}'
    quoted = Scrubber(['pa"ss\\word-long'])
    assert quoted(json.dumps({"e": 'pa"ss\\word-long'})) == '{"e": "***"}'
    assert Scrubber()("https://user:s3cr3t@example.com/x") == "https://***@example.com/x"
