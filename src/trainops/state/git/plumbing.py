"""Git plumbing on one repository's git directory: every git process the state store runs.

Each command runs through GitPython's `execute` against `--git-dir`, never a working tree, never
waiting on a credential prompt, with git's stderr scrubbed before anything quotes it (DESIGN §13).
`cat_stream` reads many objects with one `git cat-file --batch`, each handed over as git writes
it; `run_into` lets git write its answer straight to a file.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import git

from trainops.errors import StateError, StateSetupError
from trainops.scrub import scrub

__all__ = ["Object", "Plumbing", "Result", "batch_answers", "last_line"]

Object = tuple[bytes, bytes]  # (type, data) of one object read with `cat-file --batch`


@dataclass
class Result:
    returncode: int
    stdout: bytes
    stderr: str  # scrubbed


class Plumbing:
    """The git directory of the repository at `repo_dir`, and the git commands run on it. Holds
    no open process: any number of instances, in threads or processes, may share one clone."""

    def __init__(self, repo_dir: str | Path) -> None:
        try:
            self._repo = git.Repo(repo_dir)
        except (git.InvalidGitRepositoryError, git.NoSuchPathError) as exc:
            raise StateSetupError(
                f"{repo_dir} is not a git repository",
                hint="the git state backend keeps state on a branch of the repository: run "
                "`git init` or choose another state backend in trainops.yaml",
            ) from exc
        self.git_dir = str(self._repo.git_dir)

    def remotes(self) -> set[str]:
        """The names of the repository's configured remotes."""
        return {r.name for r in self._repo.remotes}

    def _command(self, *args: str) -> list[str]:
        return [git.Git.GIT_PYTHON_GIT_EXECUTABLE or "git", "--git-dir", self.git_dir, *args]

    def run(
        self,
        *args: str,
        input: bytes | None = None,
        env: Mapping[str, str] | None = None,
        check: bool = True,
    ) -> Result:
        """Run `git <args>`, fed `input`; with `check`, a failure is a `StateError`."""
        handle = self._repo.git.execute(
            self._command(*args),
            istream=subprocess.PIPE if input is not None else None,
            as_process=True,
            # Never wait on a credential prompt; callers run unattended in CI.
            env={"GIT_TERMINAL_PROMPT": "0", **(env or {})},
        )
        proc = handle.proc
        assert proc is not None
        stdout, stderr = proc.communicate(input)
        result = Result(proc.returncode, stdout, scrub(stderr.decode(errors="replace")))
        if check and result.returncode != 0:
            raise StateError(f"git {args[0]} failed: {last_line(result.stderr)}")
        return result

    def run_into(self, out: IO[bytes], *args: str, input: bytes) -> None:
        """`run` with git's output written straight to the file `out`, never through this
        process (GitPython copies a redirected output itself, holding the interpreter)."""
        env = {**os.environ, "LANGUAGE": "C", "LC_ALL": "C", "GIT_TERMINAL_PROMPT": "0"}
        done = subprocess.run(
            self._command(*args), input=input, stdout=out, stderr=subprocess.PIPE, env=env
        )
        if done.returncode != 0:
            message = scrub(done.stderr.decode(errors="replace"))
            raise StateError(f"git {args[0]} failed: {last_line(message)}")

    def resolve(self, ref: str) -> str:
        """The commit `ref` names, or "" when it names none."""
        result = self.run("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", check=False)
        return result.stdout.decode().strip() if result.returncode == 0 else ""

    def cat_batch(self, names: Sequence[str]) -> list[Object | None]:
        """Read many objects with one `git cat-file --batch`: (type, data), or None if missing."""
        return list(self.cat_stream(names))

    def cat_stream(self, names: Sequence[str]) -> Iterator[Object | None]:
        """`cat_batch`, each object handed over as git writes it: reading 30,000 state files
        holds one file's bytes at a time, not git's whole answer (and a copy of it) at once."""
        if not names:
            return
        request = "".join(f"{name}\n" for name in names).encode()
        handle = self._repo.git.execute(
            self._command("cat-file", "--batch", "--buffer"),
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
            for obj in batch_answers(stdout, names, strict=False):
                answered += 1
                yield obj
        finally:
            stdout.close()
            for thread in threads:
                thread.join()
            proc.wait()
        if proc.returncode != 0 or answered != len(names):
            message = scrub(b"".join(errors).decode(errors="replace"))
            raise StateError(f"git cat-file failed: {last_line(message)}")


def batch_answers(
    stream: IO[bytes], names: Sequence[str], strict: bool = True
) -> Iterator[Object | None]:
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


def last_line(text: str) -> str:
    """The line of git's stderr that says what failed: its first `fatal:`/`error:`, else the
    last line."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    for line in lines:
        if line.startswith(("fatal:", "error:")):
            return line
    return lines[-1] if lines else "no output"
