"""A user's trainops repository for end-to-end tests, and the CLI run on it as a user types it.

`UserRepo.create()` writes `trainops.yaml`, `jobs/*.yaml` and a tiny training script (`train.py`)
into a real git repository with a bare remote. `repo.trainops("apply")` runs
`python -m trainops apply` as a subprocess in the repository, with a hermetic git environment and
a fake value for every credential (`tests.support.credentials` greps every output for them). The
training script is steered by each job's `input`, so one script covers every shape of run the
tests need:

- `{}`: finishes at once, writing `weights.bin`;
- `hold`: a path; the run waits until that file exists (or until canceled; capped at 60 s);
- `fail_times` + `counter`: the first `fail_times` runs sharing the counter file exit 1;
- `ledger`: a path; every start of the command appends its run id there, so a test counts
  trainings where they happen rather than where trainops records them.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from tests.support import credentials
from tests.support.gitrepo import GIT_ENV, HERMETIC_ENV, clone, git, make_repo
from trainops.scrub import CREDENTIAL_ENV

__all__ = [
    "TRAIN_SCRIPT",
    "UserRepo",
    "cli_env",
    "config",
    "eventually",
    "explain",
    "group_alive",
    "kill_run_groups",
    "manifest",
    "run_cli",
]

T = TypeVar("T")

TRAIN_SCRIPT = '''\
"""A stand-in training: see tests/support/workspace.py."""
import json
import os
import sys
import time

params = json.load(open(os.environ["TRAINOPS_INPUT"]))
run_id = os.environ.get("TRAINOPS_RUN_ID", "")
if params.get("ledger"):
    with open(params["ledger"], "a") as f:
        f.write(run_id + "\\n")
print(f"training {run_id}", flush=True)
if params.get("hold"):
    deadline = time.monotonic() + float(params.get("max_seconds", 60))
    while not os.path.exists(params["hold"]) and time.monotonic() < deadline:
        time.sleep(0.02)
if params.get("fail_times"):
    counter = params["counter"]
    count = int(open(counter).read()) + 1 if os.path.exists(counter) else 1
    with open(counter, "w") as f:
        f.write(str(count))
    if count <= int(params["fail_times"]):
        print(f"failing on purpose ({count} of {params['fail_times']})", file=sys.stderr)
        sys.exit(1)
os.makedirs(os.environ["TRAINOPS_OUTPUT_DIR"], exist_ok=True)  # `git clean -xfd` may have run
with open(os.path.join(os.environ["TRAINOPS_OUTPUT_DIR"], "weights.bin"), "w") as f:
    f.write(run_id)
print(f"trained {run_id}", flush=True)
'''

# Variables that would let a test reach a real service, or steer trainops from outside: every
# credential trainops reads (the scrubber's list, so a new one is dropped here too) and the
# Actions context.
_DROPPED_ENV = (*CREDENTIAL_ENV, "GITHUB_ACTIONS", "GITHUB_EVENT_PATH", "TRAINOPS_CRASHPOINT")


def cli_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a user's shell: hermetic git (no global config), a git identity, no
    token of the developer's (the CLI runs add fake ones). Commit dates are left to git."""
    env = {k: v for k, v in os.environ.items() if k not in _DROPPED_ENV}
    env.update(HERMETIC_ENV)
    env.update({k: v for k, v in GIT_ENV.items() if not k.endswith("_DATE")})
    env["PYTHONUNBUFFERED"] = "1"
    # Remote inputs (DESIGN §18) are observed only on the hosts a test names: a manifest's
    # https://example.com/... is never looked up.
    env["TRAINOPS_INPUT_FINGERPRINTS"] = "named"
    env.update(extra or {})
    return env


def run_cli(
    cwd: Path,
    *args: str,
    env: Mapping[str, str] | None = None,
    timeout: float = 60,
    input: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """`trainops ARGS...` in `cwd`, as a user types it, with a fake value for every credential
    the test does not set (`tests.support.credentials`); its output joins the credential grep."""
    recorder = credentials.current()
    result = subprocess.run(
        [sys.executable, "-m", "trainops", *args],
        cwd=cwd,
        env=cli_env({**recorder.credentials_for(Path(cwd), env), **(env or {})}),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        input=input,
    )
    recorder.output(result.stdout, result.stderr)
    return result


class _Recorded(subprocess.Popen[str]):
    """A background CLI run whose output joins the credential grep when it is collected."""

    def communicate(self, *args: Any, **kwargs: Any) -> tuple[str, str]:
        out, err = super().communicate(*args, **kwargs)
        credentials.current().output(out, err)
        return out, err


def manifest(name: str, input: Mapping[str, Any] | None = None, **spec: Any) -> str:
    """A local TrainingJob running `train.py` at the repository root."""
    body: dict[str, Any] = {
        "provider": "local",
        "command": ["python", "train.py"],
        "workdir": ".",
        "input": dict(input or {}),
    }
    body.update(spec)
    doc = {
        "apiVersion": "trainops/v1",
        "kind": "TrainingJob",
        "metadata": {"name": name},
        "spec": body,
    }
    return yaml.safe_dump(doc, sort_keys=False)


def config(**fields: Any) -> str:
    """trainops.yaml; `policy={...}`, `providers={...}` and so on as keyword arguments."""
    data: dict[str, Any] = {"jobs": ["jobs/**/*.yaml"]}
    data.update(fields)
    return yaml.safe_dump(data, sort_keys=False)


def eventually(
    probe: Callable[[], T | None], what: str, timeout: float = 20.0, interval: float = 0.05
) -> T:
    """Poll `probe` until it returns something truthy; fail naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)


def group_alive(pgid: int) -> bool:
    """Whether any live (non-zombie) process is in process group `pgid`."""
    import psutil

    for proc in psutil.process_iter(["status"]):
        with contextlib.suppress(psutil.Error, OSError):
            if proc.info["status"] != psutil.STATUS_ZOMBIE and os.getpgid(proc.pid) == pgid:
                return True
    return False


@functools.cache
def records_dir(root: Path) -> Path:
    """Where the local provider keeps the run records of the clone at `root` (its git dir)."""
    git_dir = Path(git(root, "rev-parse", "--absolute-git-dir"))
    return git_dir / "trainops" / "runs"


def kill_run_groups(root: Path) -> None:
    """Kill what is left of every run of the clone at `root` (test teardown)."""
    try:
        records = records_dir(root)
    except (AssertionError, OSError):  # not a repository (any more)
        return
    for status_file in records.glob("*/status.json"):
        with contextlib.suppress(ValueError, OSError):
            pgid = json.loads(status_file.read_text()).get("pgid")
            if isinstance(pgid, int) and pgid > 1:
                os.killpg(pgid, signal.SIGKILL)


@dataclass
class UserRepo:
    """A working clone of a user's repository, its bare remote, and where its runs land."""

    root: Path
    remote: Path | None
    signals: Path  # hold files, counters and ledgers live here, outside the repository
    runs_dir: Path
    branch: str = "trainops/state"
    # Set for every CLI run in this repository, as a user's shell profile would: the endpoints
    # of emulators (`REPLICATE_BASE_URL`, ...), never a file of the repository (DESIGN §13).
    env: dict[str, str] = field(default_factory=dict)

    @classmethod
    def create(
        cls,
        base: Path,
        jobs: Mapping[str, str],
        *,
        cfg: str | None = None,
        remote: bool = True,
        name: str = "repo",
    ) -> UserRepo:
        """A repository at `base/name` holding `jobs` (name -> manifest text, as
        `jobs/<name>.yaml`), pushed to a bare remote at `base/<name>.git`."""
        files = {
            ".gitignore": ".trainops/\n__pycache__/\n",
            "train.py": TRAIN_SCRIPT,
            "trainops.yaml": cfg if cfg is not None else config(),
        }
        files.update({f"jobs/{job}.yaml": text for job, text in jobs.items()})
        bare = base / f"{name}.git" if remote else None
        root = make_repo(base / name, files, remote=bare)
        credentials.current().repos.update(p for p in (root, bare) if p is not None)
        signals = base / f"{name}-signals"
        signals.mkdir(exist_ok=True)
        return cls(root, bare, signals, _runs_dir(root))

    @classmethod
    def clone_of(cls, other: UserRepo, path: Path) -> UserRepo:
        """Another clone of `other`'s remote (a second reconciler)."""
        assert other.remote is not None
        root = clone(other.remote, path)
        credentials.current().repos.add(root)
        return cls(root, other.remote, other.signals, _runs_dir(root), other.branch)

    # ---- editing the repository -----------------------------------------------------------

    def write(self, path: str, text: str) -> None:
        file = self.root / path
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(text)

    def write_job(self, name: str, text: str) -> None:
        self.write(f"jobs/{name}.yaml", text)

    def commit(self, message: str = "edit jobs") -> str:
        """Commit every change in the working tree and push it; return the commit sha."""
        git(self.root, "add", "--all")
        git(self.root, "commit", "--quiet", "-m", message)
        if self.remote is not None:
            git(self.root, "push", "--quiet", "origin", "HEAD:main")
        return git(self.root, "rev-parse", "HEAD")

    def pull(self) -> None:
        """Fast-forward to the remote's `main` (another clone pushed)."""
        git(self.root, "pull", "--quiet", "--ff-only", "origin", "main")

    def remove_job(self, name: str) -> None:
        (self.root / "jobs" / f"{name}.yaml").unlink()

    # ---- running trainops ------------------------------------------------------------------

    def trainops(
        self,
        *args: str,
        env: Mapping[str, str] | None = None,
        timeout: float = 60,
        input: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        return run_cli(
            self.root, *args, env={**self.env, **(env or {})}, timeout=timeout, input=input
        )

    def start(self, *args: str, env: Mapping[str, str] | None = None) -> subprocess.Popen[str]:
        """`trainops ARGS...` started in the background (to be killed or raced)."""
        wanted = {**self.env, **(env or {})}
        fake = credentials.current().credentials_for(self.root, wanted)
        return _Recorded(
            [sys.executable, "-m", "trainops", *args],
            cwd=self.root,
            env=cli_env({**fake, **wanted}),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def apply_ok(self, *args: str) -> subprocess.CompletedProcess[str]:
        result = self.trainops("apply", *args)
        assert result.returncode == 0, explain(result)
        return result

    # ---- signals for the training script ---------------------------------------------------

    def hold_path(self, name: str) -> str:
        return str(self.signals / f"hold-{name}")

    def release(self, name: str) -> None:
        (self.signals / f"hold-{name}").touch()

    def counter_path(self, name: str) -> str:
        return str(self.signals / f"counter-{name}")

    def ledger_path(self) -> str:
        return str(self.signals / "ledger")

    def ledger(self) -> list[str]:
        """Run ids of every start of a training command, in order."""
        path = self.signals / "ledger"
        return path.read_text().split() if path.exists() else []

    # ---- observing runs --------------------------------------------------------------------

    def run_ids(self) -> list[str]:
        """The runs this clone claimed (their records, kept in its git directory)."""
        records = self.records_dir()
        if not records.is_dir():
            return []
        return sorted(p.name for p in records.iterdir() if p.is_dir() and p.name[0] != ".")

    def records_dir(self) -> Path:
        return records_dir(self.root)

    def run_dir(self, run_id: str) -> Path:
        """Where a run's input, log and outputs are (under the runs folder)."""
        return self.runs_dir / run_id

    def record_dir(self, run_id: str) -> Path:
        """Where a run's claim, status and lock are (in the clone's git directory)."""
        return self.records_dir() / run_id

    def meta(self, run_id: str) -> dict[str, Any]:
        return _read_json(self.record_dir(run_id) / "meta.json") or {}

    def status(self, run_id: str) -> dict[str, Any]:
        return _read_json(self.record_dir(run_id) / "status.json") or {}

    def wait_status(
        self,
        run_id: str,
        wanted: Iterable[str],
        timeout: float = 20.0,
    ) -> dict[str, Any]:
        states = set(wanted)
        return eventually(
            lambda: (s := self.status(run_id)).get("status") in states and s,
            f"run {run_id} to be {'/'.join(sorted(states))} "
            f"(last: {self.status(run_id).get('status')})",
            timeout,
        )

    def wait_all_terminal(self, timeout: float = 30.0) -> None:
        def done() -> bool:
            return all(
                self.status(r).get("status") in ("succeeded", "failed", "canceled")
                for r in self.run_ids()
            )

        eventually(done, "every run to end", timeout)

    # ---- the state branch ------------------------------------------------------------------

    def _state_repo(self) -> Path:
        return self.remote if self.remote is not None else self.root

    def state(self) -> dict[str, Any]:
        """The recorded state (at the remote when there is one), as JobState values by job."""
        from trainops.state.git import GitStateStore
        from trainops.state.trust import parse_state

        store = GitStateStore(self._state_repo(), branch=self.branch, remote=None)
        return parse_state(store.load().files)

    def state_commits(self) -> int:
        repo = self._state_repo()
        ref = f"refs/heads/{self.branch}"
        if (
            subprocess.run(
                ["git", "rev-parse", "--verify", "--quiet", ref],
                cwd=repo,
                capture_output=True,
                env=cli_env(),
                check=False,
            ).returncode
            != 0
        ):
            return 0
        return int(git(repo, "rev-list", "--count", ref))

    def revisions(self) -> dict[str, str]:
        """Each valid job's revision at HEAD, as trainops computes it."""
        from trainops.workspace import Workspace

        desired = Workspace.open(self.root, ref="HEAD").desired()
        return {name: t.revision for name, t in desired.targets.items()}

    def cleanup(self) -> None:
        kill_run_groups(self.root)


def _runs_dir(root: Path) -> Path:
    cfg = yaml.safe_load((root / "trainops.yaml").read_text()) or {}
    runs = ((cfg.get("providers") or {}).get("local") or {}).get("runs_dir", ".trainops/runs")
    return (root / runs).resolve()


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def explain(result: subprocess.CompletedProcess[str]) -> str:
    return f"exit {result.returncode}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
