"""`trainops trace REF` and `trainops checkout REF -o DIR` (DESIGN §19): from anything a user
holds — a run id, a Replicate model version, a weights URL, a Hub `repo@revision`, a local file —
back to the run that made it, and from a run to its output files, verified against the delivery
manifest's sha256s.

Read-only over the state branch, which is input (DESIGN §9): runs come through the validated
reader, and files are read only inside a run's own output folder (`delivery.bundle.gather`).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from trainops import escape, metrics
from trainops.errors import InvalidInput, TrainopsError, UsageError
from trainops.manifest import Member, set_of
from trainops.manifest.sweep import member_of_snapshot, scalar_text
from trainops.state.model import Run

_HASH_LIMIT = 1 << 30  # bytes of one local output hashed while searching by content


@dataclass(frozen=True)
class Found:
    job: str
    run: Run
    matched: str  # what REF matched: "run id", "model version", "weights URL", "file sha256"
    member: Member | None = None  # a sweep's member (DESIGN §21): its set and values


def recorded_runs(store: Any, snap: Any = None) -> Iterator[tuple[str, Run]]:
    """Every run the state branch records, newest state first: the tip (`snap`, else loaded),
    then its history. The one place that reads runs for trace; history is the state store's (the
    retention work, DESIGN §9) when it offers one, else the tip alone."""
    from trainops.providers import check_run
    from trainops.state.trust import parse_state, state_problems

    snap = store.load() if snap is None else snap
    states = parse_state(snap.files, check_run, snap.unreadable)
    bad = {n: s for n, s in states.items() if s.problem}
    if bad and len(bad) == len(states):
        raise InvalidInput(state_problems(bad))
    seen: set[tuple[str, str, int]] = set()
    for name, state in sorted(states.items()):
        for run in reversed(state.runs):
            seen.add((name, run.revision, run.attempt))
            yield name, run
    # The state store's `history(job)` (runs retention dropped from the tip, oldest first),
    # when this store has one.
    history = getattr(store, "history", None)
    if not callable(history):
        return
    for name, state in sorted(states.items()):
        if state.problem:
            continue
        for run in reversed(history(name)):
            if (name, run.revision, run.attempt) not in seen:
                seen.add((name, run.revision, run.attempt))
                yield name, run


_HEX = re.compile(r"^[0-9a-f]{7,40}\Z")


def hub_ref(ref: str) -> tuple[str, str] | None:
    """`owner/name@revision` -> (repo, revision); None for anything else."""
    repo, at, revision = ref.rpartition("@")
    if not at or not revision or repo.count("/") != 1 or "://" in ref:
        return None
    if not all(part and re.fullmatch(r"[A-Za-z0-9_.-]+", part) for part in repo.split("/")):
        return None
    return repo, revision


def _hub_commit(repo: str, revision: str) -> str:
    """The commit a branch or tag of a Hub repo points at (read-only: one `repo_info`)."""
    from huggingface_hub import HfApi

    from trainops.delivery.hubapi import endpoint, guard

    token = os.environ.get("HF_TOKEN") or os.environ.get("HUGGING_FACE_HUB_TOKEN") or None
    api = HfApi(endpoint=endpoint(), token=token)
    try:
        info = guard(
            lambda: api.repo_info(repo, revision=revision, repo_type="model"),
            f"resolving {repo}@{revision} on the Hub",
        )
    except TrainopsError as exc:
        raise UsageError(f"{repo}@{revision}: {exc.message}", exc.hint) from None
    return str(getattr(info, "sha", "") or "")


def trace(root: Path, ref: str) -> list[Found]:
    """The runs `ref` names; `UsageError` when none does."""
    from trainops.commands import open_store, refuse_bad_config
    from trainops.workspace import Workspace

    ws = Workspace.open(root)
    refuse_bad_config(ws)
    store = open_store(ws)
    digest = _file_digest(ref)
    folders = _Folders(ws)
    snap = store.load()
    found: list[Found] = []
    for job, run in recorded_runs(store, snap):
        if not run.run_id:
            continue
        matched = _match(job, run, ref, digest, folders)
        if matched:
            found.append(Found(job, run, matched))
    hub = hub_ref(ref) if not found else None
    if hub is not None and not _HEX.match(hub[1]):
        # A branch or tag (`acme/model@prod`): what it points at, asked of the Hub, then the
        # recorded runs again by that commit.
        commit = _hub_commit(*hub)
        if commit:
            resolved = f"{hub[0]}@{commit}"
            found = [
                Found(job, run, f"Hub revision ({hub[1]} -> {commit[:12]})")
                for job, run in recorded_runs(store, snap)
                if run.run_id and _match(job, run, resolved, "", folders)
            ]
    if not found:
        raise UsageError(
            f"no recorded run matches {ref!r}",
            "give a run id, a Replicate version owner/name:id, a weights URL, a Hub "
            "repo@revision or an output file",
        )
    return _with_members(found, store, snap.version, ws)


def _with_members(found: list[Found], store: Any, version: str, ws: Any) -> list[Found]:
    """Each run of a sweep's member with its set and values (DESIGN §21): from the header of the
    snapshot it was submitted with, else from the manifests at hand when a member of that name
    is in git (the name holds a hash of the values, so its values are the run's)."""
    paths = [f.run.snapshot for f in found if set_of(f.job) and f.run.snapshot]
    texts = store.read(version, sorted(set(paths))) if paths and version else {}
    in_git: dict[str, Member] | None = None
    out = []
    for f in found:
        if not set_of(f.job):
            out.append(f)
            continue
        member = member_of_snapshot(f.job, texts.get(f.run.snapshot, ""))
        if member is None:
            in_git = _members_in_git(ws) if in_git is None else in_git
            member = in_git.get(f.job)
        out.append(replace(f, member=member))
    return out


def _members_in_git(ws: Any) -> dict[str, Member]:
    """The members of the sweeps in the manifests at hand, by name ({} when they do not
    validate)."""
    try:
        targets = ws.desired().targets
    except TrainopsError:
        return {}
    return {n: t.job.member for n, t in targets.items() if t.job.member is not None}


def _match(job: str, run: Run, ref: str, digest: str, folders: _Folders) -> str:
    if ref == run.run_id:
        return "run id"
    if ref and ref == run.outputs.get("version"):
        return "model version"
    if ref.startswith(("http://", "https://")) and ref in run.outputs.values():
        return "weights URL"
    hub = hub_ref(ref)
    if hub is not None and _HEX.match(hub[1]):
        repo, revision = hub
        commit = run.delivered.get(f"huggingface:{repo}", "")
        if commit.startswith(revision):
            return "Hub revision (delivery)"
        # a Hugging Face job's own `weights` output is `repo@commit`
        weights = run.outputs.get("weights", "")
        if weights.partition("@")[0] == repo and weights.partition("@")[2].startswith(revision):
            return "Hub revision (output)"
    if digest:
        if digest in run.digests.values():
            return "file sha256 (delivery manifest)"
        if digest in folders.digests(run):
            return "file sha256 (recorded output)"
    return ""


class _Folders:
    """sha256 of a run's local output files, read only inside its own output folder."""

    def __init__(self, ws: Any) -> None:
        from trainops.providers import Providers

        self._providers = Providers(ws.root, ws.config, ws.lock)

    def digests(self, run: Run) -> set[str]:
        from trainops.providers.base import OutputFolder

        if not run.run_id or not any(os.path.isabs(v) for v in run.outputs.values()):
            return set()
        try:
            provider = self._providers[run.provider]
        except (KeyError, TrainopsError):
            return set()
        folder = provider.output_dir(run.run_id) if isinstance(provider, OutputFolder) else None
        if folder is None or not folder.is_dir():
            return set()
        root = folder.resolve()
        out = set()
        for value in run.outputs.values():
            path = Path(os.path.normpath(value))
            if not path.is_relative_to(folder) or path.is_symlink() or not path.is_file():
                continue
            if not path.resolve().is_relative_to(root) or path.stat().st_size > _HASH_LIMIT:
                continue
            out.add(_sha256(path))
        return out


def _file_digest(ref: str) -> str:
    path = Path(ref)
    try:
        if ref.startswith(("http://", "https://")) or not path.is_file():
            return ""
        return _sha256(path)
    except OSError:
        return ""


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def as_dict(found: Found) -> dict[str, Any]:
    run = found.run
    return {
        "job": found.job,
        "matched": found.matched,
        "revision": run.revision,
        "attempt": run.attempt,
        "provider": run.provider,
        "run_id": run.run_id,
        "health": run.health.value,
        "source_commit": run.source_commit,
        "snapshot": run.snapshot,
        "trainer": run.trainer,
        "cost_usd": run.cost_usd,
        "metrics": dict(run.metrics),
        "outputs": dict(run.outputs),
        "deliveries": dict(run.deliveries),
        "digests": dict(run.digests),
        "delivered": dict(run.delivered),
        "promotions": dict(run.promotions),
        "sweep": _sweep_dict(found),
    }


def _sweep_dict(found: Found) -> dict[str, Any] | None:
    """The set and values of a member's run; None for an ordinary job's (or values unknown:
    the set and member name only)."""
    set_name = set_of(found.job)
    if not set_name:
        return None
    values = dict(found.member.values) if found.member is not None else None
    return {"set": set_name, "member": found.job, "values": values}


def _sweep_lines(sweep: dict[str, Any] | None) -> list[str]:
    if sweep is None:
        return []
    head = f"  sweep: member of set {sweep['set']}"
    if sweep["values"] is None:
        return [head + " (its values are in no snapshot and no manifest at hand)"]
    return [head] + [
        f"  value {escape.line(k)}: {escape.line(_value_text(v))}"
        for k, v in sweep["values"].items()
    ]


def _one_line(text: str, limit: int = 200) -> str:
    line = escape.line(" ".join(text.split()))
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _value_text(value: Any) -> str:
    try:
        return scalar_text(value)
    except TypeError:
        import json

        return json.dumps(value, ensure_ascii=True)


def text(found: list[Found]) -> str:
    blocks = []
    for f in found:
        d = as_dict(f)
        lines = [f"{d['job']} (matched by {d['matched']})"]
        lines += _sweep_lines(d["sweep"])
        for key in (
            "revision",
            "attempt",
            "provider",
            "run_id",
            "health",
            "source_commit",
            "snapshot",
            "trainer",
        ):
            if d[key] not in ("", None):
                lines.append(f"  {key}: {escape.line(str(d[key]))}")
        lines.append(
            "  cost: " + ("unknown" if d["cost_usd"] is None else f"${d['cost_usd']:,.2f}")
        )
        if d["metrics"]:
            lines.append(f"  metrics: {metrics.headline(d['metrics'], count=64)}")
        for key in ("outputs", "deliveries", "promotions"):
            for k, v in sorted(d[key].items()):
                lines.append(f"  {key[:-1]} {escape.line(k)}: {escape.line(v)}")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


def markdown(found: list[Found]) -> str:
    code = escape.md_code
    lines = ["### trainops trace", ""]
    for f in found:
        d = as_dict(f)
        lines += [
            f"#### {code(d['job'])} (matched by {escape.md_text(d['matched'])})",
            "",
            "| | |",
            "|---|---|",
        ]
        sweep = d["sweep"]
        if sweep is not None:
            lines.append(f"| set | {code(sweep['set'], in_table=True)} |")
            for k, v in (sweep["values"] or {}).items():
                value = code(_one_line(_value_text(v)), in_table=True)
                lines.append(f"| value {code(_one_line(k), in_table=True)} | {value} |")
        for key in ("revision", "attempt", "provider", "run_id", "source_commit", "snapshot"):
            if d[key] not in ("", None):
                lines.append(f"| {key} | {code(str(d[key]), in_table=True)} |")
        cost = "unknown" if d["cost_usd"] is None else f"${d['cost_usd']:,.2f}"
        lines.append(f"| cost | {cost} |")
        for k, v in sorted(d["metrics"].items()):
            lines.append(f"| metric {code(k, in_table=True)} | {metrics.fmt(v)} |")
        for k, v in sorted(d["deliveries"].items()):
            lines.append(f"| delivery {code(k, in_table=True)} | {escape.md_text(v[:200])} |")
        lines.append("")
    return "\n".join(lines)


def checkout(root: Path, ref: str, out_dir: Path) -> list[str]:
    """Copy the outputs of the run `ref` names into `out_dir`, each file verified against the
    sha256 the delivery manifest recorded; nothing is left in `out_dir` when one does not match.
    Returns one line per file written."""
    from trainops.delivery.base import MANIFEST
    from trainops.delivery.bundle import gather
    from trainops.providers.base import OutputFolder

    found = trace(root, ref)
    runs = {(f.job, f.run.run_id) for f in found}
    if len(runs) > 1:
        names = ", ".join(sorted(f"{j} run {r}" for j, r in runs))
        raise UsageError(f"{ref!r} matches more than one run ({names})", "give the run id")
    job, run = found[0].job, found[0].run
    assert run.run_id is not None
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise UsageError(f"{out_dir} exists and is not an empty folder", "give a new folder")
    provider = _Folders(_workspace(root))._providers[run.provider]
    folder = provider.output_dir(run.run_id) if isinstance(provider, OutputFolder) else None
    lines: list[str] = []
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    with gather(job, run, folder) as bundle:
        tmp = Path(tempfile.mkdtemp(prefix=".trainops-checkout-", dir=out_dir.parent))
        try:
            for f in bundle.files:
                expected = run.digests.get(f.name)
                if f.name != MANIFEST and expected is not None and expected != f.sha256:
                    raise UsageError(
                        f"{job}: {f.name} of run {run.run_id} has sha256 {f.sha256}, but the "
                        f"delivery manifest recorded {expected}: nothing checked out",
                        "the output changed after it was delivered; fetch it from the delivery",
                    )
                shutil.copyfile(f.path, tmp / f.name)
                how = "verified" if expected else "not delivered: unverified"
                lines.append(
                    f"{f.name}  sha256 {f.sha256}  ({how})"
                    if f.name != MANIFEST
                    else f"{f.name}  (manifest)"
                )
            if out_dir.exists():
                out_dir.rmdir()
            tmp.rename(out_dir)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return lines


def _workspace(root: Path) -> Any:
    from trainops.workspace import Workspace

    return Workspace.open(root)


__all__ = ["Found", "as_dict", "checkout", "markdown", "recorded_runs", "text", "trace"]
