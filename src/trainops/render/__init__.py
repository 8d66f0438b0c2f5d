"""Rendering of problems, plans and status for terminals, JSON and GitHub workflow commands.

Pure text in, text out: the CLI decides where it goes. Every field that came from a file, a job
or a provider is escaped for its medium here (`trainops.escape`), never at the call sites.

By noun (issue 28): `problems` (problems and errors, GitHub annotations), `plan` (a plan's and
status's rows and lines), `sets` (a sweep set's row and its members under it, DESIGN §21),
`census` (runs nobody declared, DESIGN §20), `markdown` (the pull request comment), `cells`
(the table, money, ages and counts they share). Importers use the names re-exported here.
"""

from __future__ import annotations

from trainops.render.cells import age, counts, table, to_json, usd, worst
from trainops.render.census import census_markdown, census_text
from trainops.render.markdown import html_text, plan_markdown
from trainops.render.plan import (
    action_cells,
    by_job,
    data_lines,
    data_text,
    drift_lines,
    drift_text,
    hyperparameter_lines,
    hyperparameter_text,
    iter_plan_rows,
    job_row,
    money_line,
    spec_diffs_text,
    summary_line,
    workdir_lines,
    workdir_text,
)
from trainops.render.problems import (
    ANNOTATION_LIMIT,
    error_text,
    github_annotations,
    problem_dict,
    problem_text,
    problems_text,
)
from trainops.render.sets import (
    HEALTH_ORDER,
    SYNC_ORDER,
    iter_grouped_rows,
    set_members,
    set_reason,
    set_row,
    set_total,
    standing,
)

__all__ = [
    "ANNOTATION_LIMIT",
    "HEALTH_ORDER",
    "SYNC_ORDER",
    "action_cells",
    "age",
    "by_job",
    "census_markdown",
    "census_text",
    "counts",
    "data_lines",
    "data_text",
    "drift_lines",
    "drift_text",
    "error_text",
    "github_annotations",
    "html_text",
    "hyperparameter_lines",
    "hyperparameter_text",
    "iter_grouped_rows",
    "iter_plan_rows",
    "job_row",
    "money_line",
    "plan_markdown",
    "problem_dict",
    "problem_text",
    "problems_text",
    "set_members",
    "set_reason",
    "set_row",
    "set_total",
    "spec_diffs_text",
    "standing",
    "summary_line",
    "table",
    "to_json",
    "usd",
    "workdir_lines",
    "workdir_text",
    "worst",
]
