"""The credential grep of DESIGN §13 (issue 11): no credential trainops reads ever comes out.

Every CLI run of the e2e harness (`tests.support.workspace.run_cli`, `UserRepo.start`) gets a
distinct fake value for every credential variable trainops reads (`FAKE_CREDENTIALS`, plus the
`token_env` a repository's trainops.yaml names) unless the test sets its own, and endpoints on a
closed loopback port unless the test sets its own, so a fake token can never leave the machine.
(`serve`'s own secrets are not faked: a value would switch its webhooks and page auth on; a test
that sets one has it grepped like the others.)
`credential_grep` (autouse in tests/e2e and tests/security) then greps, after each test, for
every credential value any run had (of every variable in the scrubber's `CREDENTIAL_ENV`) — fake
or the test's own emulator tokens — in every captured
stdout/stderr, every file under each repository's `.trainops/`, the whole history of the state
branch (local and remote) and every request body the GitHub emulators received: zero hits.

What a local training command itself writes is its own output, kept verbatim on this machine: its
`log.txt` and the last stderr line its supervisor records as the run's `error` in `status.json`
(the supervisor, running in the job's environment, masks only the credentials the job was given).
trainops scrubs that text wherever it prints, posts or commits it, which this grep covers, so
those two are not grepped where they lie.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.gitrepo import HERMETIC_ENV
from trainops.scrub import CREDENTIAL_ENV

__all__ = ["ENDPOINTS", "FAKE_CREDENTIALS", "RECORDER", "Recorder", "credential_grep"]

FAKE_CREDENTIALS = {
    "REPLICATE_API_TOKEN": "fake-replicate-api-token-4e1c9b",
    "GITHUB_TOKEN": "fake-github-token-7d20aa",
    "GH_TOKEN": "fake-gh-token-a93f02",
    "HF_TOKEN": "fake-hf-token-58c1de",
    "HUGGING_FACE_HUB_TOKEN": "fake-hugging-face-hub-token-0b7e44",
    "AWS_ACCESS_KEY_ID": "fake-aws-access-key-id-c6f1",
    "AWS_SECRET_ACCESS_KEY": "fake-aws-secret-access-key-91ab3e",
    "AWS_SESSION_TOKEN": "fake-aws-session-token-2f8d07",
}
FAKE_TOKEN_ENV = "fake-configured-token-env-6a0c52"  # the value of a configured `token_env`
# Where a client goes when a test points it nowhere: a loopback port nothing listens on.
_NOWHERE = "http://127.0.0.1:9"
ENDPOINTS = {
    "REPLICATE_BASE_URL": _NOWHERE,
    "GITHUB_API_URL": _NOWHERE,
    "HF_ENDPOINT": _NOWHERE,
    "AWS_ENDPOINT_URL": _NOWHERE,
}
MIN_CHARS = 8  # trainops.scrub.MIN_SECRET_CHARS: shorter values are not secrets it masks
_SKIPPED_FILES = {"log.txt"}  # the training's own output (see the module docstring)


@dataclass
class Recorder:
    """What the CLI runs of one test used and produced."""

    secrets: dict[str, str] = field(default_factory=dict)  # value -> variable name
    outputs: list[str] = field(default_factory=list)
    repos: set[Path] = field(default_factory=set)
    emulators: list[Any] = field(default_factory=list)  # GitHubEmulator instances

    def credentials_for(self, cwd: Path, env: Mapping[str, str] | None) -> dict[str, str]:
        """The fake credentials (and endpoints) a CLI run in `cwd` gets where `env` sets none;
        every credential value of the run is remembered for the grep."""
        given = dict(env or {})
        added = {k: v for k, v in {**FAKE_CREDENTIALS, **ENDPOINTS}.items() if k not in given}
        token_env = _configured_token_env(cwd)
        if token_env and token_env not in given:
            added[token_env] = FAKE_TOKEN_ENV
        names = {*FAKE_CREDENTIALS, *CREDENTIAL_ENV, *([token_env] if token_env else [])}
        for name in names:
            value = given.get(name, added.get(name, ""))
            if len(value) >= MIN_CHARS:
                self.secrets[value] = name
        self.repos.add(Path(cwd))
        return added

    def output(self, *texts: str | None) -> None:
        self.outputs += [t for t in texts if t]

    def leaks(self) -> list[str]:
        """Where a credential value was found: `place: VARIABLE`."""
        found: list[str] = []
        places = [(f"output #{i}", text) for i, text in enumerate(self.outputs)]
        for repo in sorted(self.repos):
            places += _trainops_files(repo)
            places += _state_history(repo)
        for emulator in self.emulators:
            for request in emulator.requests:
                if request.json is not None:
                    body = yaml.safe_dump(request.json) + repr(request.json)
                    places.append((f"GitHub {request.method} {request.path}", body))
        for place, text in places:
            found += [f"{place}: {name}" for value, name in self.secrets.items() if value in text]
        return found


RECORDER: list[Recorder] = []  # the current test's recorder, when the grep is on


def current() -> Recorder:
    """The current test's recorder (a throwaway one outside tests/e2e and tests/security)."""
    return RECORDER[-1] if RECORDER else Recorder()


@pytest.fixture(autouse=True)
def credential_grep() -> Iterator[Recorder]:
    """Grep every output of the test for every credential value its CLI runs had."""
    from tests.emulators.github import GitHubEmulator

    recorder = Recorder()
    RECORDER.append(recorder)
    GitHubEmulator.instances.clear()
    try:
        yield recorder
    finally:
        RECORDER.remove(recorder)
    recorder.emulators = list(GitHubEmulator.instances)
    GitHubEmulator.instances.clear()
    leaks = recorder.leaks()
    assert leaks == [], "credentials leaked:\n" + "\n".join(leaks)


def _configured_token_env(cwd: Path) -> str:
    try:
        cfg = yaml.safe_load((cwd / "trainops.yaml").read_text()) or {}
        name = cfg["providers"]["replicate"]["token_env"]
    except (OSError, yaml.YAMLError, KeyError, TypeError):
        return ""
    return name if isinstance(name, str) else ""


def _trainops_files(repo: Path) -> list[tuple[str, str]]:
    root = repo / ".trainops"
    if not root.is_dir():
        return []
    return [
        (str(path.relative_to(repo)), _text(path))
        for path in sorted(root.rglob("*"))
        if path.is_file() and not path.is_symlink() and path.name not in _SKIPPED_FILES
    ]


def _text(path: Path) -> str:
    text = path.read_bytes().decode("utf-8", "replace")
    if path.name == "status.json":  # its `error` is the command's own stderr line
        with contextlib.suppress(ValueError):
            status = json.loads(text)
            if isinstance(status, dict):
                status.pop("error", None)
                return json.dumps(status)
    return text


def _state_history(repo: Path) -> list[tuple[str, str]]:
    """`git log -p` of every state ref of `repo` (a clone or a bare remote), messages included."""
    refs = _git(repo, "for-each-ref", "--format=%(refname)", "refs/heads", "refs/remotes")
    state = [ref for ref in refs.split() if "state" in ref.rsplit("/", 1)[-1]]
    if not state:
        return []
    return [(f"{repo.name} state history", _git(repo, "log", "-p", "--format=%B", *state))]


def _git(repo: Path, *args: str) -> str:
    proc = subprocess.run(
        ["git", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        errors="replace",  # a forged state file need not be UTF-8; its credentials still show
        env={**os.environ, **HERMETIC_ENV},
        check=False,
    )
    return proc.stdout if proc.returncode == 0 else ""
