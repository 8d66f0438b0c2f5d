"""The git state backend: state files on a branch that is never checked out (DESIGN §9).

Every write is git plumbing run through GitPython: new blobs and trees go into the object store
(`unpack-objects`/`index-pack`), then one `commit-tree`, then a ref update or a push, so the
user's working tree, index and HEAD are never touched. The compare-and-swap of §8 is
`git update-ref <ref> <new> <old>` without a remote, and a push that must fast-forward with one.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import struct
import subprocess
import tempfile
import threading
import time
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import git

from trainops.errors import StateConflict, StateError, StateSetupError
from trainops.faults import crashpoint
from trainops.scrub import scrub, scrubber
from trainops.state.base import StateSnapshot
from trainops.state.layout import STATE_DIR
from trainops.state.model import Run

__all__ = ["DEFAULT_AUTHOR", "DEFAULT_BRANCH", "GitStateStore"]

DEFAULT_BRANCH = "trainops/state"
DEFAULT_AUTHOR = "trainops <trainops@localhost>"

_FILE_MODE = 0o100644
_TREE_MODE = 0o040000
_ZERO_SHA = "0" * 40
_PACK_TREE, _PACK_BLOB = 2, 3  # object type codes of the pack format
_UNPACK_LIMIT = 100  # git's transfer.unpackLimit default
_FETCH_ATTEMPTS = 3
# A state file holds a job's current runs (DESIGN §9 retention): a few KiB. One pushed to the
# branch far larger is not read, so it cannot exhaust memory.
MAX_STATE_FILE_BYTES = 8 * 1024 * 1024
# The most `read_ahead` writes to a temporary file by default; a larger state (only a forged
# one comes near: 30,000 jobs' records are about 100 MB) is streamed by `load` as it is read.
READ_AHEAD_BYTES = 512 * 1024 * 1024
# A push rejected by the client's own fast-forward check: the remote moved away from our base.
_REJECTED = "[rejected]"

Entry = tuple[int, bytes]  # (mode, binary sha) of one tree entry
Tree = dict[bytes, Entry]  # name -> entry


@dataclass
class _Result:
    returncode: int
    stdout: bytes
    stderr: str


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
        try:
            self._repo = git.Repo(repo_dir)
        except (git.InvalidGitRepositoryError, git.NoSuchPathError) as exc:
            raise StateSetupError(
                f"{repo_dir} is not a git repository",
                hint="the git state backend keeps state on a branch of the repository: run "
                "`git init` or choose another state backend in trainops.yaml",
            ) from exc
        self._git_dir = str(self._repo.git_dir)
        self.branch = branch
        self._ahead: _ReadAhead | None = None
        self.read_ahead_bytes = read_ahead_bytes
        self.ref = f"refs/heads/{branch}"
        if self._git("check-ref-format", self.ref, check=False).returncode != 0:
            raise StateError(f"invalid state branch name: {branch!r}")
        self.remote = self._resolve_remote(remote)
        self.tracking_ref = f"refs/remotes/{self.remote}/{branch}" if self.remote else None
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
        return f"GitStateStore({self._git_dir!r}, branch={self.branch!r}, remote={self.remote!r})"

    # -- StateStore ---------------------------------------------------------------------------

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
                    return self._decode(listing, _batch_answers(ahead.answer, listing.unique))
        else:
            listing = self._list()
        return self._decode(listing, self._cat_stream(listing.unique))

    def read_ahead(self) -> None:
        """Start the git side of the next `load` (fetch, list, read every state file into a
        temporary file) in the background, so that it runs while the caller does other work
        (validating manifests) rather than after it. Errors surface from `load`. The thread is
        joined at interpreter exit at the latest, so no git process outlives the command."""
        if self._ahead is None:
            self._ahead = _ReadAhead(self)

    def _list(self) -> _Listing:
        """The state branch's version and its `state/` files (path, blob), fetching first."""
        version = self._current_version()
        listing = _Listing(version)
        if not version:
            return listing
        out = self._git(
            "ls-tree", "-r", "-l", "-z", "--full-tree", version, "--", f"{STATE_DIR}/"
        ).stdout
        for record in out.split(b"\0"):
            if not record:
                continue
            meta, raw_path = record.split(b"\t", 1)
            _mode, kind, sha, size = meta.split()
            if kind != b"blob":
                continue
            path = _decode(raw_path, "state path")
            if int(size) > MAX_STATE_FILE_BYTES:  # never read into memory
                listing.unreadable[path] = (
                    f"{int(size):,} bytes, over the {MAX_STATE_FILE_BYTES:,} a state file may hold"
                )
                continue
            listing.paths.append(path)
            listing.shas.append(sha)
            listing.size += int(size)
        listing.unique = [sha.decode() for sha in dict.fromkeys(listing.shas)]
        return listing

    def _decode(
        self, listing: _Listing, objects: Iterator[tuple[bytes, bytes] | None]
    ) -> StateSnapshot:
        if not listing.version:
            return StateSnapshot(version="", files={})
        # Decoded as git hands each file over: never every file's bytes beside its text.
        texts: dict[bytes, str | None] = {}
        for sha, obj in zip(listing.unique, objects, strict=True):
            if obj is None:
                raise StateError(f"state commit {listing.version} is missing object {sha}")
            try:
                texts[sha.encode()] = str(obj[1], "utf-8")
            except UnicodeDecodeError:
                texts[sha.encode()] = None
        files: dict[str, str] = {}
        unreadable = dict(listing.unreadable)
        for path, blob in zip(listing.paths, listing.shas, strict=True):
            text = texts[blob]
            if text is None:
                unreadable[path] = "not UTF-8 text"
            else:
                files[path] = text
        return StateSnapshot(version=listing.version, files=files, unreadable=unreadable)

    def save(self, base: str, changes: Mapping[str, str | None], message: str) -> str:
        # The state branch is pushed and readable by everyone with the repository: nothing is
        # written there unscrubbed (DESIGN §13), whatever a run's error or output says.
        clean = scrubber()
        wanted = {
            _check_path(path): _encode(None if text is None else clean(text))
            for path, text in changes.items()
        }
        message = clean(message)
        base_tree, new_tree, objects = self._plan_tree(base, wanted)
        if new_tree == base_tree:
            return base  # nothing changed: no commit, no push
        self._refuse_checked_out()
        self._write_objects(objects)
        parents = ["-p", base] if base else []
        commit = self._git(
            "commit-tree",
            new_tree,
            *parents,
            "--no-gpg-sign",
            input=message.encode(),
            env=self._identity,
        )
        new = commit.stdout.decode().strip()
        crashpoint("before-push")  # the commit exists, the state has not moved
        if self.remote is None:
            self._move_local_ref(base, new)
        else:
            self._push(base, new)
        return new

    def read(self, version: str, paths: Sequence[str]) -> dict[str, str]:
        """The text of each of `paths` at `version` (one git process for all); a path that is
        missing there, not a file, too large or not UTF-8 is left out."""
        if not version or not paths:
            return {}
        if not re.fullmatch(r"[0-9a-f]{40}", version):
            raise StateError(f"invalid state version {version!r}")
        wanted = [p for p in dict.fromkeys(paths) if _valid_path(p)]
        found = self._cat_batch([f"{version}:{p}" for p in wanted])
        out: dict[str, str] = {}
        for path, obj in zip(wanted, found, strict=True):
            if obj is None or obj[0] != b"blob" or len(obj[1]) > MAX_STATE_FILE_BYTES:
                continue
            try:
                out[path] = obj[1].decode()
            except UnicodeDecodeError:
                continue
        return out

    def tip(self) -> str:
        """The version the state is at now (fetching first with a remote); "" if none."""
        return self._current_version()

    def history(self, job: str) -> list[Run]:
        """Every run `job` ever had on this branch, oldest first (`trainops history`, `trace`)."""
        from trainops.state.history import job_history

        return job_history(self, job).runs

    # -- reading ------------------------------------------------------------------------------

    def _current_version(self) -> str:
        """Fetch when there is a remote and return the commit the state is at ("" if none)."""
        if self.remote is None or self.tracking_ref is None:
            return self._resolve(self.ref)
        refspec = f"+{self.ref}:{self.tracking_ref}"
        for attempt in range(1, _FETCH_ATTEMPTS + 1):
            result = self._git(
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
                return self._resolve(self.tracking_ref)
            if "couldn't find remote ref" in result.stderr:
                return self._resolve(self.ref)  # never pushed: the local branch, if any
            if "lock" not in result.stderr or attempt == _FETCH_ATTEMPTS:
                raise StateError(
                    f"could not fetch the state branch {self.branch!r} from remote "
                    f"{self.remote!r}: {_last_line(result.stderr)}",
                    hint="check the network and that the remote is reachable with `git fetch`",
                )
            time.sleep(0.05 * attempt)  # another process on this clone updates the same ref
        raise AssertionError("unreachable")

    def _resolve(self, ref: str) -> str:
        result = self._git("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", check=False)
        return result.stdout.decode().strip() if result.returncode == 0 else ""

    def _cat_batch(self, names: Sequence[str]) -> list[tuple[bytes, bytes] | None]:
        """Read many objects with one `git cat-file --batch`: (type, data), or None if missing."""
        return list(self._cat_stream(names))

    def _cat_stream(self, names: Sequence[str]) -> Iterator[tuple[bytes, bytes] | None]:
        """`_cat_batch`, each object handed over as git writes it: reading 30,000 state files
        holds one file's bytes at a time, not git's whole answer (and a copy of it) at once."""
        if not names:
            return
        request = "".join(f"{name}\n" for name in names).encode()
        command = [git.Git.GIT_PYTHON_GIT_EXECUTABLE or "git", "--git-dir", self._git_dir]
        handle = self._repo.git.execute(
            [*command, "cat-file", "--batch", "--buffer"],
            istream=subprocess.PIPE,
            as_process=True,
            env={"GIT_TERMINAL_PROMPT": "0"},
        )
        proc = handle.proc
        assert proc is not None and proc.stdin and proc.stdout and proc.stderr
        stdin, stdout, stderr = proc.stdin, proc.stdout, proc.stderr
        errors: list[bytes] = []
        answered = 0

        def feed() -> None:  # git answers while it reads: write from a thread, never deadlock
            with contextlib.suppress(BrokenPipeError):
                stdin.write(request)
            with contextlib.suppress(BrokenPipeError):
                stdin.close()

        def drain() -> None:
            errors.append(stderr.read())

        threads = [threading.Thread(target=feed), threading.Thread(target=drain)]
        for thread in threads:
            thread.start()
        try:
            for obj in _batch_answers(stdout, names, strict=False):
                answered += 1
                yield obj
        finally:
            stdout.close()
            for thread in threads:
                thread.join()
            proc.wait()
        if proc.returncode != 0 or answered != len(names):
            message = scrub(b"".join(errors).decode(errors="replace"))
            raise StateError(f"git cat-file failed: {_last_line(message)}")

    # -- building the new tree ----------------------------------------------------------------

    def _plan_tree(
        self, base: str, wanted: Mapping[str, bytes | None]
    ) -> tuple[str, str, list[tuple[int, bytes]]]:
        """Compute the tree of `base` with `wanted` applied, reading only the directories on
        the changed paths: unchanged subtrees are reused by sha. Returns the base and new root
        tree shas and the objects to write as (pack type, data), children before parents."""
        files_in: dict[str, dict[str, bytes | None]] = {"": {}}
        subdirs_in: dict[str, set[str]] = {"": set()}
        writes_under: set[str] = set()
        for path, data in wanted.items():
            parent, _, name = path.rpartition("/")
            files_in.setdefault(parent, {})[name] = data
            child = parent
            while child:
                up = child.rpartition("/")[0]
                files_in.setdefault(child, {})
                subdirs_in.setdefault(up, set()).add(child)
                if data is not None:
                    writes_under.add(child)
                child = up
        clash = sorted(set(wanted) & set(files_in))
        if clash:
            raise StateError(f"state change writes both a file and a directory at {clash[0]!r}")

        dirs = [d for d in sorted(files_in) if d]
        base_trees: dict[str, Tree] = {}
        base_root = _hash_object(b"tree", b"")  # the empty tree stands for "never written"
        if base:
            found = self._cat_batch([f"{base}^{{tree}}", *(f"{base}:{d}" for d in dirs)])
            if found[0] is None:
                raise StateError(f"state version {base!r} does not exist in this repository")
            base_root = _hash_object(b"tree", found[0][1])
            for d, obj in zip(["", *dirs], found, strict=True):
                if obj is not None and obj[0] == b"tree":
                    base_trees[d] = _parse_tree(obj[1])

        objects: list[tuple[int, bytes]] = []

        def build(d: str, old_sha: bytes | None) -> bytes | None:
            entries = dict(base_trees.get(d, {}))
            for name, data in files_in[d].items():
                path = f"{d}/{name}" if d else name
                key = name.encode()
                existing = entries.get(key)
                if existing is not None and existing[0] == _TREE_MODE:
                    raise StateError(f"state path {path!r} is a directory, not a file")
                if data is None:
                    entries.pop(key, None)
                    continue
                sha = _hash_object(b"blob", data)
                if existing is None or existing[1] != sha:
                    entries[key] = (_FILE_MODE, sha)
                    objects.append((_PACK_BLOB, data))
            for child in sorted(subdirs_in.get(d, ())):
                key = child.rpartition("/")[2].encode()
                existing = entries.get(key)
                if existing is not None and existing[0] != _TREE_MODE:
                    if child in writes_under:
                        raise StateError(f"state path {child!r} is a file, not a directory")
                    continue  # deleting below a file: nothing there to delete
                sub = build(child, existing[1] if existing else None)
                if sub is None:
                    entries.pop(key, None)
                else:
                    entries[key] = (_TREE_MODE, sub)
            if d and not entries:
                return None
            data = _tree_data(entries)
            sha = _hash_object(b"tree", data)
            if sha != old_sha:
                objects.append((_PACK_TREE, data))
            return sha

        new_root = build("", base_root)
        assert new_root is not None  # the root is kept even when empty
        return base_root.hex(), new_root.hex(), objects

    def _write_objects(self, objects: Sequence[tuple[int, bytes]]) -> None:
        """Store new objects with one git process, fed a pack built here. Like `git push`
        (transfer.unpackLimit), a few objects are stored loose and many are kept as one pack:
        a bulk write then costs one file instead of one per object."""
        if not objects:
            return
        if len(objects) < _UNPACK_LIMIT:
            self._git("unpack-objects", "-q", input=_pack(objects))
        else:
            self._git("index-pack", "--stdin", input=_pack(objects))

    # -- publishing ---------------------------------------------------------------------------

    def _refuse_checked_out(self) -> None:
        head = Path(self._git_dir, "HEAD")
        if head.is_file() and head.read_text().strip() == f"ref: {self.ref}":
            raise StateError(
                f"the state branch {self.branch!r} is checked out",
                hint="trainops writes it without a working tree: check out another branch",
            )

    def _move_local_ref(self, base: str, new: str) -> None:
        old = base or _ZERO_SHA
        result = self._git("update-ref", "-m", "trainops: save", self.ref, new, old, check=False)
        if result.returncode == 0:
            return
        # "File exists": another process holds the ref's lock file, about to move it.
        if self._resolve(self.ref) != base or "File exists" in result.stderr:
            raise StateConflict(
                f"the state branch {self.branch!r} moved since version {base or '(none)'} was read"
            )
        raise StateError(
            f"could not update the state branch {self.branch!r}: {_last_line(result.stderr)}"
        )

    def _push(self, base: str, new: str) -> None:
        assert self.remote is not None and self.tracking_ref is not None
        result = self._git(
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
            f"{_last_line(result.stderr)}",
            hint="check the network and that the remote accepts pushes (`git push`)",
        )

    def _remote_version(self) -> str | None:
        """The remote's branch tip ("" when absent), or None when the remote cannot be asked."""
        result = self._git("ls-remote", self.remote or "", self.ref, check=False)
        if result.returncode != 0:
            return None
        for line in result.stdout.decode().splitlines():
            sha, _, name = line.partition("\t")
            if name == self.ref:
                return sha
        return ""

    def _update_local_copies(self, new: str) -> None:
        """Point the local branch and the remote-tracking ref at the pushed commit. Best effort:
        the remote is the state, and every `load()` fetches it again."""
        script = f"update {self.ref} {new}\nupdate {self.tracking_ref} {new}\n"
        self._git("update-ref", "--no-deref", "--stdin", input=script.encode(), check=False)

    # -- running git --------------------------------------------------------------------------

    def _resolve_remote(self, remote: str | None) -> str | None:
        if remote is None:
            return None
        if remote in {r.name for r in self._repo.remotes}:
            return remote
        if remote == "origin":
            return None  # the default: a repository without origin keeps its state locally
        raise StateError(f"the git remote {remote!r} is not configured in this repository")

    def _git(
        self,
        *args: str,
        input: bytes | None = None,
        env: Mapping[str, str] | None = None,
        check: bool = True,
    ) -> _Result:
        command = [git.Git.GIT_PYTHON_GIT_EXECUTABLE or "git", "--git-dir", self._git_dir, *args]
        handle = self._repo.git.execute(
            command,
            istream=subprocess.PIPE if input is not None else None,
            as_process=True,
            # Never wait on a credential prompt; callers run unattended in CI.
            env={"GIT_TERMINAL_PROMPT": "0", **(env or {})},
        )
        proc = handle.proc
        assert proc is not None
        stdout, stderr = proc.communicate(input)
        result = _Result(proc.returncode, stdout, scrub(stderr.decode(errors="replace")))
        if check and result.returncode != 0:
            raise StateError(f"git {args[0]} failed: {_last_line(result.stderr)}")
        return result

    def _git_into(self, out: IO[bytes], *args: str, input: bytes) -> None:
        """`_git` with git's output written straight to the file `out`, never through this
        process (GitPython copies a redirected output itself, holding the interpreter)."""
        command = [git.Git.GIT_PYTHON_GIT_EXECUTABLE or "git", "--git-dir", self._git_dir, *args]
        env = {**os.environ, "LANGUAGE": "C", "LC_ALL": "C", "GIT_TERMINAL_PROMPT": "0"}
        done = subprocess.run(command, input=input, stdout=out, stderr=subprocess.PIPE, env=env)
        if done.returncode != 0:
            message = scrub(done.stderr.decode(errors="replace"))
            raise StateError(f"git {args[0]} failed: {_last_line(message)}")


@dataclass
class _Listing:
    """What `load` reads: the state version, each `state/` file's path and blob, and the files
    too large to read."""

    version: str
    paths: list[str] = field(default_factory=list)
    shas: list[bytes] = field(default_factory=list)
    unreadable: dict[str, str] = field(default_factory=dict)
    unique: list[str] = field(default_factory=list)  # the blobs to read, each once
    size: int = 0  # their bytes, at most (a blob listed twice is counted twice)


class _ReadAhead(threading.Thread):
    """`GitStateStore.read_ahead`: fetch and list, then `git cat-file --batch` of every state
    file into a temporary file, all of it git's work; the Python side only waits."""

    def __init__(self, store: GitStateStore) -> None:
        super().__init__(name="trainops-state-read-ahead")  # not a daemon: joined at exit
        self.store = store
        self.listing: _Listing | None = None
        self.answer: IO[bytes] | None = None
        self.error: BaseException | None = None
        self.start()

    def run(self) -> None:
        answer = tempfile.TemporaryFile()  # noqa: SIM115 (handed to `load`, which closes it)
        try:
            listing = self.store._list()
            if (
                listing.size > self.store.read_ahead_bytes
            ):  # `load` streams it instead of a file this big
                answer.close()
                self.listing = listing
                return
            if listing.unique:
                request = "".join(f"{name}\n" for name in listing.unique).encode()
                self.store._git_into(answer, "cat-file", "--batch", input=request)
                answer.seek(0)
            self.listing, self.answer = listing, answer
        except BaseException as exc:  # handed to `load`, in the caller's thread
            answer.close()
            self.error = exc


def _batch_answers(
    stream: IO[bytes], names: Sequence[str], strict: bool = True
) -> Iterator[tuple[bytes, bytes] | None]:
    """The objects of a `git cat-file --batch` answer to `names`, one at a time: (type, data),
    or None for a missing one. With `strict`, an answer that ends early is an error (without,
    the caller counts and reports it)."""
    for _ in names:
        header = stream.readline().rstrip(b"\n")
        if not header:
            if strict:
                raise StateError("git cat-file stopped before answering every object")
            return
        if header.endswith((b" missing", b" ambiguous")):
            yield None
            continue
        _sha, kind, size = header.rsplit(b" ", 2)
        yield kind, stream.read(int(size) + 1)[:-1]


def _valid_path(path: str) -> bool:
    parts = path.split("/")
    return not (
        not path
        or any(part in {"", ".", "..", ".git"} for part in parts)
        or any(ch in path for ch in "\0\n\r\\")
    )


def _check_path(path: str) -> str:
    if not _valid_path(path):
        raise StateError(f"invalid state path {path!r}: use a relative path like 'state/job.json'")
    return path


def _encode(text: str | None) -> bytes | None:
    return None if text is None else text.encode()


def _decode(data: bytes, what: str) -> str:
    try:
        return data.decode()
    except UnicodeDecodeError as exc:
        raise StateError(f"{what} is not UTF-8 text") from exc


def _hash_object(kind: bytes, data: bytes) -> bytes:
    return hashlib.sha1(b"%s %d\0" % (kind, len(data)) + data).digest()


def _tree_data(entries: Tree) -> bytes:
    # git orders entries by name, comparing a tree's name as if it ended with "/".
    ordered = sorted(entries.items(), key=lambda e: e[0] + b"/" if e[1][0] == _TREE_MODE else e[0])
    return b"".join(b"%o %s\0%s" % (mode, name, sha) for name, (mode, sha) in ordered)


def _pack(objects: Sequence[tuple[int, bytes]]) -> bytes:
    """A version 2 pack of whole (undeltified) objects: git's own transfer format."""
    chunks = [b"PACK", struct.pack(">II", 2, len(objects))]
    for kind, data in objects:
        size = len(data)
        header = bytearray()
        byte = kind << 4 | size & 0x0F
        size >>= 4
        while size:
            header.append(byte | 0x80)
            byte = size & 0x7F
            size >>= 7
        header.append(byte)
        chunks += [bytes(header), zlib.compress(data, 1)]
    body = b"".join(chunks)
    return body + hashlib.sha1(body).digest()


def _parse_tree(data: bytes) -> Tree:
    entries: Tree = {}
    pos = 0
    while pos < len(data):
        space = data.index(b" ", pos)
        nul = data.index(b"\0", space)
        entries[data[space + 1 : nul]] = (int(data[pos:space], 8), data[nul + 1 : nul + 21])
        pos = nul + 21
    return entries


def _last_line(text: str) -> str:
    """The line of git's stderr that says what failed: its first `fatal:`/`error:`, else the
    last line."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    for line in lines:
        if line.startswith(("fatal:", "error:")):
            return line
    return lines[-1] if lines else "no output"
