"""Where the state files live on the state branch (DESIGN §9): one file per job, fanned out.

`state/<xx>/<job>.json` holds a job's `JobState`, `snapshots/<xx>/<job>/<revision>.yaml` the
manifest a revision was submitted with; `xx` is two hex digits of a hash of the job's name. Older
trainops kept `state/<job>.json` (read, and moved on write).
"""

from __future__ import annotations

import hashlib

STATE_DIR = "state"
SNAPSHOT_DIR = "snapshots"


def fanout(job: str) -> str:
    """The subdirectory a job's files live in: two hex digits of a hash of its name, so that
    a commit touching a few jobs rewrites a few small trees, never one tree of every job."""
    return hashlib.sha1(job.encode()).hexdigest()[:2]


def state_path(job: str) -> str:
    return f"{STATE_DIR}/{fanout(job)}/{job}.json"


def legacy_state_path(job: str) -> str:
    """Where trainops before the fan-out layout kept a job's file (read, and moved on write)."""
    return f"{STATE_DIR}/{job}.json"


def snapshot_path(job: str, revision: str) -> str:
    return f"{SNAPSHOT_DIR}/{fanout(job)}/{job}/{revision}.yaml"


def job_of_path(path: str) -> str | None:
    """The job a state file is for: `state/<xx>/<job>.json` (xx its fan-out) or the legacy
    `state/<job>.json`; None for any other path."""
    parts = path.split("/")
    if parts[0] != STATE_DIR or not parts[-1].endswith(".json"):
        return None
    name = parts[-1][: -len(".json")]
    if len(parts) == 2 or (len(parts) == 3 and parts[1] == fanout(name)):
        return name
    return None
