"""What travels with a Ray job: its runtime env (the workdir as a deterministic zip in
`working_dir`, the `trainops_rayjob` entrypoint in `py_modules`, the job's variables) and the
entrypoint's resources from the `providers.ray.hardware` table.
"""

from __future__ import annotations

import json
import posixpath
import shlex
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from trainops import scrub
from trainops.manifest import Job, RayConfig, RayHardware, RaySpec
from trainops.providers.base import Submission
from trainops.providers.limits import WORKDIR_LIMITS
from trainops.providers.ray.client import refused

# The largest workdir package trainops sends (`providers.limits.WORKDIR_LIMITS`). Ray's own
# ceiling is its gRPC message size and its docs advise keeping working_dir small; beyond this, data
# belongs in object storage.
WORKDIR_LIMIT = WORKDIR_LIMITS["ray"]
RUNNER = "trainops_rayjob"  # the entrypoint package shipped with each job (py_modules)
# `trainops/providers/trainops_rayjob`, beside this package.
RUNNER_DIR = Path(__file__).resolve().parent.parent / RUNNER


def entrypoint(command: list[str] | tuple[str, ...]) -> str:
    """The job's entrypoint: the command under the shipped runner."""
    return shlex.join(["python", "-m", RUNNER, "--", *command])


def runtime_env(zip_path: Path, env: Mapping[str, str]) -> dict[str, Any]:
    return {
        "working_dir": str(zip_path),
        "py_modules": [str(RUNNER_DIR)],
        "env_vars": dict(env),
    }


def hardware(config: RayConfig, spec: RaySpec) -> RayHardware | None:
    """The `providers.ray.hardware` entry the job names (None when it names none)."""
    if spec.hardware is None:
        return None
    entry = config.hardware.get(spec.hardware)
    if entry is None:
        raise refused(
            f"hardware {spec.hardware!r} is not in providers.ray.hardware",
            "add it to the table in trainops.yaml",
        )
    return entry


def resources(entry: RayHardware | None) -> dict[str, Any]:
    """`submit_job`'s entrypoint resource arguments for a hardware entry."""
    if entry is None:
        return {}
    out: dict[str, Any] = {}
    if entry.num_cpus is not None:
        out["entrypoint_num_cpus"] = entry.num_cpus
    if entry.num_gpus is not None:
        out["entrypoint_num_gpus"] = entry.num_gpus
    if entry.memory is not None:
        out["entrypoint_memory"] = entry.memory
    if entry.resources:
        out["entrypoint_resources"] = dict(entry.resources)
    return out


def job_env(
    environ: Mapping[str, str],
    output_uri: str | None,
    run_id: str,
    submission: Submission,
    spec: RaySpec,
) -> dict[str, str]:
    """DESIGN §13: the variables the manifest names, and trainops' own for the run. The
    cluster gives the rest of the environment; nothing of trainops' own is passed."""
    env = {n: environ[n] for n in spec.env if n in environ}
    env.update(
        {
            "TRAINOPS_JOB": submission.job.name,
            "TRAINOPS_REVISION": submission.revision,
            "TRAINOPS_ATTEMPT": str(submission.attempt),
            "TRAINOPS_RUN_ID": run_id,
            "TRAINOPS_INPUT_JSON": json.dumps(dict(submission.input), sort_keys=True),
            "PYTHONUNBUFFERED": "1",
        }
    )
    if output_uri:
        env["TRAINOPS_OUTPUT_URI"] = f"{output_uri}/{run_id}"
    scrub.watch(spec.env)
    return env


@contextmanager
def workdir_zip(repo_root: Path, job: Job, spec: RaySpec, commit: str = "") -> Iterator[Path]:
    """The workdir as one deterministic zip, by the one packaging rule (DESIGN §13b): the
    files of `commit`'s tree (the commit apply is applying; without one, the index's files
    in the working tree), never an untracked file, streamed into the zip; refused over
    `WORKDIR_LIMIT` before the cluster is asked."""
    from trainops.repo import Commit, Source, WorkingTree
    from trainops.workdir import WorkdirError, pack_into

    rel = workdir_path(job, spec)
    if rel is None:
        raise refused(f"{job.name}: workdir {spec.workdir} is outside the repository")
    source: Source = Commit(repo_root, commit) if commit else WorkingTree(repo_root)
    with tempfile.TemporaryDirectory(prefix="trainops-ray-") as tmp:
        path = Path(tmp) / "workdir.zip"
        try:
            with open(path, "w+b") as out:
                pack_into(out, source, rel, WORKDIR_LIMIT)
        except WorkdirError as exc:
            raise refused(f"{job.name}: {exc.message}", exc.hint) from None
        yield path


def workdir_path(job: Job, spec: RaySpec) -> str | None:
    """The workdir, repository-relative ("" for the root), decided on the path alone (the
    commit's tree holds it, not the disk); None when it leads outside the repository."""
    raw = spec.workdir if spec.workdir is not None else posixpath.dirname(job.file)
    if raw.startswith("/"):
        return None
    rel = posixpath.normpath(raw or ".")
    if rel == ".." or rel.startswith("../"):
        return None
    return "" if rel == "." else rel
