"""The status page is built from values: every job's row, one chart point per run, a spend bar
per month, a metric chart only when runs recorded metrics, and everything escaped."""

from __future__ import annotations

import json

from trainops.serve.status_page import RunPoint, StatusView, render, write_static

DOC = {
    "summary": "2 jobs",
    "money": {"month": "2026-12", "spent_usd": 1.5},
    "jobs": [
        {
            "job": "a",
            "sync": "Synced",
            "health": "Succeeded",
            "revision": "r1",
            "run_id": "x",
            "age_seconds": 5,
            "cost_usd": 1.0,
            "reason": "",
        },
        {
            "job": "b",
            "sync": "Synced",
            "health": "Failed",
            "revision": "r2",
            "run_id": None,
            "age_seconds": None,
            "cost_usd": 0.5,
            "reason": "<script>alert(1)</script>",
        },
    ],
}
RUNS = [
    RunPoint("a", "x0", "r0", 1, "Succeeded", 100.0, 0.5),
    RunPoint("a", "x", "r1", 1, "Succeeded", 200.0, 1.0),
    RunPoint("b", "y", "r2", 1, "Failed", 300.0, 0.5),
]


def test_rows_points_and_bars() -> None:
    page = render(StatusView(DOC, RUNS, {"2026-11": 0.5, "2026-12": 1.5}))
    assert page.count('<tr class="job"') == 2
    assert page.count('<circle class="point"') == 3
    assert page.count('<rect class="bar"') == 2
    assert 'data-chart="metric-' not in page
    assert "<script>" not in page and "&lt;script&gt;" in page


def test_a_metric_chart_when_runs_have_metrics(tmp_path) -> None:  # type: ignore[no-untyped-def]
    view = StatusView(DOC, RUNS, {}, {"a": [("r0", "eval_loss", 0.4), ("r1", "eval_loss", 0.3)]})
    page = render(view)
    assert 'data-chart="metric-a"' in page and "eval_loss" in page
    index, api = write_static(view, tmp_path / "site")
    assert index.read_text() == page and json.loads(api.read_text()) == DOC


def test_the_page_and_its_json_pass_the_scrubber(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from trainops.serve.status_page import build_view

    monkeypatch.setenv("REPLICATE_API_TOKEN", "r8_" + "S3cretValue" * 3)
    leaked = json.dumps({**DOC, "summary": "failed with r8_" + "S3cretValue" * 3})
    view = build_view(leaked, {}, {}, 0.0)
    assert "S3cretValue" not in json.dumps(dict(view.doc)) and "S3cretValue" not in render(view)


def test_the_page_lists_the_runs_nobody_declared_escaped() -> None:
    doc = {
        **DOC,
        "undeclared": {
            "runs": [
                {
                    "provider": "replicate",
                    "kind": "orphaned",
                    "job": "<b>a</b>",
                    "run_id": "r8orphan",
                    "health": "Succeeded",
                    "age_seconds": 3600.0,
                    "cost_usd": 0.15,
                }
            ],
            "not_listable": [],
            "list_calls": {"replicate": 1},
            "incomplete": [],
        },
    }
    page = render(StatusView(doc, RUNS))
    assert '<h2>Runs nobody declared</h2><table id="undeclared">' in page
    assert '<tr class="stray" data-run="r8orphan">' in page and "0.15" in page
    assert "&lt;b&gt;a&lt;/b&gt;" in page and "<b>a</b>" not in page
    # Without a census (no `undeclared` in the document) the page has no such section.
    assert "Runs nobody declared" not in render(StatusView(DOC, RUNS))
