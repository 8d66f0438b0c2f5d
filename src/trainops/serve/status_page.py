"""The read-only status page: one HTML document with inline SVG charts, no JavaScript.

Built from values only (the `status -o json` document and the run records of the state branch),
so `trainops serve` answers it at `/` and `trainops status --html DIR` writes it as static files.
Everything taken from state or a provider is HTML-escaped; nothing here does I/O except
`write_static`.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trainops.state.model import JobState, month_of

if TYPE_CHECKING:
    from trainops.reconcile import Pass
    from trainops.workspace import Workspace

_W, _H, _PAD = 640, 200, 36


@dataclass(frozen=True)
class RunPoint:
    """One run of one job, as the page charts it."""

    job: str
    run_id: str
    revision: str
    attempt: int
    health: str
    created_at: float
    cost_usd: float


@dataclass(frozen=True)
class StatusView:
    """What the page shows: `doc` is exactly the `status -o json` document (/api/status)."""

    doc: Mapping[str, Any]
    runs: Sequence[RunPoint] = ()
    spend_by_month: Mapping[str, float] = field(default_factory=dict)
    # job -> [(revision, metric name, value)] when runs record metrics (DESIGN §19)
    metrics: Mapping[str, Sequence[tuple[str, str, float]]] = field(default_factory=dict)


def build_view(
    doc_text: str, state: Mapping[str, JobState], prices: Mapping[str, float], now: float
) -> StatusView:
    """The view of one status pass: its JSON document plus every recorded run. Everything on
    the page passes the one scrubber first (a run's error or reason may quote a credential)."""
    from trainops import cost
    from trainops.scrub import scrub_json, scrubber

    clean = scrubber()

    runs: list[RunPoint] = []
    spend: dict[str, float] = {}
    metrics: dict[str, list[tuple[str, str, float]]] = {}
    for name, job_state in sorted(state.items()):
        for run in job_state.runs:
            if run.lost:
                continue
            usd = cost.run_cost(run, prices, now)
            month = month_of(run.created_at)
            spend[month] = spend.get(month, 0.0) + usd
            runs.append(
                RunPoint(
                    name,
                    clean(run.run_id or ""),
                    run.revision,
                    run.attempt,
                    run.health.value,
                    run.created_at,
                    round(usd, 4),
                )
            )
            headline = _headline(getattr(run, "metrics", None))
            if headline is not None:
                metrics.setdefault(name, []).append((run.revision, *headline))
    doc = scrub_json(json.loads(doc_text), clean)
    return StatusView(doc, runs, dict(sorted(spend.items())), metrics)


def _headline(values: object) -> tuple[str, float] | None:
    """A run's headline metric: its first numeric metric by name (runs record them as a
    mapping once provenance lands; absent or empty, no chart is drawn)."""
    if not isinstance(values, Mapping):
        return None
    for key in sorted(values):
        value = values[key]
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(key), float(value)
    return None


def render(view: StatusView) -> str:
    """The whole page."""
    doc = view.doc
    e = html.escape
    rows = []
    jobs = {str(job["job"]): job for job in doc.get("jobs", [])}
    sets = {str(s["set"]): s for s in doc.get("sets", []) if isinstance(s, Mapping)}
    shown: set[str] = set()
    for name, job in jobs.items():
        if name in shown:
            continue
        group = sets.get(str(job.get("set") or ""))
        if group is None:
            rows.append(_job_row(job))
            continue
        # a sweep set (DESIGN §21): one line with its counts, its members under it
        rows.append(_set_row(group))
        for member in group.get("members", []):
            if member in jobs and member not in shown:
                rows.append(_job_row(jobs[member], str(group["set"])))
                shown.add(member)
    runs_by_job: dict[str, list[RunPoint]] = {}
    for point in view.runs:
        runs_by_job.setdefault(point.job, []).append(point)
    history = []
    for name, points in sorted(runs_by_job.items()):
        items = "".join(
            f'<li class="run" data-run="{e(p.run_id)}">{e(_when(p.created_at))} '
            f"{e(p.revision)} #{p.attempt} {e(p.health)} ${p.cost_usd:.2f}</li>"
            for p in sorted(points, key=lambda p: p.created_at)
        )
        history.append(
            f'<section class="runs" data-job="{e(name)}"><h3>{e(name)}</h3>'
            f"<ul>{items}</ul></section>"
        )
    charts = [
        _runs_chart(view.runs),
        _bar_chart("spend", "Spend per month (USD)", view.spend_by_month),
    ]
    for name, series in sorted(view.metrics.items()):
        charts.append(_metric_chart(name, series))
    for group in sets.values():
        if group.get("metric"):
            charts.append(_set_chart(group, jobs))
    money = doc.get("money") or {}
    summary = e(str(doc.get("summary", "")))
    spent = f"{float(money.get('spent_usd', 0.0)):.2f}" if money else "0.00"
    month = e(str(money.get("month", ""))) if money else ""
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        "<title>trainops status</title>"
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:4px 8px}svg{border:1px solid #eee;margin:1em 0}"
        "tr.set{font-weight:bold;background:#f4f4f4}tr.member td:first-child{padding-left:2em}"
        "</style></head><body>\n"
        f'<h1>trainops status</h1><p class="summary">{summary}</p>'
        f'<p class="money">{month}: spent ${spent}</p>\n'
        '<table id="jobs"><thead><tr><th>job</th><th>sync</th><th>health</th><th>revision</th>'
        "<th>run</th><th>age (s)</th><th>cost (USD)</th><th>reason</th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table>\n"
        + "\n".join(charts)
        + _undeclared(doc.get("undeclared"))
        + "\n<h2>Runs</h2>"
        + "".join(history)
        + "\n</body></html>\n"
    )


def _job_row(job: Mapping[str, Any], member_of: str = "") -> str:
    e = html.escape
    klass, extra = ("job member", f' data-set="{e(member_of)}"') if member_of else ("job", "")
    return (
        f'<tr class="{klass}" data-job="{e(str(job["job"]))}"{extra}>'
        + "".join(
            f"<td>{e(_cell(job.get(k)))}</td>"
            for k in ("job", "sync", "health", "revision", "run_id", "age_seconds")
        )
        + f"<td>{float(job.get('cost_usd', 0.0)):.2f}</td>"
        f"<td>{e(str(job.get('reason', '')))}</td></tr>"
    )


def _set_row(group: Mapping[str, Any]) -> str:
    """A sweep set's line: its members' counts by sync and by health, what they cost so far,
    and its worst case and bounds."""
    e = html.escape

    def tally(counts: object) -> str:
        if not isinstance(counts, Mapping):
            return "-"
        return ", ".join(f"{n} {k}" for k, n in sorted(counts.items())) or "-"

    worst = group.get("estimate_usd")
    bounds = [f"worst case {'unbounded' if worst is None else f'${float(worst):.2f}'}"]
    if group.get("max_cost_usd_total") is not None:
        bounds[0] += f" of ${float(group['max_cost_usd_total']):.2f}"
    if group.get("max_parallel") is not None:
        bounds.append(f"max_parallel {group['max_parallel']}")
    if group.get("refused"):
        bounds.append(str(group["refused"]))
    members = group.get("members", [])
    return (
        f'<tr class="set" data-set="{e(str(group["set"]))}">'
        f"<td>{e(str(group['set']))} (set of {len(members)})</td>"
        f"<td>{e(tally(group.get('sync')))}</td><td>{e(tally(group.get('health')))}</td>"
        "<td>-</td><td>-</td><td>-</td>"
        f"<td>{float(group.get('cost_usd', 0.0)):.2f}</td><td>{e('; '.join(bounds))}</td></tr>"
    )


def _undeclared(found: object) -> str:
    """The runs nobody declared (DESIGN §20) of the last census, when there was one."""
    if not isinstance(found, Mapping):
        return ""
    e = html.escape
    cols = ("provider", "kind", "job", "run_id", "health", "age_seconds")
    rows = "".join(
        f'<tr class="stray" data-run="{e(str(r.get("run_id", "")))}">'
        + "".join(f"<td>{e(_cell(r.get(k)))}</td>" for k in cols)
        + f"<td>{float(r.get('cost_usd', 0.0)):.2f}</td></tr>"
        for r in found.get("runs", [])
        if isinstance(r, Mapping)
    )
    head = "".join(f"<th>{c}</th>" for c in (*cols, "cost_usd"))
    return (
        '\n<h2>Runs nobody declared</h2><table id="undeclared"><thead><tr>'
        + head
        + "</tr></thead><tbody>"
        + (rows or '<tr><td colspan="7">none</td></tr>')
        + "</tbody></table>"
    )


def write_static(view: StatusView, directory: Path) -> list[Path]:
    """`status --html DIR`: index.html and api/status.json, for GitHub Pages and the like."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "api").mkdir(exist_ok=True)
    index, api = directory / "index.html", directory / "api" / "status.json"
    index.write_text(render(view), encoding="utf-8")
    api.write_text(json.dumps(view.doc, indent=2) + "\n", encoding="utf-8")
    return [index, api]


def _cell(value: object) -> str:
    return "-" if value is None or value == "" else str(value)


def _when(ts: float) -> str:
    from trainops.output import iso

    return iso(ts) or "-"


def _scale(values: Sequence[float], lo_px: float, hi_px: float) -> list[float]:
    lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
    span = (hi - lo) or 1.0
    return [lo_px + (v - lo) / span * (hi_px - lo_px) for v in values]


def _frame(chart: str, title: str, body: str) -> str:
    e = html.escape
    return (
        f'<figure class="chart" data-chart="{e(chart)}"><figcaption>{e(title)}</figcaption>'
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_W}" height="{_H}" '
        f'viewBox="0 0 {_W} {_H}" role="img" aria-label="{e(title)}">'
        f'<line x1="{_PAD}" y1="{_H - _PAD}" x2="{_W - 8}" y2="{_H - _PAD}" stroke="#999"/>'
        f'<line x1="{_PAD}" y1="8" x2="{_PAD}" y2="{_H - _PAD}" stroke="#999"/>'
        f"{body}</svg></figure>"
    )


_COLORS = {"Succeeded": "#2a2", "Failed": "#c22", "Canceled": "#888", "Running": "#26c"}


def _runs_chart(runs: Sequence[RunPoint]) -> str:
    """Every run over time (x: submitted, y: cost), one point per run."""
    e = html.escape
    xs = _scale([p.created_at for p in runs], _PAD + 8, _W - 16)
    ys = _scale([p.cost_usd for p in runs], _H - _PAD - 8, 16)
    dots = "".join(
        f'<circle class="point" data-job="{e(p.job)}" data-run="{e(p.run_id)}" cx="{x:.1f}" '
        f'cy="{y:.1f}" r="4" fill="{_COLORS.get(p.health, "#e90")}">'
        f"<title>{e(p.job)} {e(p.revision)} #{p.attempt} {e(p.health)} ${p.cost_usd:.2f}</title>"
        "</circle>"
        for p, x, y in zip(runs, xs, ys, strict=True)
    )
    return _frame("runs", "Runs over time (cost per run, USD)", dots)


def _bar_chart(chart: str, title: str, values: Mapping[str, float]) -> str:
    e = html.escape
    items = list(values.items())
    top = max([v for _k, v in items] or [1.0]) or 1.0
    width = (_W - _PAD - 16) / max(1, len(items))
    bars = []
    for i, (label, value) in enumerate(items):
        h = value / top * (_H - 2 * _PAD)
        x = _PAD + 8 + i * width
        bars.append(
            f'<rect class="bar" data-label="{e(label)}" x="{x:.1f}" y="{_H - _PAD - h:.1f}" '
            f'width="{max(2.0, width - 6):.1f}" height="{h:.1f}" fill="#26c">'
            f"<title>{e(label)}: ${value:.2f}</title></rect>"
            f'<text x="{x:.1f}" y="{_H - _PAD + 14}" font-size="10">{e(label)}</text>'
        )
    return _frame(chart, title, "".join(bars))


def _set_chart(group: Mapping[str, Any], jobs: Mapping[str, Mapping[str, Any]]) -> str:
    """A sweep set's `select` metric, one bar per member that reported it (its latest run's),
    in the set's order; the winner (or the best so far) drawn apart."""
    e = html.escape
    metric, best = str(group["metric"]), str(group.get("best") or "")
    points = []
    for member in group.get("members", []):
        value = (jobs.get(member, {}).get("metrics") or {}).get(metric)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            points.append((str(member), float(value)))
    heights = _scale([v for _m, v in points] + [0.0], 4, _H - 2 * _PAD)[:-1] if points else []
    width = (_W - _PAD - 16) / max(1, len(points))
    bars = []
    for i, ((member, value), h) in enumerate(zip(points, heights, strict=True)):
        x = _PAD + 8 + i * width
        bars.append(
            f'<rect class="bar" data-member="{e(member)}" x="{x:.1f}" y="{_H - _PAD - h:.1f}" '
            f'width="{max(2.0, width - 4):.1f}" height="{h:.1f}" '
            f'fill="{"#2a2" if member == best else "#26c"}">'
            f"<title>{e(member)}: {e(metric)}={value:g}</title></rect>"
        )
    who = "winner" if group.get("winner") else "best so far"
    title = f"{group['set']}: {metric} of each member" + (f" ({who}: {best})" if best else "")
    return _frame(f"set-{group['set']}", title, "".join(bars))


def _metric_chart(job: str, series: Sequence[tuple[str, str, float]]) -> str:
    e = html.escape
    xs = _scale([float(i) for i in range(len(series))], _PAD + 8, _W - 16)
    ys = _scale([v for _r, _n, v in series], _H - _PAD - 8, 16)
    path = " ".join(f"{x:.1f},{y:.1f}" for x, y in zip(xs, ys, strict=True))
    dots = "".join(
        f'<circle class="point" cx="{x:.1f}" cy="{y:.1f}" r="3" fill="#26c">'
        f"<title>{e(rev)} {e(name)}={value:g}</title></circle>"
        for (rev, name, value), x, y in zip(series, xs, ys, strict=True)
    )
    name = series[0][1] if series else ""
    return _frame(
        f"metric-{job}",
        f"{job}: {name} across revisions",
        f'<polyline points="{path}" fill="none" stroke="#26c"/>{dots}',
    )


def write_status_page(ws: Workspace, result: Pass, directory: Path, now: float) -> list[Path]:
    """`status --html DIR`: the page `trainops serve` shows, as static files."""
    from trainops.output import report_parts

    problems = [*ws.validation.problems, *result.problems]
    doc = "".join(report_parts("status", result.plan, now, problems, notes=result.notes))
    view = build_view(doc, result.state, ws.config.prices_usd_per_second, now)
    return write_static(view, directory)
