"""A sweep set's commit comment (DESIGN §11, §21): once the set is settled, one table of its
members (values, state, metric, cost), best first, the winner marked, under GitHub's comment
limit at 500 members; and `apply --wait` does not count a member stopped early as a failure."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from tests.support.factories import run
from tests.support.sweeps import sweep
from trainops.commands import unsucceeded
from trainops.github.client import COMMENT_MAX_CHARS
from trainops.github.set_report import set_comment, set_marker
from trainops.manifest import Select, StopWhen, Sweep
from trainops.plan import Desired, Limits, plan, set_outcome
from trainops.reconcile.report import set_commit
from trainops.reconcile.result import Pass
from trainops.state.model import Health, JobState

STOPPED = "stopped early: eval_loss 0.9 so far is worse than 0.2 of lora.3-... by more than 0.1"


def lora(values: list[Any], stop: bool = False) -> Desired:
    desired = sweep("lora", values, select=("eval_loss", "minimize"))
    settings = Sweep(
        select=Select(metric="eval_loss", goal="minimize"),
        stop_when=StopWhen(metric="eval_loss", worse_than_best_by=0.1) if stop else None,
    )
    return replace(desired, sets={"lora": replace(desired.sets["lora"], sweep=settings)})


def succeeded(desired: Desired, member: str, loss: float, **fields: Any) -> JobState:
    t = desired.targets[member]
    done = run(
        t,
        Health.SUCCEEDED,
        metrics={"eval_loss": loss},
        completed_at=2000.0,
        cost_usd=0.5,
        **fields,
    )
    return JobState(member, (done,))


def three() -> tuple[Desired, dict[str, JobState], list[str]]:
    desired = lora([1, 2, 3], stop=True)
    m1, m2, m3 = desired.sets["lora"].members
    stopped = run(desired.targets[m2], Health.CANCELED, reason=STOPPED, cost_usd=0.25)
    state = {
        m1: succeeded(desired, m1, 0.3, source_commit="a" * 40),
        m2: JobState(m2, (stopped,)),
        m3: succeeded(
            desired, m3, 0.2, promotions={"s3:s3://models/prod/": "done"}, source_commit="b" * 40
        ),
    }
    return desired, state, [m1, m2, m3]


def test_the_settled_set_is_one_table_best_first_with_the_winner_marked() -> None:
    desired, state, (m1, m2, m3) = three()
    outcome = set_outcome(desired.sets["lora"], desired, state)
    assert outcome is not None and outcome.winner == m3
    assert [m.member for m in outcome.members] == [m3, m1, m2]
    body = set_comment(outcome)
    assert body == (
        f"{set_marker(outcome)}\n"
        "### trainops: sweep `lora` settled\n"
        "\n"
        f"**Winner: `{m3}`** (eval_loss 0.2, minimize), with lr `3`\n"
        "\n"
        "**3 members · 2 succeeded · 1 stopped early · cost $1.25**\n"
        "\n"
        "**Promotion of the winner**\n"
        "\n"
        "- `s3:s3://models/prod/`: moved to the winner's run\n"
        "\n"
        "<details open><summary>3 members of lora</summary>\n"
        "\n"
        "|   | member | lr | state | eval_loss | cost |\n"
        "|---|---|---|---|---|---|\n"
        f"| **winner** | `{m3}` | `3` | Succeeded | 0.2 | $0.50 |\n"
        f"|   | `{m1}` | `1` | Succeeded | 0.3 | $0.50 |\n"
        f"|   | `{m2}` | `2` | Stopped early: eval_loss 0.9 so far is worse than 0.2 of "
        "lora.3-... by more than 0.1 | - | $0.25 |\n"
        "\n"
        "</details>\n"
    )


def test_a_set_is_told_on_the_commit_of_its_newest_run_and_only_once_settled() -> None:
    desired, state, (m1, _m2, m3) = three()
    newer = replace(state[m1].runs[0], created_at=5000.0)
    outcome = set_outcome(desired.sets["lora"], desired, {**state, m1: JobState(m1, (newer,))})
    assert outcome is not None and set_commit(outcome) == "a" * 40
    running = {**state, m3: JobState(m3, (run(desired.targets[m3]),))}
    assert set_outcome(desired.sets["lora"], desired, running) is None


def test_the_marker_changes_with_the_members_runs_only() -> None:
    desired, state, (m1, _m2, _m3) = three()
    outcome = set_outcome(desired.sets["lora"], desired, state)
    assert outcome is not None
    again = set_outcome(desired.sets["lora"], desired, dict(state))
    assert again is not None and set_marker(again) == set_marker(outcome)
    other = replace(state[m1].runs[0], run_id="r-other-1")
    moved = set_outcome(desired.sets["lora"], desired, {**state, m1: JobState(m1, (other,))})
    assert moved is not None and set_marker(moved) != set_marker(outcome)


def test_500_members_fit_github_s_limit_best_first_and_the_rest_counted() -> None:
    desired = lora(list(range(500)))
    members = desired.sets["lora"].members
    error = "CUDA out of memory: " + "tried to allocate 2.00 GiB; " * 20
    state = {
        m: JobState(m, (run(desired.targets[m], Health.FAILED, error=error),)) for m in members
    }
    state[members[7]] = succeeded(desired, members[7], 0.5)
    outcome = set_outcome(desired.sets["lora"], desired, state)
    assert outcome is not None and outcome.winner == members[7]
    body = set_comment(outcome)
    assert len(body) <= COMMENT_MAX_CHARS
    rows = [line for line in body.splitlines() if line.startswith("| ") and "`lora." in line]
    assert 200 < len(rows) < 500
    assert rows[0].startswith(f"| **winner** | `{members[7]}` |")
    assert f"| … | {500 - len(rows)} more members: run `trainops status` to see all" in body
    assert "<details><summary>500 members of lora</summary>" in body  # collapsed
    assert "**500 members · 1 succeeded · 499 failed · cost $0.50**" in body


def test_apply_wait_does_not_count_a_member_stopped_early() -> None:
    desired, state, (_m1, m2, _m3) = three()
    result = Pass(plan(desired, state, Limits(), 10_000.0), state)
    assert unsucceeded(result, desired) == []
    assert unsucceeded(result) == [f"{m2}: Canceled ({STOPPED})"]  # no set at hand to say so
    # a member without its set's stop_when: the cancel's recorded reason alone does not pass
    without = replace(
        desired, sets={"lora": replace(desired.sets["lora"], sweep=Sweep(select=None))}
    )
    assert unsucceeded(result, without) == [f"{m2}: Canceled ({STOPPED})"]
