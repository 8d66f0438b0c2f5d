"""`GitStateStore`: the `StateStore` protocol on a branch of a git repository (DESIGN §8, §9).

A small face over its collaborators: `Plumbing` runs git, `StateBranch` knows where the state is
and moves it with compare-and-swap, `trees` builds a save's tree, `files` lists and reads the
state files. What only the store decides lives here: nothing is written unscrubbed (DESIGN §13),
an unchanged tree writes no commit, and the commit is made before the swap (`before-push`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from trainops.errors import StateError
from trainops.faults import crashpoint
from trainops.scrub import scrubber
from trainops.state.base import StateSnapshot
from trainops.state.git.branch import StateBranch
from trainops.state.git.files import (
    READ_AHEAD_BYTES,
    Listing,
    ReadAhead,
    check_path,
    decode,
    list_files,
    read_paths,
)
from trainops.state.git.plumbing import Plumbing, batch_answers
from trainops.state.git.trees import plan_tree, write_objects
from trainops.state.model import Run

__all__ = ["DEFAULT_AUTHOR", "DEFAULT_BRANCH", "GitStateStore"]

DEFAULT_BRANCH = "trainops/state"
DEFAULT_AUTHOR = "trainops <trainops@localhost>"


class GitStateStore:
    """`StateStore` on a branch of a git repository (default `trainops/state`).

    With a remote (`origin` when the repository has one) the remote's branch is the state: `load()`
    fetches it and `save()` pushes a commit that must fast-forward it. Without a remote the local
    branch is the state and `save()` moves it only from the version it was based on. A remote that
    lacks the branch while the local branch exists (state written before the remote was added)
    serves the local branch, and the next save publishes it with its history.

    An instance holds no open process: any number of stores, in threads or processes, may work
    on one clone at once, and the compare-and-swap decides which save wins.
    """

    def __init__(
        self,
        repo_dir: str | Path,
        branch: str = DEFAULT_BRANCH,
        remote: str | None = "origin",
        author: str = DEFAULT_AUTHOR,
        read_ahead_bytes: int = READ_AHEAD_BYTES,
    ) -> None:
        self._git = Plumbing(repo_dir)
        self._ahead: ReadAhead | None = None
        self.read_ahead_bytes = read_ahead_bytes
        self._branch = StateBranch(self._git, branch, remote)
        self.branch, self.ref = branch, self._branch.ref
        self.remote, self.tracking_ref = self._branch.remote, self._branch.tracking_ref
        match = re.fullmatch(r"\s*(.+?)\s*<([^<>]*)>\s*", author)
        if not match:
            raise StateError(f"invalid author {author!r}: expected 'Name <email>'")
        name, email = match.groups()
        self._identity = {
            "GIT_AUTHOR_NAME": name,
            "GIT_AUTHOR_EMAIL": email,
            "GIT_COMMITTER_NAME": name,
            "GIT_COMMITTER_EMAIL": email,
        }

    def __repr__(self) -> str:
        return (
            f"GitStateStore({self._git.git_dir!r}, branch={self.branch!r}, remote={self.remote!r})"
        )

    def load(self) -> StateSnapshot:
        """Fetch and read the run records (`state/`); snapshots are read by `read` when a
        diff or trace needs one (DESIGN §9). The first load after `read_ahead` takes what git
        read meanwhile."""
        ahead, self._ahead = self._ahead, None
        if ahead is not None:
            ahead.join()
            if ahead.error is not None:
                raise ahead.error
            assert ahead.listing is not None
            listing = ahead.listing
            if ahead.answer is not None:
                with ahead.answer:
                    return decode(listing, batch_answers(ahead.answer, listing.unique))
        else:
            listing = self._list()
        return decode(listing, self._git.cat_stream(listing.unique))

    def read_ahead(self) -> None:
        """Start the git side of the next `load` (fetch, list, read every state file into a
        temporary file) in the background, so that it runs while the caller does other work
        (validating manifests) rather than after it. Errors surface from `load`. The thread is
        joined at interpreter exit at the latest, so no git process outlives the command."""
        if self._ahead is None:
            self._ahead = ReadAhead(self._git, self._list, self.read_ahead_bytes)

    def _list(self) -> Listing:
        """The state branch's version and its `state/` files (path, blob), fetching first."""
        return list_files(self._git, self._branch.version())

    def save(self, base: str, changes: Mapping[str, str | None], message: str) -> str:
        # The state branch is pushed and readable by everyone with the repository: nothing is
        # written there unscrubbed (DESIGN §13), whatever a run's error or output says.
        clean = scrubber()
        wanted = {
            check_path(path): None if text is None else clean(text).encode()
            for path, text in changes.items()
        }
        message = clean(message)
        base_tree, new_tree, objects = plan_tree(self._git, base, wanted)
        if new_tree == base_tree:
            return base  # nothing changed: no commit, no push
        self._branch.refuse_checked_out()
        write_objects(self._git, objects)
        parents = ["-p", base] if base else []
        commit = self._git.run(
            "commit-tree",
            new_tree,
            *parents,
            "--no-gpg-sign",
            input=message.encode(),
            env=self._identity,
        )
        new = commit.stdout.decode().strip()
        crashpoint("before-push")  # the commit exists, the state has not moved
        self._branch.swap(base, new)
        return new

    def read(self, version: str, paths: Sequence[str]) -> dict[str, str]:
        """The text of each of `paths` at `version` (one git process for all); a path that is
        missing there, not a file, too large or not UTF-8 is left out."""
        return read_paths(self._git, version, paths)

    def tip(self) -> str:
        """The version the state is at now (fetching first with a remote); "" if none."""
        return self._branch.version()

    def history(self, job: str) -> list[Run]:
        """Every run `job` ever had on this branch, oldest first (`trainops history`, `trace`)."""
        from trainops.state.history import job_history

        return job_history(self, job).runs
