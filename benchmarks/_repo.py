"""The one repository builder every benchmark shares (issue 28).

A benchmark measures trainops in a real git repository: a working clone with manifests, usually
a bare remote it pushes to. `build` makes one from a mapping of path -> text (one commit on
`main`, pushed), with a hermetic git environment (`ENV`: no global or system config, a fixed
identity, no provider tokens from the caller's shell), and, with `key`, reuses a repository an
earlier run built in the same folder (`--keep DIR`). `commit_lock` is the step the serve
benchmarks take next: `trainops lock`, committed and pushed, as a repository under review has it.

Import it as `from benchmarks._repo import ...` with the project root on `sys.path` (each
benchmark puts it there), so a benchmark loads the same way run as a script or by a test.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

__all__ = [
    "ENV",
    "LOCAL_MANIFEST",
    "build",
    "commit_lock",
    "git",
    "local_jobs",
    "pack",
    "replicate_job",
]

ENV = {
    **os.environ,
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_AUTHOR_NAME": "Bench",
    "GIT_AUTHOR_EMAIL": "bench@example.com",
    "GIT_COMMITTER_NAME": "Bench",
    "GIT_COMMITTER_EMAIL": "bench@example.com",
}
for _name in ("REPLICATE_API_TOKEN", "GITHUB_TOKEN", "GH_TOKEN", "HF_TOKEN", "TRAINOPS_CRASHPOINT"):
    ENV.pop(_name, None)

# A local job that never runs (the benchmarks write its state instead).
LOCAL_MANIFEST = """\
apiVersion: trainops/v1
kind: TrainingJob
metadata:
  name: {name}
  labels: {{team: bench}}
spec:
  provider: local
  command: [python, train.py]
  workdir: .
  input: {{seed: {seed}, epochs: 10, learning_rate: 0.05}}
  budget: {{max_duration: 10m}}
  retries: 1
"""


def git(cwd: Path, *args: str) -> str:
    """Run git in `cwd` under `ENV`; its stdout stripped. Raises CalledProcessError."""
    return subprocess.run(
        ["git", *args], cwd=cwd, env=ENV, check=True, capture_output=True, text=True
    ).stdout.strip()


def local_jobs(count: int) -> dict[str, str]:
    """`trainops.yaml`, `train.py`, `.gitignore` and `count` local jobs `jobs/job-NNNNN.yaml`."""
    files = {
        "trainops.yaml": 'jobs: ["jobs/**/*.yaml"]\n',
        "train.py": "print('never run by this benchmark')\n",
        ".gitignore": ".trainops/\n",
    }
    for i in range(count):
        name = f"job-{i:05d}"
        files[f"jobs/{name}.yaml"] = LOCAL_MANIFEST.format(name=name, seed=i)
    return files


def replicate_job(
    name: str, *, trainer: str, destination: str, hardware: str, input: Mapping[str, object]
) -> str:
    """A Replicate TrainingJob manifest named `name` (YAML, keys in manifest order)."""
    import yaml

    doc = {
        "apiVersion": "trainops/v1",
        "kind": "TrainingJob",
        "metadata": {"name": name},
        "spec": {
            "provider": "replicate",
            "trainer": trainer,
            "destination": destination,
            "hardware": hardware,
            "input": dict(input),
        },
    }
    return yaml.safe_dump(doc, sort_keys=False)


def build(
    base: Path,
    files: Mapping[str, str],
    *,
    remote: bool = True,
    key: str | None = None,
    then: Callable[[Path], object] | None = None,
    packed: bool = False,
    message: str = "initial",
) -> Path:
    """The clone `base/repo` holding `files` in one commit on `main` (none when `files` is
    empty); with `remote`, a bare `base/repo.git` as `origin`, `main` pushed. `then(root)` runs
    after (writing state, say); `packed` repacks the clone's objects last (see `pack`).

    With `key`, a repository an earlier call built in `base` for the same key is returned as it
    is, and one for another key is removed first; the key is written once the build is done."""
    root, bare = base / "repo", base / "repo.git"
    marker = base / "built"
    if key is not None:
        if marker.exists() and marker.read_text() == key:
            return root
        for path in (marker, root, bare):
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
    root.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    git(root, "init", "--quiet", "--initial-branch", "main")
    if files:
        git(root, "add", "--all")
        git(root, "commit", "--quiet", "-m", message)
    if remote:
        git(base, "init", "--quiet", "--bare", "--initial-branch", "main", str(bare))
        git(root, "remote", "add", "origin", str(bare))
        if files:
            git(root, "push", "--quiet", "origin", "main")
    if then is not None:
        then(root)
    if packed:
        pack(root)
    if key is not None:
        marker.write_text(key)
    return root


def pack(root: Path) -> None:
    """Pack the clone's objects, as a CI checkout's are (a clone arrives as a pack): thousands of
    loose manifest blobs made `git ls-tree --long` of the commit cost seconds on their own."""
    git(root, "repack", "-adq")


def commit_lock(root: Path, env: Mapping[str, str]) -> str:
    """`trainops lock` in `root` under `env`, committed and pushed to origin; the new HEAD."""
    subprocess.run(
        [sys.executable, "-m", "trainops", "lock"],
        cwd=root,
        env=dict(env),
        check=True,
        capture_output=True,
    )
    git(root, "add", "trainops.lock")
    git(root, "commit", "--quiet", "-m", "lock")
    git(root, "push", "--quiet", "origin", "main")
    return git(root, "rev-parse", "HEAD")
