"""Golden tests of what trainops posts to GitHub: status descriptions, comments, spec diffs.

Exact strings on purpose: these texts are what users read on their commits and pull requests.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from tests.support import factories as f
from trainops.errors import Problem
from trainops.github.client import STATUS_DESCRIPTION_MAX_CHARS
from trainops.github.context import ActionsContext
from trainops.github.plan_report import plan_comment, plan_description
from trainops.github.run_report import run_comment, run_status
from trainops.github.specdiff import diffs_markdown, env_changes, spec_changes, spec_diffs
from trainops.scrub import Scrubber
from trainops.state.model import Health, Run

VERSION = "acme/flux-portraits:5c7d5dc6dd8bf75c1acaa8565735e7986bc5b66206b55cca93cb72c9bf15ccaa"
RUN = Run(
    revision="3f2c9a1b7d4e",
    attempt=1,
    provider="replicate",
    input_hash="h",
    created_at=1704067200.0,
    source_commit="a" * 40,
    run_id="tr-123",
    health=Health.SUCCEEDED,
    started_at=1704067260.0,
    completed_at=1704067983.0,
    cost_usd=1.1025,
    outputs={"version": VERSION, "weights": "https://r.test/w.tar"},
    snapshot="snapshots/portraits/3f2c9a1b7d4e.yaml",
)
ENDED = {"outputs": {}, "cost_usd": 0.4}


@pytest.mark.parametrize(
    ("run", "expected"),
    [
        pytest.param(RUN, ("success", f"Succeeded in 12m3s · $1.10 · {VERSION}"), id="succeeded"),
        pytest.param(
            replace(RUN, health=Health.FAILED, error="CUDA out of memory\n  at step 3", **ENDED),
            ("failure", "Failed after 12m3s · $0.40 · CUDA out of memory at step 3"),
            id="failed",
        ),
        pytest.param(
            replace(
                RUN, health=Health.CANCELED, reason="replaced by revision 9a9a9a9a9a9a", **ENDED
            ),
            ("error", "Canceled after 12m3s · $0.40 · replaced by revision 9a9a9a9a9a9a"),
            id="canceled",
        ),
        pytest.param(
            replace(RUN, health=Health.RUNNING, completed_at=None, **ENDED),
            ("pending", "Running since 2024-01-01 00:01 UTC · $0.40 so far"),
            id="running",
        ),
        pytest.param(
            replace(
                RUN,
                health=Health.PENDING,
                started_at=None,
                completed_at=None,
                cost_usd=None,
                outputs={},
            ),
            ("pending", "Pending: waiting to start"),
            id="pending",
        ),
    ],
)
def test_run_status_states_and_descriptions(run: Run, expected: tuple[str, str]) -> None:
    assert run_status(run) == expected


def test_run_status_description_never_exceeds_github_limit() -> None:
    run = replace(RUN, health=Health.FAILED, error="x" * 500)
    state, description = run_status(run)
    assert (state, len(description)) == ("failure", STATUS_DESCRIPTION_MAX_CHARS)
    assert description.endswith("…")


def test_run_comment_golden() -> None:
    log = "step 1\nstep 2 ```code```\ndone\n"
    body = run_comment("portraits", RUN, log, run_url="https://github.com/acme/m/actions/runs/42")
    assert (
        body
        == f"""\
<!-- trainops:run:portraits:tr-123:Succeeded -->
### trainops: `portraits` succeeded

| | |
|---|---|
| run | `tr-123` (replicate) |
| revision | `3f2c9a1b7d4e`, attempt 1 |
| duration | 12m3s |
| cost | $1.10 |
| produced version | `{VERSION}` |
| snapshot | `snapshots/portraits/3f2c9a1b7d4e.yaml` on branch `trainops/state` |
| reported by | [workflow run](https://github.com/acme/m/actions/runs/42) |

**Outputs**

- `weights`: `https://r.test/w.tar`

**Last 3 log line(s)**

````text
step 1
step 2 ```code```
done
````
"""
    )


def test_run_comment_of_a_failure_keeps_the_log_end_and_escapes_the_error() -> None:
    run = replace(
        RUN,
        health=Health.FAILED,
        error="bad | <b>input</b>",
        outputs={},
        cost_usd=None,
        snapshot="",
    )
    log = "\n".join(f"line {i}" for i in range(100))
    body = run_comment("portraits", run, log)
    assert "**Error:** bad \\| \\<b\\>input\\</b\\>" in body  # shown as written, never HTML
    assert "| cost | unknown |" in body
    assert "**Last 30 log line(s)**" in body
    assert "line 70\n" in body and "line 99\n```" in body and "line 69\n" not in body


def test_plan_comment_and_description_golden() -> None:
    markdown = "### trainops plan\n\n**Plan: 1 to submit, 1 to cancel.**\n\nCost: $3.\n"
    assert plan_comment(markdown, "b" * 40, "https://github.com/acme/m/actions/runs/7") == (
        "<!-- trainops:plan -->\n### trainops plan\n\n**Plan: 1 to submit, 1 to cancel.**\n\n"
        "Cost: $3.\n\n<sub>Plan of bbbbbbbbbbbb · "
        "[workflow run](https://github.com/acme/m/actions/runs/7)</sub>\n"
    )
    problems = [Problem("jobs/a.yaml", 3, 5, "bad"), Problem("jobs/b.yaml", 1, 1, "bad")]
    assert (
        plan_description(markdown, True, problems)
        == "Plan: 1 to submit, 1 to cancel; 2 problem(s) in 2 file(s)"
    )
    assert (
        plan_description(markdown, True, [])
        == "Plan: 1 to submit, 1 to cancel; refused by policy or budget"
    )
    assert (
        plan_description("### x\n\n**No changes: the providers match git.**\n", False, [])
        == "No changes: the providers match git"
    )


def test_plan_comment_is_truncated_under_the_comment_limit_with_a_note() -> None:
    markdown = "".join(f"| `job-{i}` | submit |\n" for i in range(10_000))
    body = plan_comment(markdown, "b" * 40)
    assert len(body) <= 65_536
    assert body.startswith("<!-- trainops:plan -->\n| `job-0` | submit |\n")
    assert "truncated to fit GitHub's size limit" in body


SNAPSHOT = """\
# trainops snapshot of tiny revision 3f2c9a1b7d4e
# source commit: aaaa
apiVersion: trainops/v1
kind: TrainingJob
metadata: {name: tiny}
spec:
  provider: local
  command: [python, train.py]
  input: {steps: 1000, lr: 0.1, base: /runs/base/weights.bin}
  budget: {max_cost_usd: 20}
"""


def test_spec_changes_lists_changed_added_and_removed_fields() -> None:
    new = {
        "provider": "local",
        "command": ["python", "train.py", "--fast"],
        "input": {"steps": 2000, "base": "${{ jobs.base.output.weights }}", "tags": ["a"]},
        "budget": {"max_cost_usd": 20},
    }
    assert spec_changes(SNAPSHOT, new) == [
        'command: ["python", "train.py"] -> ["python", "train.py", "--fast"]',
        "input.lr: 0.1 -> (unset)",
        "input.steps: 1000 -> 2000",
        'input.tags: (unset) -> ["a"]',
    ]


def test_spec_diffs_compare_each_job_with_its_latest_snapshot() -> None:
    target = f.target("tiny", input={"steps": 3000})
    old = f.run("0123456789ab", Health.SUCCEEDED, snapshot="snapshots/tiny/0123456789ab.yaml")
    files = {
        "snapshots/tiny/0123456789ab.yaml": (
            "spec: {provider: local, command: [python, train.py], input: {steps: 1000}}\n"
        )
    }
    new_job = f.target("fresh")
    diffs = spec_diffs(files, f.state(tiny=[old]), f.desired(target, new_job))
    assert [c for c in diffs["tiny"] if c.startswith("input")] == ["input.steps: 1000 -> 3000"]
    assert "fresh" not in diffs
    pinned = f.target("lora", provider="replicate", trainer="acme/trainer")
    lora = f.run(pinned, Health.SUCCEEDED, snapshot="snapshots/lora/1.yaml")
    submitted = {
        **pinned.job.manifest.model_dump(mode="json")["spec"],
        "trainer": "acme/trainer:abcdef12",
    }
    files["snapshots/lora/1.yaml"] = yaml.safe_dump({"spec": submitted})
    diffs = spec_diffs(
        files,
        f.state(lora=[lora]),
        f.desired(pinned),
        trainer=lambda spec: f"{spec.trainer}:abcdef12",
    )
    assert "lora" not in diffs  # the lock pins the version the snapshot recorded
    assert diffs_markdown({"tiny": ["input.steps: 1000 -> 3000"]}) == (
        "\n#### Changed spec fields (since the last submitted revision)\n\n"
        "- `tiny`\n  - `input.steps: 1000 -> 3000`\n"
    )


def test_env_changes_name_each_variable_and_mark_credentials() -> None:
    before = ["WANDB_PROJECT", "OLD_FLAG", "AWS_SECRET_ACCESS_KEY", 7, "bad name"]
    after = ["WANDB_PROJECT", "HF_TOKEN", "GITHUB_TOKEN", "MY_R8", "EPOCHS"]
    assert env_changes(before, after, credentials=["MY_R8"]) == [
        "env: + EPOCHS",
        "env: + GITHUB_TOKEN (credential: passes GITHUB_TOKEN to the job)",
        "env: + HF_TOKEN (credential: passes HF_TOKEN to the job)",
        "env: + MY_R8 (credential: passes MY_R8 to the job)",  # the configured token_env
        "env: - AWS_SECRET_ACCESS_KEY"
        " (credential: no longer passes AWS_SECRET_ACCESS_KEY to the job)",
        "env: - OLD_FLAG",
    ]
    assert env_changes(["A_B"], ["A_B"]) == []


def test_spec_changes_list_env_names_not_the_list() -> None:
    snapshot = SNAPSHOT.replace("  budget:", "  env: [WANDB_PROJECT]\n  budget:")
    new = {**yaml.safe_load(SNAPSHOT)["spec"], "env": ["WANDB_PROJECT", "REPLICATE_API_TOKEN"]}
    assert spec_changes(snapshot, new) == [
        "env: + REPLICATE_API_TOKEN (credential: passes REPLICATE_API_TOKEN to the job)"
    ]


def test_spec_diffs_show_env_of_new_jobs_and_of_jobs_about_to_start_again() -> None:
    env = ["HF_TOKEN"]
    target = f.target("tiny", input={"steps": 1000}, env=env)  # same revision, env added
    old = f.run(target, Health.FAILED, snapshot="snapshots/tiny/a.yaml")
    spec = {**target.job.manifest.model_dump(mode="json")["spec"], "env": []}
    files = {"snapshots/tiny/a.yaml": yaml.safe_dump({"spec": spec})}
    fresh = f.target("fresh", env=["WANDB_API_KEY", "EPOCHS"])
    plain = f.target("plain")
    desired = f.desired(target, fresh, plain)
    marked = "env: + HF_TOKEN (credential: passes HF_TOKEN to the job)"
    assert spec_diffs(files, f.state(tiny=[old]), desired) == {
        "tiny": [marked],
        "fresh": [
            "env: + EPOCHS",
            "env: + WANDB_API_KEY (credential: passes WANDB_API_KEY to the job)",
        ],
    }
    cheap = spec_diffs(files, f.state(tiny=[old]), desired, new_revisions_only=True)
    assert cheap["tiny"] == [marked] and "fresh" in cheap  # a job passing variables: compared
    # the cheap path still compares a job with no env at the same revision only when it submits
    bare = f.target("tiny", input={"steps": 1000})
    spec["env"], spec["retries"] = [], 3
    files["snapshots/tiny/a.yaml"] = yaml.safe_dump({"spec": spec})
    state, only = f.state(tiny=[old]), f.desired(bare)
    assert spec_diffs(files, state, only, new_revisions_only=True) == {}
    retried = spec_diffs(files, state, only, new_revisions_only=True, submitting={"tiny"})
    assert retried == {"tiny": ["retries: 3 -> 0"]}


def test_diffs_markdown_marks_credentials_first() -> None:
    diffs = {
        "tiny": [
            "input.steps: 1 -> 2",
            "env: + EPOCHS",
            "env: + HF_TOKEN (credential: passes HF_TOKEN to the job)",
        ]
    }
    assert diffs_markdown(diffs, per_job=2) == (
        "\n#### Changed spec fields (since the last submitted revision)\n\n"
        "- `tiny`\n"
        "  - `env: + HF_TOKEN` ⚠️ **credential: passes HF_TOKEN to the job**\n"
        "  - `input.steps: 1 -> 2`\n"
        "  - … and 1 more\n"
    )


def test_scrubber_removes_secret_values_and_token_shapes() -> None:
    env = {
        "GITHUB_TOKEN": "ghs_secretvalue123",
        "MY_API_KEY": "k-0123456789",
        "DB_PASSWORD": "hunter2hunter2",
        "SHORT_TOKEN": "abc",
        "HOME": "/home/runner",
    }
    scrub = Scrubber.from_env(env)
    text = (
        "gh=ghs_secretvalue123 key=k-0123456789 pw=hunter2hunter2 abc /home/runner "
        "hf=hf_" + "x" * 30
    )
    assert scrub(text) == "gh=*** key=*** pw=*** abc /home/runner hf=***"


def test_actions_context_uses_the_pull_request_head_not_github_sha(tmp_path: Path) -> None:
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"pull_request": {"number": 7, "head": {"sha": "c" * 40}}}))
    ctx = ActionsContext.from_env(
        {
            "GITHUB_REPOSITORY": "acme/m",
            "GITHUB_EVENT_NAME": "pull_request",
            "GITHUB_EVENT_PATH": str(event),
            "GITHUB_SHA": "d" * 40,
            "GITHUB_RUN_ID": "9",
        }
    )
    assert ctx is not None
    assert ctx.pull_request == (7, "c" * 40)
    assert ctx.run_url == "https://github.com/acme/m/actions/runs/9"
    assert ActionsContext.from_env({"GITHUB_EVENT_NAME": "pull_request"}) is None
