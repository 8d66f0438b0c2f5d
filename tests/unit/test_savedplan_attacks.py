"""A saved plan edited by someone who read the source (`sign`), checked by `stale_lines` as
`apply FILE` checks it: what `show` prints of an action must be what apply carries out. The
CLI's side of these attacks: tests/e2e/test_saved_plan_attacks.py."""

from __future__ import annotations

from tests.unit.test_savedplan import BOUND, saved
from trainops.savedplan.stale import stale_lines


def test_an_edited_timeout_is_stale_as_an_edited_worst_case_is() -> None:
    # `show` prints a submit's provider timeout (`submit (attempt 1, timeout 1h)`) from the
    # file's action; apply compared the worst case but not the timeout, so a file showing a
    # 1h stop was applied as the current plan's run with no such stop.
    _text, doc = saved()
    now = list(doc.actions)
    edited = [
        a.model_copy(update={"timeout_seconds": 3600}) if a.op == "submit" else a
        for a in doc.actions
    ]
    jobs = {"a": (None, "Missing"), "b": ("t-1", "Running")}
    lines = stale_lines(doc.model_copy(update={"actions": edited}), BOUND, "s" * 40, now, jobs)
    assert "timeout of submit a revision r1 attempt 1 changed: 3600s -> none" in lines
