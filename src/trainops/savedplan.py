"""Saved plans (DESIGN §20): `plan --out FILE` binds a plan's actions to the commit, the state
version, the lock digest and the price table; `apply FILE` carries them out only when the pass
it makes plans exactly those actions from exactly that, and `show FILE` prints one.

This module is the file: its shape (`SavedPlanDoc`; `schemas/plan.v1.json` is generated from
it), writing (`dump`, every string scrubbed: the file is a CI artifact), reading a file a user
may have edited, truncated or brought from elsewhere (`load`: a located problem, never a
traceback), what went stale (`stale_lines`, pure) and the `Plan` that `show` renders.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from json.decoder import scanstring  # type: ignore[attr-defined]
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from trainops.errors import InvalidInput, Problem, TrainopsError
from trainops.output import ReportDoc

FORMAT = "trainops-plan/v1"
SCHEMA_FILE = "plan.v1.json"
# A plan of 30,000 jobs is about 20 MB; anything much larger is not a plan trainops wrote.
MAX_BYTES = 256 * 1024 * 1024


class _Shape(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PlannedAction(_Shape):
    """One action as planned: what apply compares (op, job, revision, attempt, run, target)
    and its worst case, which a price change moves."""

    op: Literal["adopt", "cancel", "submit", "deliver", "promote"]
    job: str
    revision: str | None = None
    attempt: int | None = Field(default=None, ge=1)
    run_id: str | None = None
    target: str | None = None
    candidate: str | None = Field(default=None, description="promote: the run the gate judged")
    reason: str | None = None
    worst_case_usd: float | None = Field(
        default=None, description="submit: the attempt's worst case; null: unbounded or none"
    )
    timeout_seconds: int | None = Field(
        default=None, description="submit: what the provider stops the run at, when it does"
    )


class _Bound(_Shape):
    """The fields of a saved plan but its report."""

    format: Literal["trainops-plan/v1"]
    digest: str = Field(
        pattern=r"^sha256:[0-9a-f]{64}$",
        description="sha256 of the file as written, with this value as 64 zeros: a file "
        "edited by hand is refused as such",
    )
    repository: str = Field(description="the repository id the plan was made in (DESIGN §9)")
    commit: str = Field(pattern=r"^[0-9a-f]{40}$|^[0-9a-f]{64}$")
    state_version: str = Field(description="the state branch's commit the plan read; '' none")
    lock_digest: str = Field(description="sha256 of trainops.lock at the commit; '' none")
    prices_digest: str = Field(pattern=r"^sha256:[0-9a-f]{64}$")
    prices_usd_per_second: dict[str, float]
    created_at: str = Field(description="when the plan was made, ISO 8601 UTC")
    actions: list[PlannedAction]


class SavedPlanDoc(_Bound):
    """What `trainops plan --out FILE` writes."""

    model_config = ConfigDict(title="trainops saved plan", extra="forbid", frozen=True)

    report: ReportDoc = Field(description="the plan as `plan --output json` printed it")


class AppliedPlan(_Bound):
    """A saved plan as `apply FILE` reads it: its report (what `show` prints; apply only
    quotes its jobs' runs when the state moved) is not modelled job by job, which would cost
    more than the rest of the check over 10,000 jobs."""

    report: dict[str, Any]


@dataclass(frozen=True)
class Binding:
    """What a plan is made from, besides the state: the workspace's side of the check."""

    repository: str
    commit: str
    lock_digest: str
    prices: Mapping[str, float]


class StalePlan(TrainopsError):
    """A saved plan that does not hold any more (DESIGN §20): nothing was done. `lines` say
    what went stale, one each."""

    def __init__(self, file: str, lines: Sequence[str]) -> None:
        super().__init__(
            f"saved plan {file} is stale: nothing was submitted or canceled",
            "run `trainops plan --out FILE` again, review it, and apply the new file",
        )
        self.lines = list(lines)


def action_key(action: PlannedAction) -> tuple[Any, ...]:
    """What makes two planned actions the same action: never the reason (a cancel's reason
    may quote a cost that grows by the second) nor the worst case (compared on its own)."""
    return (
        action.op,
        action.job,
        action.revision,
        action.attempt,
        action.run_id,
        action.target,
        action.candidate,
    )


def describe(action: PlannedAction) -> str:
    """One planned action in words, as `trainops.plan.describe` says an action."""
    if action.op in ("submit", "adopt"):
        return f"{action.op} {action.job} revision {action.revision} attempt {action.attempt}"
    if action.op == "cancel":
        return f"cancel {action.job} run {action.run_id}"
    if action.op == "promote":
        to = f"run {action.run_id}" if action.run_id else "nothing (held)"
        return f"promote {action.job} {action.target} to {to}"
    return f"deliver {action.job} run {action.run_id} to {action.target}"


def planned(plan: Any) -> list[PlannedAction]:
    """The actions of a `Plan`, each with its worst case and provider timeout."""
    from trainops.plan import Adopt, Cancel, Deliver, Promote, Submit

    out = []
    for a in plan.actions:
        fields: dict[str, Any] = {"op": a.op.value, "job": a.job}
        if isinstance(a, Submit | Adopt | Cancel):
            fields.update(revision=a.revision, attempt=a.attempt)
        if isinstance(a, Cancel | Deliver | Promote):
            fields["run_id"] = a.run_id or None
        if isinstance(a, Submit | Cancel):
            fields["reason"] = a.reason
        if isinstance(a, Deliver | Promote):
            fields["target"] = a.target
        if isinstance(a, Promote):
            fields.update(candidate=a.candidate or None, reason=a.verdict or None)
        if isinstance(a, Submit):
            view = plan.jobs.get(a.job)
            estimate = view.estimate if view is not None else None
            fields["worst_case_usd"] = None if estimate is None else estimate.attempt_usd
            fields["timeout_seconds"] = view.timeout if view is not None else None
        out.append(PlannedAction(**fields))
    return out


def prices_digest(prices: Mapping[str, float]) -> str:
    text = json.dumps({k: float(v) for k, v in prices.items()}, sort_keys=True)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def lock_digest(raw: bytes | None) -> str:
    return "" if raw is None else "sha256:" + hashlib.sha256(raw).hexdigest()


def make(
    binding: Binding, state_version: str, plan: Any, report: str, created_at: str
) -> SavedPlanDoc:
    """The saved plan of `plan` (its JSON report `report`, as `plan --output json` printed it)."""
    from trainops.scrub import scrub_json, scrubber

    body = {
        "format": FORMAT,
        "repository": binding.repository,
        "commit": binding.commit,
        "state_version": state_version,
        "lock_digest": binding.lock_digest,
        "prices_digest": prices_digest(binding.prices),
        "prices_usd_per_second": {k: float(v) for k, v in sorted(binding.prices.items())},
        "created_at": created_at,
        "actions": [a.model_dump() for a in planned(plan)],
        "report": json.loads(report),
    }
    # The file is attached to CI artifacts: no credential reaches it, whatever a run's error,
    # output or a reason quotes (DESIGN §13). The digest is of what is written.
    body = scrub_json(body, scrubber())
    unsigned = SavedPlanDoc(digest=_UNSIGNED, **body)
    return unsigned.model_copy(update={"digest": _digest_of(dump(unsigned).encode())})


def dump(doc: SavedPlanDoc) -> str:
    return doc.model_dump_json(indent=2) + "\n"


_UNSIGNED = "sha256:" + "0" * 64
# The digest is the document's second field (after the fixed `format`): its first occurrence.
_DIGEST = re.compile(rb'"digest": *"(sha256:[0-9a-f]{64})"')


def _digest_of(raw: bytes) -> str:
    """sha256 of `raw` with its digest's value as zeros (`_UNSIGNED`)."""
    found = _DIGEST.search(raw, 0, 4096)
    if found is not None:
        raw = raw[: found.start(1)] + _UNSIGNED.encode() + raw[found.end(1) :]
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def sign(text: str) -> str:
    """`text` (a saved plan's JSON) with its digest made to match: what anyone who reads this
    source can do to an edited file. The digest says "edited by hand", it is no signature:
    what keeps an edited plan from doing harm is `stale_lines` (it only narrows)."""
    raw = text.encode()
    found = _DIGEST.search(raw, 0, 4096)
    if found is None:
        return text
    return (raw[: found.start(1)] + _digest_of(raw).encode() + raw[found.end(1) :]).decode()


def saved_plan_schemas() -> dict[str, str]:
    """`schemas/plan.v1.json`, as `trainops schema` writes it."""
    schema = SavedPlanDoc.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return {SCHEMA_FILE: json.dumps(schema, indent=2, sort_keys=True) + "\n"}


# ---- reading a file a user hands over -------------------------------------------------------


def load(raw: bytes, file: str) -> SavedPlanDoc:
    """The saved plan in `raw`, or `InvalidInput` with one located problem: not JSON (a
    truncated file: where it ends), not a plan (the first wrong field, at its line and
    column), or edited after trainops wrote it (the digest)."""
    hint = "make it again with `trainops plan --out FILE`"
    if len(raw) > MAX_BYTES:
        raise InvalidInput([Problem(file, message=f"larger than {MAX_BYTES} bytes", hint=hint)])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line, col = _line_col(raw[: exc.start].decode("utf-8", "replace"), exc.start)
        raise InvalidInput([Problem(file, line, col, "not UTF-8 text", hint)]) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        problem = Problem(file, exc.lineno, exc.colno, f"not a plan file: {exc.msg}", hint)
        raise InvalidInput([problem]) from None
    except RecursionError:
        raise InvalidInput([Problem(file, message="nested too deeply", hint=hint)]) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        where = _locate(text, ("format",)) if isinstance(data, dict) else (1, 1)
        message = f"not a trainops plan file (format must be {FORMAT!r})"
        raise InvalidInput([Problem(file, *where, message, hint)])
    try:
        doc = SavedPlanDoc.model_validate(data, strict=False)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        path = tuple(first["loc"])
        line, col = _locate(text, path)
        field = ".".join(str(p) for p in path) or "the document"
        problem = Problem(file, line, col, f"{field}: {first['msg']}", hint)
        raise InvalidInput([problem]) from None
    _check_digest(raw, text, doc.digest, file)
    return doc


def load_to_apply(raw: bytes, file: str) -> AppliedPlan:
    """What `apply FILE` checks, read in one pass of pydantic's own JSON parser; a file that
    does not validate is read again by `load`, to say where and why."""
    if len(raw) <= MAX_BYTES:
        try:
            doc = AppliedPlan.model_validate_json(raw)
        except ValidationError:
            pass
        else:
            _check_digest(raw, None, doc.digest, file)
            return doc
    load(raw, file)  # raises the located problem
    raise InvalidInput([Problem(file, message="not a trainops plan file")])


def _check_digest(raw: bytes, text: str | None, digest: str, file: str) -> None:
    if _digest_of(raw) == digest:
        return
    text = raw.decode("utf-8", "replace") if text is None else text
    line, col = _locate(text, ("digest",))
    message = "the plan was changed after trainops wrote it (its digest does not match)"
    hint = "make it again with `trainops plan --out FILE`"
    raise InvalidInput([Problem(file, line, col, message, hint)])


def _line_col(text: str, pos: int) -> tuple[int, int]:
    line = text.count("\n", 0, pos) + 1
    return line, pos - (text.rfind("\n", 0, pos) + 1) + 1


def _locate(text: str, path: Sequence[str | int]) -> tuple[int, int]:
    """Line and column of the value at `path` in JSON `text` (or of the deepest part of it
    that exists): walked with the standard decoder, only when a problem is reported."""
    decoder = json.JSONDecoder()
    ws = " \t\n\r"
    pos = 0

    def skip(i: int) -> int:
        while i < len(text) and text[i] in ws:
            i += 1
        return i

    pos = skip(pos)
    for part in path:
        if pos >= len(text):
            break
        found = None
        if text[pos] == "{" and isinstance(part, str):
            i = skip(pos + 1)
            while i < len(text) and text[i] == '"':
                key, i = scanstring(text, i + 1)
                i = skip(skip(i) + 1)  # the colon
                if key == part:
                    found = i
                    break
                _, i = decoder.raw_decode(text, i)
                i = skip(i)
                if i < len(text) and text[i] == ",":
                    i = skip(i + 1)
        elif text[pos] == "[" and isinstance(part, int):
            i = skip(pos + 1)
            for n in range(part + 1):
                if i >= len(text) or text[i] == "]":
                    break
                if n == part:
                    found = i
                    break
                _, i = decoder.raw_decode(text, i)
                i = skip(i)
                if i < len(text) and text[i] == ",":
                    i = skip(i + 1)
        if found is None:
            break
        pos = found
    return _line_col(text, pos)


# ---- what went stale ------------------------------------------------------------------------


def stale_lines(
    saved: SavedPlanDoc | AppliedPlan,
    binding: Binding,
    state_version: str,
    now_actions: Iterable[PlannedAction],
    now_jobs: Mapping[str, tuple[str | None, str]],
) -> list[str]:
    """Every way `saved` no longer holds against the pass about to act: the repository, the
    commit, the lock, each price, the state version and what moved in it (`now_jobs`: each
    job's run id and health), and each action that differs. Empty: apply may carry it out."""
    lines: list[str] = []
    if saved.repository != binding.repository:
        lines.append(
            f"the plan is of another repository: {saved.repository}, this is {binding.repository}"
        )
    if saved.commit != binding.commit:
        lines.append(
            f"commit moved: the plan is of {saved.commit[:12]}, apply is of {binding.commit[:12]}"
        )
    if saved.lock_digest != binding.lock_digest:
        lines.append(
            f"trainops.lock changed: {_short(saved.lock_digest)} -> {_short(binding.lock_digest)}"
        )
    lines += _price_lines(saved.prices_usd_per_second, binding.prices)
    if saved.prices_digest != prices_digest(saved.prices_usd_per_second):
        lines.append("the plan's price table does not match its own digest")
    actions = _action_lines(saved.actions, list(now_actions))
    if saved.state_version != state_version:
        lines.append(
            f"state moved: trainops/state is at {_short(state_version)}, the plan read "
            f"{_short(saved.state_version)}"
        )
        lines += _state_lines(saved, now_jobs, "state moved: ")
    elif actions:  # same state, other actions: what the providers said since
        lines += _state_lines(saved, now_jobs, "since the plan: ")
    return lines + actions


def _short(version: str) -> str:
    if not version:
        return "nothing"
    return version.removeprefix("sha256:")[:12]


def price_text(value: float) -> str:
    """`$0.0015/s`; more digits only where four would hide the figure."""
    text = f"{value:.4f}"
    return f"${text if float(text) == value else f'{value:.8g}'}/s"


def _price_lines(before: Mapping[str, float], after: Mapping[str, float]) -> list[str]:
    lines = []
    for hw in sorted(before.keys() | after.keys()):
        old, new = before.get(hw), after.get(hw)
        if old == new:
            continue
        if old is None:
            lines.append(f"price of {hw} added: {price_text(float(new or 0))}")
        elif new is None:
            lines.append(f"price of {hw} removed (was {price_text(old)})")
        else:
            lines.append(f"price of {hw} changed: {price_text(old)} -> {price_text(new)}")
    return lines


def _state_lines(
    saved: SavedPlanDoc | AppliedPlan, now_jobs: Mapping[str, tuple[str | None, str]], prefix: str
) -> list[str]:
    then = _jobs_seen(
        saved.report if isinstance(saved.report, dict) else saved.report.model_dump(mode="json")
    )
    lines = []
    for job in sorted(then.keys() | now_jobs.keys()):
        old, new = then.get(job), now_jobs.get(job)
        if old == new:
            continue
        if new is None:
            lines.append(f"{prefix}job {job} is no longer in the plan")
        elif old is None:
            lines.append(f"{prefix}job {job} is new since the plan")
        elif old[0] != new[0]:
            seen = f"run {old[0]} ({old[1]})" if old[0] else "no run"
            has = f"run {new[0]} ({new[1]})" if new[0] else "no run"
            lines.append(f"{prefix}job {job} now has {has}; the plan saw {seen}")
        else:
            lines.append(f"{prefix}job {job} run {new[0]} is now {new[1]} (the plan saw {old[1]})")
    return lines


def _jobs_seen(report: Mapping[str, Any]) -> dict[str, tuple[str | None, str]]:
    """Each job's run id and health as the saved report showed them (unmodelled: taken only
    where they have the expected types; anything else was not seen)."""
    jobs = report.get("jobs")
    seen: dict[str, tuple[str | None, str]] = {}
    for j in jobs if isinstance(jobs, list) else ():
        if not isinstance(j, dict) or not isinstance(j.get("job"), str):
            continue
        run_id, health = j.get("run_id"), j.get("health")
        if isinstance(health, str) and (run_id is None or isinstance(run_id, str)):
            seen[j["job"]] = (run_id, health)
    return seen


def _action_lines(then: Sequence[PlannedAction], now: Sequence[PlannedAction]) -> list[str]:
    before = {action_key(a): a for a in then}
    after = {action_key(a): a for a in now}
    lines = []
    if len(before) != len(then):
        lines.append("the plan lists one action twice")
    for key, action in before.items():
        if key not in after:
            instead = [describe(a) for a in now if a.job == action.job]
            also = f" (it has {', '.join(instead)})" if instead else ""
            lines.append(f"not in the current plan: {describe(action)}{also}")
        elif after[key].worst_case_usd != action.worst_case_usd:
            lines.append(
                f"worst case of {describe(action)} changed: {_usd(action.worst_case_usd)} -> "
                f"{_usd(after[key].worst_case_usd)}"
            )
        if key in after and after[key].timeout_seconds != action.timeout_seconds:
            # `show` prints it beside the attempt: what stops the run must be what was read.
            lines.append(
                f"timeout of {describe(action)} changed: {_seconds_text(action.timeout_seconds)}"
                f" -> {_seconds_text(after[key].timeout_seconds)}"
            )
    for key, action in after.items():
        if key not in before:
            lines.append(f"not in the saved plan: {describe(action)}")
    return lines


def report_lines(
    saved: SavedPlanDoc | AppliedPlan,
    now_jobs: Mapping[str, tuple[str, float | None]],
    now_new_usd: float | None,
) -> list[str]:
    """Every way the saved report (what `show` prints) claims other than the pass about to act:
    each job's revision and worst case (`now_jobs`, rounded as the report rounds them), the
    money line's new runs, and its actions against the file's. A file whose report shows $0.01
    while its actions cost $10.80 is refused: what a reviewer read is what apply carries out."""
    report = saved.report if isinstance(saved.report, dict) else saved.report.model_dump()
    lines: list[str] = []
    jobs = report.get("jobs")
    shown: dict[str, tuple[Any, Any]] = {}
    for j in jobs if isinstance(jobs, list) else ():
        if isinstance(j, dict) and isinstance(j.get("job"), str):
            shown[j["job"]] = (j.get("revision"), j.get("estimate_usd"))
    for job in sorted(shown.keys() | now_jobs.keys()):
        if job not in shown:
            lines.append(f"the plan's report leaves out job {job}")
            continue
        if job not in now_jobs:
            lines.append(f"the plan's report shows job {job}, which the current plan has not")
            continue
        (revision, worst), (now_revision, now_worst) = shown[job], now_jobs[job]
        if revision != now_revision:
            lines.append(
                f"the plan's report shows job {job} revision {revision}; the current plan: "
                f"{now_revision}"
            )
        if worst != now_worst:
            lines.append(
                f"the plan's report shows job {job} at worst case {_shown_usd(worst)}; the "
                f"current plan: {_usd(now_worst)}"
            )
    money = report.get("money")
    new_usd = money.get("new_usd") if isinstance(money, dict) else None
    if new_usd != now_new_usd:
        lines.append(
            f"the plan's report shows new runs up to {_shown_usd(new_usd)}; the current plan: "
            f"{_usd(now_new_usd)}"
        )
    actions = report.get("actions")
    quoted = [
        tuple(a.get(k) for k in ("op", "job", "revision", "attempt", "run_id", "target"))
        if isinstance(a, dict)
        else None
        for a in (actions if isinstance(actions, list) else [None])
    ]
    if quoted != [action_key(a)[:6] for a in saved.actions]:
        lines.append("the plan's report lists other actions than the plan's")
    return lines


def _shown_usd(value: Any) -> str:
    if value is None or (isinstance(value, int | float) and not isinstance(value, bool)):
        return _usd(value)
    return "(not a figure)"


def _seconds_text(value: int | None) -> str:
    return "none" if value is None else f"{value}s"


def _usd(value: float | None) -> str:
    from trainops.cost import usd

    return usd(value)


# ---- show -----------------------------------------------------------------------------------


def to_plan(doc: SavedPlanDoc) -> tuple[Any, float]:
    """The `Plan` a saved plan shows (as `plan` printed it) and the time it was made, which
    the ages are counted to."""
    from trainops import cost
    from trainops.plan import Adopt, Cancel, Deliver, JobView, Money, Plan, Promote, Submit
    from trainops.state.model import Run

    actions: list[Any] = []
    for a in doc.actions:
        if a.op == "submit":
            actions.append(Submit(a.job, a.revision or "", a.attempt or 1, a.reason or ""))
        elif a.op == "adopt":
            actions.append(Adopt(a.job, a.revision or "", a.attempt or 1))
        elif a.op == "cancel":
            actions.append(
                Cancel(a.job, a.run_id or "", a.revision or "", a.attempt or 1, a.reason or "")
            )
        elif a.op == "deliver":
            actions.append(Deliver(a.job, a.run_id or "", a.target or ""))
        else:
            actions.append(
                Promote(a.job, a.target or "", a.run_id or "", a.candidate or "", a.reason or "")
            )
    timeouts = {a.job: a.timeout_seconds for a in doc.actions if a.op == "submit"}
    jobs = {}
    for j in doc.report.jobs:
        run = None
        if j.created_at is not None or j.run_id is not None:
            run = Run(
                revision=j.revision,
                attempt=1,
                provider="",
                input_hash="",
                created_at=_seconds(j.created_at) if j.created_at else 0.0,
                run_id=j.run_id,
                health=j.health,
                outputs=dict(j.outputs),
                deliveries=dict(j.deliveries),
                promotions=dict(j.promotions),
                metrics=dict(j.metrics),
            )
        estimate = None
        if j.estimate_usd is not None:
            estimate = cost.Estimate(0.0, j.estimate_usd, j.estimate_usd)
        jobs[j.job] = JobView(
            j.job,
            j.sync,
            j.health,
            j.reason,
            j.revision,
            run,
            estimate,
            timeout=timeouts.get(j.job),
            spent_usd=j.cost_usd,
        )
    m = doc.report.money
    money = None
    if m is not None:
        money = Money(m.month, m.spent_usd, m.running_usd, m.new_usd, m.budget_usd)
    return Plan(tuple(actions), jobs, money), _seconds(doc.created_at)


def _seconds(iso: str) -> float:
    try:
        return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


__all__ = [
    "AppliedPlan",
    "Binding",
    "PlannedAction",
    "SavedPlanDoc",
    "StalePlan",
    "dump",
    "load",
    "load_to_apply",
    "make",
    "report_lines",
    "saved_plan_schemas",
    "sign",
    "stale_lines",
    "to_plan",
]
