"""The Ray provider (DESIGN §10): a job's `command` on a Ray cluster, through the official
`ray.job_submission.JobSubmissionClient` (the `trainops[ray]` extra, imported on first use).

The cluster is `RAY_ADDRESS` in the environment, never a repository file. Each run's
`submission_id` is a function of (job, revision, attempt) and the repository id (a shared cluster
serves many repositories, whose jobs may share a name: DESIGN §9), and the cluster refuses a
second job with one id atomically: a crashed or racing submit can never start a second copy, and
adoption (`find`) is one `get_job_info`. Runs recorded with the id trainops used before the
repository was part of it (`trainops-<job>-<revision>-<attempt>`) are still followed. `observe`
is one `list_jobs` however many runs are active.

The client raises `RuntimeError` for every answer but 200, and says why only in text: trainops
never reads that text; it asks the cluster again (`get_job_info`, or `list_jobs`) what exists.
The workdir travels as a deterministic zip (`runtime_env.working_dir`, at most `WORKDIR_LIMIT`);
the command runs under `trainops_rayjob`, which copies its outputs under
`providers.ray.output_uri/<run-id>/outputs/` (s3:// or a shared folder).
"""

from __future__ import annotations

import logging
import os
import re
import shlex
import tempfile
import time
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from trainops import metrics, scrub
from trainops.errors import OutcomeUnknown, Problem, ProviderError
from trainops.manifest import Job, RayConfig, RayHardware, RaySpec
from trainops.providers._outputs import named
from trainops.providers.base import (
    Health,
    Intent,
    Observation,
    RunRef,
    Submission,
    check_own_run,
    display_path,
    job_cwd,
    marks_mismatch,
)
from trainops.providers.limits import WORKDIR_LIMITS
from trainops.repoid import scope

ADDRESS_ENV = "RAY_ADDRESS"  # as the official client and `ray job submit` read it
# The largest workdir package trainops sends (`providers.limits.WORKDIR_LIMITS`). Ray's own
# ceiling is its gRPC message size and its docs advise keeping working_dir small; beyond this, data
# belongs in object storage.
WORKDIR_LIMIT = WORKDIR_LIMITS["ray"]
TIMEOUT = (10.0, 60.0)  # connect, read: a cluster that stopped answering must not hang apply
RUNNER = "trainops_rayjob"  # the entrypoint package shipped with each job (py_modules)
_RUNNER_DIR = Path(__file__).resolve().parent / RUNNER
_HEALTH = {
    "PENDING": Health.PENDING,
    "RUNNING": Health.RUNNING,
    "SUCCEEDED": Health.SUCCEEDED,
    "FAILED": Health.FAILED,
    "STOPPED": Health.CANCELED,
}
_RUN_ID = re.compile(
    r"^trainops-[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?-[0-9a-f]{12}-[1-9][0-9]{0,3}(-r[0-9a-f]{10})?\Z"
)
META = ("trainops-job", "trainops-revision", "trainops-attempt")
REPOSITORY_META = "trainops-repository"  # the full repository id (`trainops.repoid`)

__all__ = ["WORKDIR_LIMIT", "RayProvider", "check_run", "submission_id"]


def submission_id(job: str, revision: str, attempt: int, repository: str = "") -> str:
    """The run id of one attempt of one repository's job: the cluster refuses a second job
    with it (DESIGN §8). Without `repository`, the id trainops gave runs before it was scoped
    (still followed, never given to a new run)."""
    legacy = f"trainops-{job}-{revision}-{attempt}"
    return f"{legacy}-r{scope(repository)}" if repository else legacy


def check_run(job: str, run: Any) -> str:
    """Why a recorded run cannot be a Ray run of `job` (empty when it can): its id is a function
    of (job, revision, attempt), scoped to some repository (which one, only the cluster's record
    can tell: `owns`) or of the unscoped form, and its outputs lie in its own
    `<run-id>/outputs/` folder."""
    expected = submission_id(job, run.revision, run.attempt)
    rest = (run.run_id or "").removeprefix(expected)
    if rest != run.run_id and re.fullmatch(r"-r[0-9a-f]{10}", rest):
        expected = run.run_id
    return check_own_run(job, run, expected, s3=True)


def not_owned(run_id: str, metadata: Mapping[str, Any], intent: Intent) -> str:
    """Why the Ray job `run_id` with `metadata` is not `intent`'s run ("" when it is): its id
    must be this repository's id of that attempt (or the unscoped id, for a job submitted
    before ids were scoped, whose metadata then names no repository), and its metadata must
    say this job, revision, attempt, input hash and repository."""
    scoped = submission_id(intent.job, intent.revision, intent.attempt, intent.repository)
    legacy = submission_id(intent.job, intent.revision, intent.attempt)
    theirs = metadata.get(REPOSITORY_META)
    if run_id == legacy:
        if theirs:
            return "it names a repository but has the unscoped id trainops no longer gives"
    elif run_id != scoped:
        return f"its id is not this repository's ({intent.repository!r}) id for the attempt"
    elif theirs != intent.repository:
        return f"it was submitted for repository {str(theirs)[:120]!r}, not {intent.repository!r}"
    wanted = {
        "trainops-job": intent.job,
        "trainops-revision": intent.revision,
        "trainops-attempt": str(intent.attempt),
    }
    return marks_mismatch(wanted, metadata, "metadata", input_hash=intent.input_hash)


class RayProvider:
    """Jobs on one Ray cluster. Every method is safe to repeat after a crash."""

    name = "ray"
    # The submission id is the claim: a run the cluster does not know a while after its intent
    # was never submitted. The grace covers a request that was sent before a crash and is
    # still being handled (the dashboard answers in seconds), with a wide margin.
    adoption_grace = 120.0

    def __init__(
        self,
        repo_root: Path,
        config: RayConfig | None = None,
        environ: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.repo_root = Path(repo_root).resolve()
        self.config = config or RayConfig()
        self._environ = os.environ if environ is None else environ
        self._clock = clock
        self._client: Any = None

    # ---- Availability, checks ---------------------------------------------------------------

    def unavailable(self) -> str:
        if not self._environ.get(ADDRESS_ENV):
            return f"{ADDRESS_ENV} is not set (the address of the Ray cluster's job API)"
        if not self.config.output_uri:
            return "providers.ray.output_uri is not set in trainops.yaml (where runs write outputs)"
        return ""

    def check(self, job: Job, lock: Any) -> list[Problem]:
        """Offline: the workdir exists (the hardware table is checked by `validate`)."""
        spec = job.spec
        if not isinstance(spec, RaySpec) or self._cwd(job, spec).is_dir():
            return []
        from dataclasses import replace

        problem = job.doc.problem(
            ("spec", "workdir"),
            f"workdir {self._display(self._cwd(job, spec))} does not exist",
            "workdir is relative to the repository root; by default the manifest's folder",
        )
        return [replace(problem, job=job.name)]

    # ---- Provider protocol ------------------------------------------------------------------

    def submit(self, submission: Submission) -> RunRef:
        """Start the run of this (job, revision, attempt) unless the cluster has it already.
        A refusal whose cause is unknown is settled by asking the cluster for the id."""
        job = submission.job
        spec = job.spec
        if not isinstance(spec, RaySpec):
            raise ProviderError(f"job {job.name!r} is not a Ray job (provider: {spec.provider})")
        run_id = submission_id(
            job.name, submission.revision, submission.attempt, submission.repository
        )
        ours = _metadata(submission)
        what = f"submitting Ray job {run_id}"
        with self._workdir_zip(job, spec, submission.source_commit) as zip_path:
            client = self._connect()
            kwargs = {
                "entrypoint": shlex.join(["python", "-m", RUNNER, "--", *spec.command]),
                "submission_id": run_id,
                "runtime_env": {
                    "working_dir": str(zip_path),
                    "py_modules": [str(_RUNNER_DIR)],
                    "env_vars": self._job_env(run_id, submission, spec),
                },
                "metadata": ours,
                **_resources(self._hardware(spec)),
            }
            try:
                client.submit_job(**kwargs)
            except RuntimeError:
                # The cluster answered with an error: a duplicate id (ours already), or a refusal.
                try:
                    found = self._get(run_id, what)
                except ProviderError:
                    raise _unknown_outcome(what, "the cluster could not be asked again") from None
                if found is not None and _is_ours(found, ours):
                    return RunRef(run_id, _seconds(found.start_time) or self._clock())
                if found is not None:
                    raise _refused(f"{what}: the cluster holds another job with this id") from None
                raise _refused(
                    f"{what}: the cluster refused the job",
                    "see the Ray dashboard's log for the reason; bump spec.rerun to try again",
                ) from None
            except OSError as exc:  # transport: the request may or may not have arrived
                try:
                    found = self._get(run_id, what)
                except ProviderError:
                    found = None
                if found is not None and _is_ours(found, ours):
                    return RunRef(run_id, _seconds(found.start_time) or self._clock())
                # Not there yet is no proof: a request the server is still handling may create
                # it. Adoption looks again (one get_job_info) until the grace has passed.
                raise _unknown_outcome(what, type(exc).__name__) from None
            except Exception as exc:
                error = _ray_error(what, exc)  # re-raises what is not Ray's own
                if _is_auth_error(exc):
                    raise error from None  # the cluster refused the request: nothing started
                raise _unknown_outcome(what, type(exc).__name__) from None
        return RunRef(run_id, self._clock())

    def observe(self, run_ids: Collection[str]) -> dict[str, Observation]:
        """One `list_jobs` for every asked run; outputs and metrics are read once per run, when
        it has ended (terminal runs are never polled again)."""
        wanted = {r for r in run_ids if _RUN_ID.match(r)}
        if not wanted:
            return {}
        jobs = self._call("listing Ray jobs", lambda c: c.list_jobs())
        found: dict[str, Observation] = {}
        for info in jobs or []:
            run_id = getattr(info, "submission_id", None)
            if run_id in wanted and run_id not in found:
                found[run_id] = self._observation(run_id, info)
        return found

    def cancel(self, run_id: str) -> None:
        """`stop_job`. Idempotent: a finished or unknown job is left as it is."""
        if not _RUN_ID.match(run_id):
            return
        try:
            self._call(f"stopping Ray job {run_id}", lambda c: c.stop_job(run_id), answered=True)
        except _Answered:
            info = self._get(run_id, f"stopping Ray job {run_id}")
            if info is None or _status(info).is_terminal:
                return
            raise ProviderError(f"stopping Ray job {run_id}: the cluster refused") from None

    def logs(self, run_id: str, tail: int = 50) -> str:
        if not _RUN_ID.match(run_id) or tail <= 0:
            return ""
        try:
            text = self._call(
                f"reading the log of Ray job {run_id}",
                lambda c: c.get_job_logs(run_id),
                answered=True,
            )
        except _Answered:
            if self._get(run_id, f"reading the log of Ray job {run_id}") is None:
                return ""
            raise ProviderError(
                f"reading the log of Ray job {run_id}: the cluster refused"
            ) from None
        lines = str(text or "").splitlines()
        return "\n".join(lines[-tail:])

    def owns(self, intent: Intent, seen: Observation) -> str:
        """`Owned`: the submission id and metadata the cluster returned (`not_owned`)."""
        meta = seen.marks.get("metadata")
        return not_owned(seen.run_id, meta if isinstance(meta, Mapping) else {}, intent)

    def find(self, intent: Intent) -> RunRef | None:
        """Adoption: the job with this intent's id, if the cluster has it and its metadata makes
        it this intent's (`not_owned`). One `get_job_info`; a second, for the unscoped id, only
        when the first finds nothing (an intent recorded by a trainops before ids were scoped
        must not be submitted a second time)."""
        ids = [
            submission_id(intent.job, intent.revision, intent.attempt, intent.repository),
            submission_id(intent.job, intent.revision, intent.attempt),
        ]
        for run_id in dict.fromkeys(ids):
            if run_id in intent.taken:
                continue
            info = self._get(run_id, f"looking up Ray job {run_id}")
            if info is None:
                continue
            meta = getattr(info, "metadata", None) or {}
            if not_owned(run_id, meta if isinstance(meta, Mapping) else {}, intent):
                return None
            return RunRef(run_id, _seconds(info.start_time) or intent.created_at)
        return None

    def output_dir(self, run_id: str) -> Path | None:
        """`OutputFolder`, when outputs go to a shared folder: `<output_uri>/<run-id>/outputs`."""
        uri = self.config.output_uri
        if not uri or uri.startswith("s3://") or not _RUN_ID.match(run_id):
            return None
        return Path(uri) / run_id / "outputs"

    def output_prefix(self, run_id: str) -> str | None:
        """`OutputPrefix`, when outputs go to S3: `s3://bucket/prefix/<run-id>/outputs/`."""
        uri = self.config.output_uri
        if not uri or not uri.startswith("s3://") or not _RUN_ID.match(run_id):
            return None
        return f"{uri}/{run_id}/outputs/"

    # ---- internals --------------------------------------------------------------------------

    def _observation(self, run_id: str, info: Any) -> Observation:
        status = _status(info)
        health = _HEALTH.get(status.value, Health.PENDING)
        started, ended = _seconds(info.start_time), _seconds(info.end_time)
        billed = max(0.0, ended - started) if health.terminal and started and ended else None
        error = ""
        if health is Health.FAILED:
            lines = [ln.strip() for ln in str(info.message or "").splitlines() if ln.strip()]
            error = (lines[0] if lines else "the Ray job failed")[:500]
        elif health is Health.CANCELED:
            error = "stopped"
        outputs: dict[str, str] = {}
        found_metrics: dict[str, float] = {}
        if health.terminal:
            try:
                outputs, found_metrics = self._outputs(run_id)
            except ProviderError:
                if health is Health.SUCCEEDED:
                    # A terminal run is never polled again: its outputs must be read first.
                    # Until the storage answers it stays Running here, and is asked again.
                    return Observation(
                        run_id, Health.RUNNING, started_at=started, marks=self._marks(info)
                    )

        return Observation(
            run_id,
            health,
            started_at=started,
            completed_at=ended if health.terminal else None,
            billed_seconds=billed,
            outputs=outputs,
            metrics=found_metrics,
            error=error,
            retryable=health is not Health.CANCELED,
            marks=self._marks(info),
        )

    def _marks(self, info: Any) -> dict[str, Any]:
        meta = getattr(info, "metadata", None)
        return {"metadata": dict(meta) if isinstance(meta, Mapping) else {}}

    def _outputs(self, run_id: str) -> tuple[dict[str, str], dict[str, float]]:
        """DESIGN §2 names, as for local: every file under the run's outputs, by file name
        without extension; the shallowest wins a clash, then the first by path."""
        folder = self.output_dir(run_id)
        if folder is not None:
            if not folder.is_dir() or folder.is_symlink():
                return {}, {}
            rels = [
                p.relative_to(folder).as_posix()
                for p in folder.rglob("*")
                if p.is_file() and not p.is_symlink()
            ]
            found = {name: str(folder / rel) for name, rel in named(rels).items()}
            return found, metrics.read(folder / metrics.FILE)
        prefix = self.output_prefix(run_id)
        if prefix is None:
            return {}, {}
        from trainops.providers import _s3outputs

        return _s3outputs.read(prefix)

    def _hardware(self, spec: RaySpec) -> RayHardware | None:
        if spec.hardware is None:
            return None
        entry = self.config.hardware.get(spec.hardware)
        if entry is None:
            raise _refused(
                f"hardware {spec.hardware!r} is not in providers.ray.hardware",
                "add it to the table in trainops.yaml",
            )
        return entry

    def _job_env(self, run_id: str, submission: Submission, spec: RaySpec) -> dict[str, str]:
        """DESIGN §13: the variables the manifest names, and trainops' own for the run. The
        cluster gives the rest of the environment; nothing of trainops' own is passed."""
        import json

        env = {n: self._environ[n] for n in spec.env if n in self._environ}
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
        if self.config.output_uri:
            env["TRAINOPS_OUTPUT_URI"] = f"{self.config.output_uri}/{run_id}"
        scrub.watch(spec.env)
        return env

    @contextmanager
    def _workdir_zip(self, job: Job, spec: RaySpec, commit: str = "") -> Iterator[Path]:
        """The workdir as one deterministic zip, by the one packaging rule (DESIGN §13b): the
        files of `commit`'s tree (the commit apply is applying; without one, the index's files
        in the working tree), never an untracked file, streamed into the zip; refused over
        `WORKDIR_LIMIT` before the cluster is asked."""
        from trainops.repo import Commit, Source, WorkingTree
        from trainops.workdir import WorkdirError, pack_into

        rel = _workdir_path(job, spec)
        if rel is None:
            raise _refused(f"{job.name}: workdir {spec.workdir} is outside the repository")
        source: Source = Commit(self.repo_root, commit) if commit else WorkingTree(self.repo_root)
        with tempfile.TemporaryDirectory(prefix="trainops-ray-") as tmp:
            path = Path(tmp) / "workdir.zip"
            try:
                with open(path, "w+b") as out:
                    pack_into(out, source, rel, WORKDIR_LIMIT)
            except WorkdirError as exc:
                raise _refused(f"{job.name}: {exc.message}", exc.hint) from None
            yield path

    def _cwd(self, job: Job, spec: RaySpec) -> Path:
        return job_cwd(self.repo_root, job, spec.workdir)

    def _display(self, path: Path) -> str:
        return display_path(self.repo_root, path)

    def _connect(self) -> Any:
        """The client, made once (it checks the cluster's version: two requests)."""
        if self._client is not None:
            return self._client
        address = self._environ.get(ADDRESS_ENV, "")
        if not address:
            raise ProviderError(
                f"no Ray cluster: {ADDRESS_ENV} is not set",
                f"export {ADDRESS_ENV}=http://<head node>:8265 (the cluster's job API)",
            )
        try:
            from ray.job_submission import JobSubmissionClient
        except ImportError:
            raise ProviderError(
                "the Ray provider needs the Ray client", "pip install 'trainops[ray]'"
            ) from None
        for name in ("ray.dashboard.modules.dashboard_sdk", "ray._private.runtime_env.packaging"):
            logging.getLogger(name).setLevel(logging.WARNING)  # upload chatter on stderr

        class _Client(JobSubmissionClient):
            def _do_request(self, *args: Any, **kwargs: Any) -> Any:
                kwargs.setdefault("timeout", TIMEOUT)
                return super()._do_request(*args, **kwargs)

        shown = _safe_address(address)
        try:
            self._client = _Client(address)
        except (OSError, RuntimeError) as exc:
            raise ProviderError(
                f"cannot reach the Ray cluster at {shown} ({type(exc).__name__})",
                f"is {ADDRESS_ENV} the address of the cluster's job API (http://<head>:8265)?",
            ) from None
        except Exception as exc:
            raise _ray_error(f"connecting to the Ray cluster at {shown}", exc) from None
        return self._client

    def _call(self, what: str, call: Callable[[Any], Any], answered: bool = False) -> Any:
        """One request. Transport trouble is a `ProviderError`; an error answer too, or, with
        `answered`, `_Answered` (the caller asks the cluster what is true)."""
        client = self._connect()
        try:
            return call(client)
        except RuntimeError:
            if answered:
                raise _Answered() from None
            raise ProviderError(f"{what}: the cluster answered with an error") from None
        except OSError as exc:
            raise ProviderError(
                f"{what}: cannot reach the Ray cluster ({type(exc).__name__})",
                "the cluster may be down or busy; run again later",
            ) from None
        except Exception as exc:
            raise _ray_error(what, exc) from None

    def _get(self, run_id: str, what: str) -> Any:
        """The job with this id, or None. An error answer (what an unknown id gets, and also a
        failing server) is settled by `list_jobs`, never by reading the error's text."""
        try:
            return self._call(what, lambda c: c.get_job_info(run_id), answered=True)
        except _Answered:
            jobs = self._call(what, lambda c: c.list_jobs()) or []
            return next((j for j in jobs if getattr(j, "submission_id", None) == run_id), None)


def _workdir_path(job: Job, spec: RaySpec) -> str | None:
    """The workdir, repository-relative ("" for the root), decided on the path alone (the
    commit's tree holds it, not the disk); None when it leads outside the repository."""
    import posixpath

    raw = spec.workdir if spec.workdir is not None else posixpath.dirname(job.file)
    if raw.startswith("/"):
        return None
    rel = posixpath.normpath(raw or ".")
    if rel == ".." or rel.startswith("../"):
        return None
    return "" if rel == "." else rel


def _is_auth_error(exc: BaseException) -> bool:
    from ray.exceptions import AuthenticationError

    return isinstance(exc, AuthenticationError)


def _ray_error(what: str, exc: Exception) -> ProviderError:
    """Ray's own errors (`ray.exceptions.RayError`: neither a RuntimeError nor an OSError) as a
    `ProviderError`; anything else is raised again. The client's text is never shown: it holds
    the cluster's answer. `AuthenticationError` is any 401 or 403 of the job API
    (`dashboard_sdk.SubmissionClient._do_request`): the client sends a token only with
    `RAY_AUTH_MODE=token`, from `RAY_AUTH_TOKEN` or the file `RAY_AUTH_TOKEN_PATH` names."""
    from ray.exceptions import RayError

    if _is_auth_error(exc):
        return ProviderError(
            f"{what}: the Ray cluster refused the request (401/403: it uses token "
            "authentication, and no token or a wrong one was sent)",
            "set RAY_AUTH_MODE=token and RAY_AUTH_TOKEN=<the cluster's token> (Ray's own "
            "variables; RAY_AUTH_TOKEN_PATH may name a file holding it instead)",
        )
    if isinstance(exc, RayError):
        return ProviderError(f"{what}: the Ray client failed ({type(exc).__name__})")
    raise exc


def _unknown_outcome(what: str, reason: str) -> OutcomeUnknown:
    return OutcomeUnknown(
        f"{what}: outcome unknown ({reason})",
        "the next apply asks the cluster for the job's id (adoption)",
    )


class _Answered(Exception):
    """The cluster answered a request with an error (the client says why only in text)."""


def _refused(message: str, hint: str = "") -> ProviderError:
    error = ProviderError(message, hint)
    error.retryable = False  # type: ignore[attr-defined]  # resubmitting the same cannot help
    return error


def _metadata(submission: Submission) -> dict[str, str]:
    return {
        "trainops-job": submission.job.name,
        "trainops-revision": submission.revision,
        "trainops-attempt": str(submission.attempt),
        "trainops-input-hash": submission.input_hash,
        "trainops-source-commit": submission.source_commit,
        **({REPOSITORY_META: submission.repository} if submission.repository else {}),
    }


def _is_ours(info: Any, wanted: Mapping[str, str]) -> bool:
    meta = getattr(info, "metadata", None) or {}
    return not marks_mismatch({k: wanted[k] for k in META}, meta, "metadata")


def _status(info: Any) -> Any:
    from ray.job_submission import JobStatus

    try:
        return JobStatus(str(getattr(info.status, "value", info.status)))
    except ValueError:
        return JobStatus.PENDING  # a status this client does not know: not finished


def _seconds(ms: Any) -> float | None:
    if isinstance(ms, int | float) and not isinstance(ms, bool) and ms > 0:
        return float(ms) / 1000.0
    return None


def _resources(entry: RayHardware | None) -> dict[str, Any]:
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


def _safe_address(address: str) -> str:
    """The address fit for a message: scheme, host and port (no userinfo, path or query)."""
    from urllib.parse import urlsplit

    if "://" not in address:
        return address
    parts = urlsplit(address)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname or ''}{port}"
