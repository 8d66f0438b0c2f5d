"""Where local runs live: one clone of the repository on one machine (DESIGN §10).

A local run can be seen, canceled and delivered only from the clone that started it. Its
location is a random clone id kept in the clone's git directory (`<git-dir>/trainops/clone.json`,
which `git clean -xfd` never touches) together with the facts it was made for: the git
directory's absolute path, the machine id and the host name. When any of them differs — the clone
was copied (`cp -r`), its disk was moved to another machine, one image runs as several containers
— the id is not this clone's, and a new one is made on the next submit, so a copy never claims
the original's runs. docs/local-runs.md explains the choice.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

from trainops.errors import ProviderError

_MACHINE_ID_FILES = (Path("/etc/machine-id"), Path("/var/lib/dbus/machine-id"))
CLONE_FILE = "clone.json"
UNCLAIMED = "unclaimed"  # the id of a clone that never submitted: no recorded run is its own


def git_dir(repo_root: Path) -> Path | None:
    """The clone's own git directory (a worktree's, not the shared one: each worktree has its
    own runs), or None when `repo_root` is not in a git repository."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--absolute-git-dir"],
            cwd=repo_root,
            capture_output=True,
            text=True,
            check=False,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    path = out.stdout.strip()
    return Path(path) if out.returncode == 0 and path else None


def machine_id() -> str:
    """systemd's machine id where there is one. Shared by containers made from one image and by
    cloned VMs, so it is combined with the host name, never used alone."""
    for path in _MACHINE_ID_FILES:
        try:
            text = path.read_text(encoding="ascii", errors="replace").strip()
        except OSError:
            continue
        if text:
            return text
    return ""


@dataclass(frozen=True)
class Place:
    """The facts a clone id is valid for."""

    git_dir: str
    machine: str
    host: str

    @classmethod
    def here(cls, git_dir: Path) -> Place:
        return cls(str(git_dir), machine_id(), socket.gethostname())


def location(repo_root: Path, state_dir: Path | None, claim: bool) -> str:
    """`host:/path/to/clone#id`: how runs started from this clone are recorded. Read-only
    unless `claim`: a clone without a valid id (never submitted, or copied) gets an id that
    matches no recorded run; with `claim`, a fresh id is made and kept."""
    prefix = f"{socket.gethostname()}:{repo_root}"
    if state_dir is None:
        return f"{prefix}#{UNCLAIMED}"
    place = Place.here(state_dir.parent)
    path = state_dir / CLONE_FILE
    recorded = _read(path)
    if recorded is not None and recorded[1] == place:
        return f"{prefix}#{recorded[0]}"
    if not claim:
        return f"{prefix}#{UNCLAIMED}"
    clone_id = secrets.token_hex(8)
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{CLONE_FILE}.{secrets.token_hex(6)}.tmp")
        tmp.write_text(
            json.dumps({"id": clone_id, **place.__dict__}, sort_keys=True) + "\n",
            encoding="utf-8",
        )
        try:
            os.link(tmp, path)  # create-if-absent: two first submits of one clone agree
        except FileExistsError:
            kept = _read(path)
            if kept is None or kept[1] != place:  # a copied clone's, or garbage: ours now
                os.replace(tmp, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
    except OSError as exc:
        raise ProviderError(
            f"cannot record this clone's id in {path}: {exc.strerror or exc}",
            "the git directory must be writable by the user running trainops",
        ) from None
    kept = _read(path)
    return f"{prefix}#{kept[0] if kept is not None else clone_id}"


def where(location: str) -> str:
    """The human part of a location: `host:/path/to/clone`."""
    return location.rsplit("#", 1)[0] or "another clone"


def _read(path: Path) -> tuple[str, Place] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        place = Place(str(data["git_dir"]), str(data["machine"]), str(data["host"]))
        clone_id = str(data["id"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return (clone_id, place) if clone_id.isalnum() else None
