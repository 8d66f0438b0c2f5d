"""Replay memory of `trainops serve`'s webhooks (DESIGN §13b): the deliveries already accepted,
kept with the clone (in its git directory, never in the working tree or a commit) so that a
restart does not forget them.

A key is remembered only after its delivery's signature was verified, so nobody without the
signing secret can grow the memory. It is bounded twice: entries older than `RETENTION` are
pruned (far past Standard Webhooks' 5-minute timestamp tolerance, to cover Replicate's retries,
which reuse the `webhook-id`), and at most `MAX_ENTRIES` are kept, the oldest dropped first.
Each accepted key is one line appended to the file; the file is rewritten with the live keys
only once most of its lines are stale, so an accept costs a line, not the whole memory.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

RETENTION = 24 * 3600.0  # seconds an accepted delivery is remembered
MAX_ENTRIES = 10_000  # keys kept at most (about 1 MB on disk)
FILE = "trainops/webhooks-seen.jsonl"  # under the clone's git directory, one key a line
MAX_FILE = 8 << 20  # bytes read back at most (the file holds at most ~3 x MAX_ENTRIES lines)


class ReplayMemory:
    """Keys of accepted deliveries (`replicate:<webhook-id>`, `github:<delivery>`, ...) with the
    time each was accepted. `path=None` keeps them in memory only (tests, one process)."""

    def __init__(self, path: Path | None = None, clock: Callable[[], float] = time.time) -> None:
        self._path, self._clock = path, clock
        self._seen: collections.OrderedDict[str, float] = collections.OrderedDict()
        self._lock = threading.Lock()
        self._lines = 0  # lines in the file, stale ones included
        if path is not None:
            self._load(path)

    def __len__(self) -> int:
        return len(self._seen)

    def first_time(self, keys: Iterable[str]) -> bool:
        """Remember `keys` and say True, unless one of them was accepted already (then nothing
        is remembered and the answer is False). Check and record are one step."""
        keys = list(keys)
        now = self._clock()
        with self._lock:
            self._prune(now)
            if any(k in self._seen for k in keys):
                return False
            for key in keys:
                self._seen[key] = now
            self._prune(now)
            self._append([(k, now) for k in keys])
        return True

    def _prune(self, now: float) -> None:
        while self._seen:
            key, at = next(iter(self._seen.items()))
            if now - at <= RETENTION and len(self._seen) <= MAX_ENTRIES:
                break
            del self._seen[key]

    # ---- the file: one JSON line per key, appended; rewritten when mostly stale --------------

    def _load(self, path: Path) -> None:
        try:
            with path.open("rb") as f:
                raw = f.read(MAX_FILE)  # a longer file is read in part: its oldest lines
        except OSError:
            raw = b""  # missing or unreadable: start empty (the timestamp window still holds)
        pairs: list[tuple[str, float]] = []
        for line in raw.splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue  # a line torn by a crash, or not ours
            if (
                isinstance(entry, list)
                and len(entry) == 2
                and isinstance(entry[0], str)
                and len(entry[0]) <= 300
                and isinstance(entry[1], int | float)
                and not isinstance(entry[1], bool)
            ):
                pairs.append((entry[0], float(entry[1])))
        self._lines = len(pairs)
        for key, at in sorted(pairs, key=lambda p: p[1])[-MAX_ENTRIES:]:
            self._seen[key] = at
        self._prune(self._clock())

    def _append(self, entries: list[tuple[str, float]]) -> None:
        if self._path is None:
            return
        if self._lines + len(entries) > 2 * len(self._seen) + 1000:
            self._rewrite()
            return
        self._path.parent.mkdir(parents=True, exist_ok=True)
        with self._path.open("a") as out:
            out.write("".join(json.dumps([k, at]) + "\n" for k, at in entries))
        self._lines += len(entries)

    def _rewrite(self) -> None:
        assert self._path is not None
        self._path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".webhooks-", dir=self._path.parent)
        try:
            with os.fdopen(fd, "w") as out:
                out.write("".join(json.dumps([k, at]) + "\n" for k, at in self._seen.items()))
            os.replace(tmp, self._path)  # a reader sees the old file or the new, never half
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        self._lines = len(self._seen)


def memory_of(root: Path) -> ReplayMemory:
    """The replay memory of the clone at `root`: in its (common) git directory."""
    from trainops.repo import git_run

    out = git_run(["rev-parse", "--git-common-dir"], root)
    git_dir = Path(out.stdout.decode(errors="replace").strip() or ".git")
    if not git_dir.is_absolute():
        git_dir = root / git_dir
    return ReplayMemory(git_dir / FILE)
