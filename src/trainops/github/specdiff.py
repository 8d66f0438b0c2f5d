"""Which spec fields a change touches: a job's spec in git against the snapshot of its last
submitted run on the state branch (`snapshots/<xx>/<job>/<revision>.yaml`), for the plan on a pull
request (`input.steps: 1000 -> 2000`). Pure: text and values in, lines out.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from trainops.manifest import OUTPUT_REF
from trainops.yamlsource import load_bytes

if TYPE_CHECKING:
    from trainops.plan import Desired
    from trainops.state.model import JobState

__all__ = ["diffs_markdown", "spec_changes", "spec_diffs"]

_UNSET = object()


def spec_changes(snapshot_text: str, spec: Mapping[str, Any]) -> list[str]:
    """Changed spec fields between a snapshot (the YAML manifest on the state branch) and a new
    spec (the manifest's `spec`, defaults filled): `input.steps: 1000 -> 2000`, sorted.

    Values holding an output reference (`${{ jobs.x.output.y }}`) are skipped: the snapshot holds
    what the reference resolved to at submit time, which the new spec cannot be compared with.
    """
    # The state branch is input (DESIGN §9): its snapshots are read with the bounded loader
    # manifests use, so aliases, nesting and size cannot make a plan hang or crash.
    docs, problems = load_bytes(snapshot_text.encode(), "snapshot")
    if problems or len(docs) != 1:
        return []
    old = docs[0].data
    old_spec = old.get("spec") if isinstance(old, dict) else None
    if not isinstance(old_spec, dict):
        return []
    before, after = _flatten(old_spec), _flatten(spec)
    lines = []
    for key in sorted(before.keys() | after.keys()):
        was, now = before.get(key, _UNSET), after.get(key, _UNSET)
        if _same(was, now) or OUTPUT_REF.search(json.dumps(now if now is not _UNSET else None)):
            continue
        lines.append(f"{key}: {_value(was)} -> {_value(now)}")
    return lines


def spec_diffs(
    files: Mapping[str, str],
    state: Mapping[str, JobState],
    desired: Desired,
    trainer: Callable[[Any], str | None] = lambda _spec: None,
    new_revisions_only: bool = False,
) -> dict[str, list[str]]:
    """For each job in git whose latest run has a snapshot in `files` (a plan's `Pass.files`):
    the spec fields changed since that snapshot. Jobs without changes are left out. With
    `new_revisions_only`, only jobs whose revision differs from that run's are compared (the
    terminal plan's cheap path: a snapshot is parsed only for a job that will train anew).

    `trainer` resolves a spec's trainer as the snapshot recorded it (`Workspace.trainer`: the
    version pinned by the lock), so a lock-pinned trainer does not show as changed.
    """
    diffs: dict[str, list[str]] = {}
    for name, target in sorted(desired.targets.items()):
        job_state = state.get(name)
        runs = [r for r in job_state.runs if r.snapshot in files] if job_state else []
        if not runs or (new_revisions_only and runs[-1].revision == target.revision):
            continue
        spec = target.job.manifest.model_dump(mode="json")["spec"]
        resolved = trainer(target.job.spec)
        if resolved:
            spec["trainer"] = resolved
        changes = spec_changes(files[runs[-1].snapshot], spec)
        if changes:
            diffs[name] = changes
    return diffs


def diffs_markdown(diffs: Mapping[str, Sequence[str]], per_job: int = 20) -> str:
    """A markdown section listing each job's changed spec fields ('' when there are none)."""
    if not diffs:
        return ""
    lines = ["", "#### Changed spec fields (since the last submitted revision)", ""]
    for name, changes in sorted(diffs.items()):
        lines.append(f"- `{name}`")
        lines += [f"  - `{_code(change)}`" for change in changes[:per_job]]
        if len(changes) > per_job:
            lines.append(f"  - … and {len(changes) - per_job} more")
    return "\n".join(lines) + "\n"


def _same(was: Any, now: Any) -> bool:
    """Equal, or a field absent on one side and empty on the other (a snapshot written before
    the field existed)."""
    empty: tuple[Any, ...] = (None, [], {})
    return was == now or (was is _UNSET and now in empty) or (now is _UNSET and was in empty)


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict) and (value or not prefix):
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(_flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: value}


def _value(value: Any) -> str:
    if value is _UNSET:
        return "(unset)"
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return text if len(text) <= 60 else text[:59] + "…"


def _code(text: str) -> str:
    line = " ".join(text.split())
    line = line if len(line) <= 200 else line[:199] + "…"
    return line.replace("`", "'")
