"""Which spec fields a change touches: a job's spec in git against the snapshot of its last
submitted run on the state branch (`snapshots/<xx>/<job>/<revision>.yaml`), for the plan on a pull
request (`input.steps: 1000 -> 2000`). `spec.env` is listed name by name (`env: + HF_TOKEN`), and
a name that holds a credential is marked, so a reviewer sees which secrets a change hands to a job
(DESIGN §13). Pure: text and values in, lines out.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from trainops.manifest import OUTPUT_REF, set_of
from trainops.scrub import is_credential_name
from trainops.yamlsource import load_bytes

if TYPE_CHECKING:
    from trainops.plan import Desired
    from trainops.state.model import JobState

__all__ = [
    "CREDENTIAL_NOTE",
    "diffs_markdown",
    "env_changes",
    "grouped_diffs",
    "members_text",
    "spec_changes",
    "spec_diffs",
]

_UNSET = object()
CREDENTIAL_NOTE = " (credential: "  # opens the mark on an env line whose name is a credential
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")


def env_changes(
    before: Iterable[Any], after: Iterable[Any], credentials: Collection[str] = ()
) -> list[str]:
    """`spec.env` names added (`env: + NAME`), then removed (`env: - NAME`), each sorted; a name
    that holds a credential (the scrubber's names, or `credentials`: a configured `token_env`)
    says so: `env: + HF_TOKEN (credential: passes HF_TOKEN to the job)`. Items that are not
    variable names (a forged snapshot) are left out."""
    old, new = _names(before), _names(after)
    lines = []
    for sign, names, what in (("+", new - old, "passes"), ("-", old - new, "no longer passes")):
        for name in sorted(names):
            mark = ""
            if is_credential_name(name, credentials):
                mark = f"{CREDENTIAL_NOTE}{what} {name} to the job)"
            lines.append(f"env: {sign} {name}{mark}")
    return lines


def spec_changes(
    snapshot_text: str, spec: Mapping[str, Any], credentials: Collection[str] = ()
) -> list[str]:
    """Changed spec fields between a snapshot (the YAML manifest on the state branch) and a new
    spec (the manifest's `spec`, defaults filled): `input.steps: 1000 -> 2000`, sorted, then the
    `env` names added and removed (`env_changes`).

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
    old_env, new_env = old_spec.get("env"), spec.get("env")
    before = _flatten({k: v for k, v in old_spec.items() if k != "env"})
    after = _flatten({k: v for k, v in spec.items() if k != "env"})
    lines = []
    for key in sorted(before.keys() | after.keys()):
        was, now = before.get(key, _UNSET), after.get(key, _UNSET)
        if _same(was, now) or OUTPUT_REF.search(json.dumps(now if now is not _UNSET else None)):
            continue
        lines.append(f"{key}: {_value(was)} -> {_value(now)}")
    return lines + env_changes(_listed(old_env), _listed(new_env), credentials)


def spec_diffs(
    files: Mapping[str, str],
    state: Mapping[str, JobState],
    desired: Desired,
    trainer: Callable[[Any], str | None] = lambda _spec: None,
    new_revisions_only: bool = False,
    submitting: Collection[str] = (),
    credentials: Collection[str] = (),
) -> dict[str, list[str]]:
    """For each job in git whose latest run has a snapshot in `files` (a plan's `Pass.files`):
    the spec fields changed since that snapshot. A job that never ran lists the `env` names it
    would pass (all added). Jobs without changes are left out. With `new_revisions_only`, only
    jobs whose revision differs from that run's, the jobs in `submitting` (a retry passes today's
    `env`) and jobs that pass variables (which credentials they get shows even at the same
    revision) are compared: the terminal plan's cheap path, a snapshot parsed only for those.

    `trainer` resolves a spec's trainer as the snapshot recorded it (`Workspace.trainer`: the
    version pinned by the lock), so a lock-pinned trainer does not show as changed.
    `credentials`: more variable names to mark as credentials (a configured `token_env`).
    """
    diffs: dict[str, list[str]] = {}
    for name, target in sorted(desired.targets.items()):
        job_state = state.get(name)
        if job_state is None or not job_state.runs:
            changes = env_changes((), getattr(target.job.spec, "env", ()), credentials)
            if changes:
                diffs[name] = changes
            continue
        runs = [r for r in job_state.runs if r.snapshot in files]
        if not runs:
            continue
        passes_env = bool(getattr(target.job.spec, "env", None))
        same = runs[-1].revision == target.revision
        if new_revisions_only and same and name not in submitting and not passes_env:
            continue
        spec = target.job.manifest.model_dump(mode="json")["spec"]
        resolved = trainer(target.job.spec)
        if resolved:
            spec["trainer"] = resolved
        changes = spec_changes(files[runs[-1].snapshot], spec, credentials)
        if changes:
            diffs[name] = changes
    return diffs


def grouped_diffs(
    diffs: Mapping[str, Sequence[str]],
) -> list[tuple[str, tuple[str, ...], Sequence[str]]]:
    """Each job's changed spec fields, the members of a sweep set (DESIGN §21) that changed
    alike together: a change of the set's template is one entry, not one per member.
    `(heading, jobs, changes)` in order of heading: a job's own name, or the set's name when
    more than one of its members share the changes."""
    out: list[tuple[str, tuple[str, ...], Sequence[str]]] = []
    by_set: dict[str, dict[tuple[str, ...], list[str]]] = {}
    for name, changes in sorted(diffs.items()):
        group = set_of(name)
        if group:
            by_set.setdefault(group, {}).setdefault(tuple(changes), []).append(name)
        else:
            out.append((name, (name,), changes))
    for group, alike in by_set.items():
        for changes, names in alike.items():
            out.append((group if len(names) > 1 else names[0], tuple(names), list(changes)))
    return sorted(out, key=lambda entry: (entry[0], entry[1]))


def members_text(names: Sequence[str], shown: int = 3) -> str:
    """`4 members: lora.a, lora.b, lora.c and 1 more`."""
    listed = ", ".join(names[:shown])
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return f"{len(names)} members: {listed}{more}"


def diffs_markdown(diffs: Mapping[str, Sequence[str]], per_job: int = 20) -> str:
    """A markdown section listing each job's changed spec fields ('' when there are none); the
    members of a set that changed alike once (`grouped_diffs`)."""
    if not diffs:
        return ""
    lines = ["", "#### Changed spec fields (since the last submitted revision)", ""]
    for heading, names, changes in grouped_diffs(diffs):
        if len(names) > 1:
            members = ", ".join(f"`{_code(n)}`" for n in names[:3])
            more = f" and {len(names) - 3} more" if len(names) > 3 else ""
            lines.append(f"- `{_code(heading)}` (set, {len(names)} members: {members}{more})")
        else:
            lines.append(f"- `{_code(heading)}`")
        # credential marks first: cut by `per_job`, a reviewer must still see those
        marked = sorted(changes, key=lambda c: CREDENTIAL_NOTE not in c)
        for change in marked[:per_job]:
            field, note, rest = change.partition(CREDENTIAL_NOTE)
            mark = f" ⚠️ **credential: {_code(rest.removesuffix(')'))}**" if note else ""
            lines.append(f"  - `{_code(field)}`{mark}")
        if len(changes) > per_job:
            lines.append(f"  - … and {len(changes) - per_job} more")
    return "\n".join(lines) + "\n"


def _same(was: Any, now: Any) -> bool:
    """Equal, or a field absent on one side and empty on the other (a snapshot written before
    the field existed)."""
    empty: tuple[Any, ...] = (None, [], {})
    return was == now or (was is _UNSET and now in empty) or (now is _UNSET and was in empty)


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _names(values: Iterable[Any]) -> set[str]:
    return {v for v in values if isinstance(v, str) and _ENV_NAME.fullmatch(v)}


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
