"""Listing on the local provider (DESIGN §20, `status --all`): the runs this clone claimed, read
from their records in its git directory (`records.py`), each judged against the jobs of this
repository by the marks its `meta.json` holds (job, revision, input hash, repository, this
clone's location). A local run belongs to the clone that started it (§10), so there are no
foreign local runs: the listing says so. A record that is a symlink, whose work folder under
`runs_dir` is one, or whose `meta.json` is malformed is skipped with a note, never followed.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from trainops.providers import _location as loc
from trainops.providers.base import Intent, Listed, Listing, Observation
from trainops.providers.local.records import RunFolders, marks_of, run_id_for, well_formed
from trainops.providers.marks import mismatch

NO_FOREIGN = "no foreign runs: every local run is the run of the clone that started it"


def not_claimed(probe: Intent, run_id: str, marks: Mapping[str, Any], here: str) -> str:
    """Why the run `run_id` whose record holds `marks` is not `probe`'s (empty when it is):
    this clone claimed it, its id is its own attempt's, and it names this job, revision,
    input and repository (a record written before the repository mark has none: it lies in
    this clone's git directory, which is this repository's)."""
    if not marks:
        return "this clone holds no well-formed record of it"
    if marks.get("location") != here:
        return f"it was claimed by another clone ({loc.where(str(marks.get('location')))})"
    own = run_id_for(str(marks.get("job")), str(marks.get("revision")), int(marks["attempt"]))
    if run_id != own:
        return f"its record names the run {own!r}"
    wanted = {"job": probe.job, "revision": probe.revision, "input_hash": probe.input_hash}
    if marks.get("repository"):
        wanted["repository"] = probe.repository
    return mismatch(wanted, marks, "record")


def list_records(
    folders: RunFolders,
    probes: Sequence[Intent],
    here: str,
    observe: Callable[[str, Path, Mapping[str, Any]], Observation],
) -> Listing:
    """Every run this clone claimed that carries a probe's marks, newest first: one read of
    the records folder (`calls` 1), whatever `max_calls`."""
    notes = [NO_FOREIGN]
    records = folders.records_dir
    if records is None:
        return Listing([], 0, notes=(*notes, "not in a git repository: no local runs"))
    if not folders.runs_dir.resolve().is_relative_to(folders.repo_root):
        notes.append(
            f"the runs folder {folders.display(folders.runs_dir)} leads outside the repository "
            "(a symlink): not read"
        )
        return Listing([], 0, notes=tuple(notes))
    try:
        with os.scandir(records) as scan:
            entries = sorted(scan, key=lambda e: e.name)
    except FileNotFoundError:
        return Listing([], 1, notes=tuple(notes))
    except OSError as exc:
        notes.append(f"cannot read {records}: {exc.strerror or exc}")
        return Listing([], 1, notes=tuple(notes))
    by_job = {p.job: p for p in probes}
    found: list[Listed] = []
    for entry in entries:
        if entry.name.startswith("."):
            continue  # a claim being prepared (`start.py`), or the record folder's own files
        why = _unreadable(folders, entry)
        if why:
            notes.append(f"skipped {entry.name[:80]!r}: {why}")
            continue
        record = Path(entry.path)
        marks = marks_of(entry.name, record)
        if marks is None:
            notes.append(f"skipped {entry.name[:80]!r}: its record (meta.json) is malformed")
            continue
        probe = by_job.get(marks["job"])
        if probe is None or not_claimed(probe, entry.name, marks, here):
            continue  # another job's, an earlier revision's, another clone's: not listed
        found.append(Listed(probe.job, observe(entry.name, record, marks), marks["created_at"]))
    found.sort(key=lambda listed: -listed.created_at)
    return Listing(found, 1, notes=tuple(notes))


def _unreadable(folders: RunFolders, entry: os.DirEntry[str]) -> str:
    """Why a records folder entry is not read as a run (empty when it is)."""
    if not well_formed(entry.name):
        return "not a run id"
    if entry.is_symlink():
        return "its record is a symlink (never followed)"
    if not entry.is_dir(follow_symlinks=False):
        return "its record is not a folder"
    work = folders.work_dir(entry.name)
    if work.is_symlink():
        return f"its work folder {folders.display(work)} is a symlink (never followed)"
    return ""
