"""The state branch's ref: where the state is now, and the compare-and-swap that moves it (§8, §9).

With a remote (`origin` when the repository has one) the remote's branch is the state: `version`
fetches it, and `swap` pushes a commit that must fast-forward it, a rejected push being the lost
swap. Without a remote the local branch is the state, and `swap` is `git update-ref <ref> <new>
<old>`: two processes on one clone cannot both win. A remote that lacks the branch while the local
branch exists (state written before the remote was added) serves the local branch, and the next
swap publishes it with its history.
"""

from __future__ import annotations

import time
from pathlib import Path

from trainops.errors import StateConflict, StateError
from trainops.scrub import scrub
from trainops.state.git.plumbing import Plumbing, last_line

__all__ = ["StateBranch"]

_ZERO_SHA = "0" * 40
_FETCH_ATTEMPTS = 3
# A push rejected by the client's own fast-forward check: the remote moved away from our base.
_REJECTED = "[rejected]"


class StateBranch:
    """The branch `branch` (`refs/heads/<branch>`) of the repository `git` works on, kept on
    `remote` when that is configured ("origin" falls back to local state when it is not)."""

    def __init__(self, git: Plumbing, branch: str, remote: str | None) -> None:
        self._git = git
        self.branch = branch
        self.ref = f"refs/heads/{branch}"
        if git.run("check-ref-format", self.ref, check=False).returncode != 0:
            raise StateError(f"invalid state branch name: {branch!r}")
        self.remote = self._resolve_remote(remote)
        self.tracking_ref = f"refs/remotes/{self.remote}/{branch}" if self.remote else None

    def _resolve_remote(self, remote: str | None) -> str | None:
        if remote is None:
            return None
        if remote in self._git.remotes():
            return remote
        if remote == "origin":
            return None  # the default: a repository without origin keeps its state locally
        raise StateError(f"the git remote {remote!r} is not configured in this repository")

    # -- where the state is -------------------------------------------------------------------

    def version(self) -> str:
        """Fetch when there is a remote and return the commit the state is at ("" if none)."""
        if self.remote is None or self.tracking_ref is None:
            return self._git.resolve(self.ref)
        refspec = f"+{self.ref}:{self.tracking_ref}"
        for attempt in range(1, _FETCH_ATTEMPTS + 1):
            result = self._git.run(
                "fetch",
                "--quiet",
                "--no-tags",
                "--no-write-fetch-head",
                "--no-recurse-submodules",
                self.remote,
                refspec,
                check=False,
            )
            if result.returncode == 0:
                return self._git.resolve(self.tracking_ref)
            if "couldn't find remote ref" in result.stderr:
                return self._git.resolve(self.ref)  # never pushed: the local branch, if any
            if "lock" not in result.stderr or attempt == _FETCH_ATTEMPTS:
                raise StateError(
                    f"could not fetch the state branch {self.branch!r} from remote "
                    f"{self.remote!r}: {last_line(result.stderr)}",
                    hint="check the network and that the remote is reachable with `git fetch`",
                )
            time.sleep(0.05 * attempt)  # another process on this clone updates the same ref
        raise AssertionError("unreachable")

    # -- moving it ----------------------------------------------------------------------------

    def refuse_checked_out(self) -> None:
        """A `StateError` when the branch is the repository's HEAD: trainops never writes a
        branch someone works on."""
        head = Path(self._git.git_dir, "HEAD")
        if head.is_file() and head.read_text().strip() == f"ref: {self.ref}":
            raise StateError(
                f"the state branch {self.branch!r} is checked out",
                hint="trainops writes it without a working tree: check out another branch",
            )

    def swap(self, base: str, new: str) -> None:
        """Move the state from `base` ("" for none yet) to the commit `new`, or raise
        `StateConflict` when it is no longer at `base`."""
        if self.remote is None:
            self._move_local_ref(base, new)
        else:
            self._push(base, new)

    def _move_local_ref(self, base: str, new: str) -> None:
        old = base or _ZERO_SHA
        result = self._git.run(
            "update-ref", "-m", "trainops: save", self.ref, new, old, check=False
        )
        if result.returncode == 0:
            return
        # "File exists": another process holds the ref's lock file, about to move it.
        if self._git.resolve(self.ref) != base or "File exists" in result.stderr:
            raise StateConflict(
                f"the state branch {self.branch!r} moved since version {base or '(none)'} was read"
            )
        raise StateError(
            f"could not update the state branch {self.branch!r}: {last_line(result.stderr)}"
        )

    def _push(self, base: str, new: str) -> None:
        assert self.remote is not None and self.tracking_ref is not None
        result = self._git.run(
            "push", "--porcelain", "--no-verify", self.remote, f"{new}:{self.ref}", check=False
        )
        status = ""
        for line in result.stdout.decode(errors="replace").splitlines():
            parts = line.split("\t")
            if len(parts) == 3 and parts[1].endswith(f":{self.ref}"):
                status = line
        if result.returncode == 0 and status and not status.startswith("!"):
            self._update_local_copies(new)
            return
        if status.startswith("!"):
            summary = status.split("\t")[2]
            if summary.startswith(_REJECTED):
                raise StateConflict(
                    f"the state branch {self.branch!r} on remote {self.remote!r} moved since "
                    f"version {base or '(none)'} was read ({summary})"
                )
            # Refused by the remote itself: a lost race on its ref lock, a hook, a protection.
            remote_now = self._remote_version()
            if remote_now == new:
                self._update_local_copies(new)
                return
            if remote_now is not None and remote_now != base:
                raise StateConflict(
                    f"the state branch {self.branch!r} on remote {self.remote!r} moved since "
                    f"version {base or '(none)'} was read ({summary})"
                )
            raise StateError(
                f"remote {self.remote!r} refused the state branch {self.branch!r}: "
                + scrub(summary),
                hint="the branch may be protected: allow trainops to push to it",
            )
        raise StateError(
            f"could not push the state branch {self.branch!r} to remote {self.remote!r}: "
            f"{last_line(result.stderr)}",
            hint="check the network and that the remote accepts pushes (`git push`)",
        )

    def _remote_version(self) -> str | None:
        """The remote's branch tip ("" when absent), or None when the remote cannot be asked."""
        result = self._git.run("ls-remote", self.remote or "", self.ref, check=False)
        if result.returncode != 0:
            return None
        for line in result.stdout.decode().splitlines():
            sha, _, name = line.partition("\t")
            if name == self.ref:
                return sha
        return ""

    def _update_local_copies(self, new: str) -> None:
        """Point the local branch and the remote-tracking ref at the pushed commit. Best effort:
        the remote is the state, and every `version()` fetches it again."""
        script = f"update {self.ref} {new}\nupdate {self.tracking_ref} {new}\n"
        self._git.run("update-ref", "--no-deref", "--stdin", input=script.encode(), check=False)
