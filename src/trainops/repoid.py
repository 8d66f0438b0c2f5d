"""The repository id (DESIGN §9 "Ownership marks"): which repository a run was submitted for.

Every submission carries it (an HF Jobs label, Ray metadata and a scoped submission id), and a
recorded run is acted on only when its provider record carries this repository's id. It must
therefore be the same wherever this repository is applied from (GitHub Actions, `serve`'s
clone, a laptop) and must never come from a file a pull request can change. In order:

1. `TRAINOPS_REPOSITORY_ID`, verbatim: for setups with no remote, or to keep one id across a
   move to another host.
2. In GitHub Actions, `GITHUB_REPOSITORY` on `GITHUB_SERVER_URL`'s host: `github.com/owner/name`.
3. The `origin` remote's URL, normalised to `host/owner/name` (scheme, credentials, port and
   `.git` dropped, lower case), so `git@github.com:Owner/Name.git` and
   `https://x-access-token:...@github.com/owner/name` are both `github.com/owner/name`; a remote
   that is a path on this machine is `file:` and its resolved path.
4. Without a remote: `clone:` and a digest of the clone's git directory (stable per clone).
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlsplit

ENV = "TRAINOPS_REPOSITORY_ID"
_SCP = re.compile(r"^(?:[^@/]+@)?(?P<host>[^:/]+):(?P<path>[^/].*)$")  # git@host:owner/name


def repository_id(root: Path, environ: Mapping[str, str] | None = None) -> str:
    """This repository's id (see the module's docstring for where it comes from)."""
    env = os.environ if environ is None else environ
    explicit = env.get(ENV, "").strip()
    if explicit:
        return explicit
    github = env.get("GITHUB_REPOSITORY", "").strip()
    if github and env.get("GITHUB_ACTIONS") == "true":
        host = urlsplit(env.get("GITHUB_SERVER_URL") or "https://github.com").hostname
        return f"{host or 'github.com'}/{github}".lower()
    return _from_clone(str(root.resolve()))


def scope(repository: str) -> str:
    """A short digest of a repository id, for ids with a length or alphabet limit (Ray's
    submission ids): 10 hex digits."""
    return hashlib.sha256(repository.encode()).hexdigest()[:10]


def normalise_url(url: str) -> str:
    """`host/path` of a git remote URL, without scheme, credentials, port, `.git` or case;
    "" when it is not a URL of a remote host."""
    url = url.strip()
    if "://" in url:
        parts = urlsplit(url)
        host, path = parts.hostname or "", parts.path
        if parts.scheme == "file":
            return ""
    else:
        m = _SCP.match(url)
        if m is None:
            return ""
        host, path = m.group("host"), m.group("path")
    path = path.strip("/").removesuffix(".git").strip("/")
    if not host or not path:
        return ""
    return f"{host}/{path}".lower()


@lru_cache(maxsize=16)
def _from_clone(root: str) -> str:
    origin = _git(root, "config", "--get", "remote.origin.url")
    found = normalise_url(origin) if origin else ""
    if found:
        return found
    if origin:  # a path on this machine (or file://): every clone of it says the same
        path = urlsplit(origin).path if origin.startswith("file://") else origin
        return "file:" + str((Path(root) / path).resolve()).removesuffix("/.git")
    git_dir = _git(root, "rev-parse", "--absolute-git-dir") or root
    common = _git(root, "rev-parse", "--git-common-dir") or git_dir
    where = str((Path(root) / common).resolve())
    return "clone:" + hashlib.sha256(where.encode()).hexdigest()[:16]


def _git(root: str, *args: str) -> str:
    try:
        done = subprocess.run(
            ["git", *args], cwd=root, capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


__all__ = ["ENV", "normalise_url", "repository_id", "scope"]
