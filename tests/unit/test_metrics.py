"""Metrics are hostile input (DESIGN §13, §19): numbers only, bounded, never an error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trainops import metrics
from trainops.state.schema import StateFileError, read_state_file


@pytest.mark.parametrize(
    ("data", "kept"),
    [
        ({"loss": 0.5, "acc": 1}, {"acc": 1.0, "loss": 0.5}),
        ({"flag": True, "s": "1", "n": None, "nested": {"a": 1}}, {}),
        ({"bad name": 1, "../x": 2, "a" * 65: 3, "ok/x.y-z": 4}, {"ok/x.y-z": 4.0}),
        ({"big": 1e400}, {}),  # inf after parsing
        ([1, 2], {}),
    ],
    ids=["numbers", "non-numbers", "names", "infinite", "not-an-object"],
)
def test_only_finite_numbers_under_plain_names_are_kept(data: object, kept: dict) -> None:
    assert metrics.clean(data) == kept


def test_count_is_bounded() -> None:
    assert len(metrics.clean({f"m{i:03d}": i for i in range(500)})) == metrics.MAX_COUNT


@pytest.mark.parametrize(
    "text",
    ['{"loss": NaN}', "{" * 100_000, "not json", "\xff"],
    ids=["nan", "deep", "garbage", "undecodable"],
)
def test_a_bad_file_gives_no_metrics(tmp_path: Path, text: str) -> None:
    path = tmp_path / "metrics.json"
    path.write_bytes(text.encode("utf-8", "surrogateescape") if text != "\xff" else b"\xff")
    assert metrics.read(path) == {}


def test_an_oversized_file_is_not_read(tmp_path: Path) -> None:
    path = tmp_path / "metrics.json"
    path.write_text(json.dumps({"loss": 1.0, "pad": "x" * metrics.MAX_BYTES}))
    assert metrics.read(path) == {}


def test_a_symlinked_file_is_not_followed(tmp_path: Path) -> None:
    (tmp_path / "real.json").write_text('{"loss": 1}')
    (tmp_path / "metrics.json").symlink_to(tmp_path / "real.json")
    assert metrics.read(tmp_path / "metrics.json") == {}


def _state(run_metrics: object) -> str:
    run = {
        "revision": "0123456789ab",
        "attempt": 1,
        "provider": "local",
        "input_hash": "x",
        "created_at": 1.0,
        "metrics": run_metrics,
    }
    return json.dumps({"format": 1, "job": "a", "runs": [run]})


def test_the_state_reader_keeps_valid_metrics() -> None:
    [run] = read_state_file(_state({"loss": 0.25})).runs
    assert run.metrics == {"loss": 0.25}


@pytest.mark.parametrize(
    "bad", [{"loss": "0.2"}, {"loss": True}, {"x y": 1}, [1], {f"m{i}": 1 for i in range(65)}]
)
def test_the_state_reader_refuses_forged_metrics(bad: object) -> None:
    with pytest.raises(StateFileError, match="metrics must be an object of at most 64"):
        read_state_file(_state(bad))


def test_the_plan_comment_shows_what_a_changed_job_last_produced() -> None:
    from trainops.plan import JobView, Plan, Submit, Sync
    from trainops.render import plan_markdown
    from trainops.state.model import Health, Run

    old = Run(
        "0123456789ab",
        1,
        "local",
        "h",
        1.0,
        run_id="a-1",
        health=Health.SUCCEEDED,
        metrics={"eval_loss": 0.21},
    )
    views = {
        "a": JobView("a", Sync.OUT_OF_SYNC, Health.SUCCEEDED, revision="ba9876543210", run=old),
        "b": JobView("b", Sync.SYNCED, Health.SUCCEEDED, revision="0123456789ab", run=old),
    }
    text = plan_markdown(Plan((Submit("a", "ba9876543210", 1),), views), 0.0, [])
    section = text.split("#### Metrics of the run each changed job last produced\n\n")[1]
    assert section.splitlines()[0] == "- `a`: `eval_loss=0.21`"  # b is unchanged: not listed
    assert "`b`" not in section


def test_a_providers_metric_names_are_recorded_under_names_the_state_takes() -> None:
    """SageMaker names metrics `train:loss` (FinalMetricDataList): recorded as `train_loss`,
    which the state schema's name rule takes; the first of two names that become one wins,
    and what is still no name, or no number, is left out."""
    pairs = [
        ("train:loss", 0.25),
        ("train_loss", 9.0),
        ("validation:auc", 1),
        ("1st", 0.5),
        ("", 1.0),
        (None, 1.0),
        ("x" * 65, 1.0),
        ("acc", "0.9"),
        ("eval loss", float("nan")),
    ]
    found = metrics.named(pairs)
    assert found == {"train_loss": 0.25, "validation_auc": 1.0}
    assert metrics.valid(found)
