"""Saved plans attacked (DESIGN §20, §13, §12): files a user did not get from `plan --out`, or
got and then edited, handed to `show` and `apply`. Each test is one attack that worked before its
fix; the attacks that held are covered by tests/e2e/test_saved_plan.py and
tests/unit/test_savedplan.py.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e import test_saved_plan as base
from tests.e2e.test_saved_plan import User, resign
from tests.support.workspace import UserRepo, cli_env, config

emu, user = base.emu, base.user  # the saved-plan user and emulator fixtures

# Enough address space for the CLI and a plan at its size limit, not for an endless file.
ADDRESS_SPACE = 2 * 1024**3


def _limited() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))


@pytest.mark.parametrize("command", [["show"], ["apply"]])
def test_an_endless_plan_file_is_refused_by_its_size_not_read_to_its_end(
    tmp_path: Path, command: list[str]
) -> None:
    # /dev/zero (or a FIFO a process keeps writing) never ends: read whole, it takes all the
    # memory there is before the size limit is looked at.
    repo = UserRepo.create(tmp_path, {}, cfg=config())
    result = subprocess.run(
        [sys.executable, "-m", "trainops", *command, "/dev/zero"],
        cwd=repo.root,
        env=cli_env(repo.env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        preexec_fn=_limited,
    )
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    assert result.returncode == 1, result.stderr[-2000:]
    assert "/dev/zero: larger than 268435456 bytes" in result.stderr
    repo.cleanup()


def test_a_report_edited_to_show_less_than_the_actions_cost_is_refused(user: User) -> None:
    # `show` prints each job's worst case, revision and the money line from the file's report;
    # apply compared only its actions. A resigned file whose report says $0.01 was shown as
    # $0.01 and applied as the $10.80 the actions (and the current plan) cost.
    doc = user.save()
    report = json.loads(json.dumps(doc["report"]))
    for j in report["jobs"]:
        j["estimate_usd"] = 0.01
    report["jobs"][1]["revision"] = "000000000000"
    report["money"]["new_usd"] = 0.02
    user.plan_file.write_text(resign({**doc, "report": report}))
    shown = user.ok("show", str(user.plan_file)).stdout
    assert "$0.01" in shown and "new runs up to $0.02" in shown  # what a reviewer would read
    err = user.refused()
    assert "the plan's report shows job a at worst case $0.01; the current plan: $10.80" in err
    assert "the plan's report shows job b revision 000000000000; the current plan: " in err
    assert "the plan's report shows new runs up to $0.02; the current plan: $21.60" in err
    # A report that leaves a job out, or lists other actions than the file's, likewise.
    report = json.loads(json.dumps(doc["report"]))
    report["jobs"] = report["jobs"][:1]
    report["actions"] = report["actions"][:1]
    user.plan_file.write_text(resign({**doc, "report": report}))
    err = user.refused()
    assert "the plan's report leaves out job b" in err
    assert "the plan's report lists other actions than the plan's" in err
    assert user.creates() == 0


def test_show_prints_no_terminal_control_from_the_file(tmp_path: Path) -> None:
    # The header (state version, made at) and the money line's month are free strings of the
    # file that `show` printed raw: an edited file could clear the screen or retitle the
    # terminal before a reviewer read the plan. Job names and reasons were escaped already.
    from tests.unit.test_savedplan import saved
    from trainops.savedplan.digest import sign

    text, _doc = saved()
    doc = json.loads(text)
    doc["state_version"] = "\x1b]0;ok\x07\x1b[2J"
    doc["created_at"] = "2026-12-01\x1b[1A\x1b[2K"
    doc["report"]["money"]["month"] = "2026-12\x1b[8m"
    plan = tmp_path / "plan.json"
    plan.write_text(sign(json.dumps(doc, indent=2)))
    for output in ("table", "markdown", "json"):
        result = subprocess.run(
            [sys.executable, "-m", "trainops", "show", str(plan), "-o", output],
            cwd=tmp_path,
            env=cli_env(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert "\x1b" not in result.stdout + result.stderr and "\x07" not in result.stdout, output
    assert (
        "\\x1b[2J"
        in subprocess.run(
            [sys.executable, "-m", "trainops", "show", str(plan)],
            cwd=tmp_path,
            env=cli_env(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        ).stdout
    )  # shown, escaped
