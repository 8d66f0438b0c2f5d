"""Submitting a run: one `submit_job` with the run's id, which the cluster refuses a second job
with atomically, so a crashed or racing submit can never start a second copy. A refusal whose
cause is unknown is settled by asking the cluster for the id, never by reading the error's text.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

from trainops.errors import ProviderError
from trainops.manifest import RayConfig, RaySpec
from trainops.providers.base import RunRef, Submission
from trainops.providers.ray import package
from trainops.providers.ray.client import (
    Cluster,
    is_auth_error,
    ray_error,
    refused,
    seconds,
    unknown_outcome,
)
from trainops.providers.ray.ids import is_ours, metadata, submission_id


def submit(
    cluster: Cluster,
    submission: Submission,
    *,
    repo_root: Path,
    config: RayConfig,
    environ: Mapping[str, str],
    clock: Callable[[], float],
) -> RunRef:
    """Start the run of this (job, revision, attempt) unless the cluster has it already.
    A refusal whose cause is unknown is settled by asking the cluster for the id."""
    job = submission.job
    spec = job.spec
    if not isinstance(spec, RaySpec):
        raise ProviderError(f"job {job.name!r} is not a Ray job (provider: {spec.provider})")
    run_id = submission_id(job.name, submission.revision, submission.attempt, submission.repository)
    ours = metadata(submission)
    what = f"submitting Ray job {run_id}"
    with package.workdir_zip(repo_root, job, spec, submission.source_commit) as zip_path:
        client = cluster.connect()
        env = package.job_env(environ, config.output_uri, run_id, submission, spec)
        kwargs = {
            "entrypoint": package.entrypoint(spec.command),
            "submission_id": run_id,
            "runtime_env": package.runtime_env(zip_path, env),
            "metadata": ours,
            **package.resources(package.hardware(config, spec)),
        }
        try:
            client.submit_job(**kwargs)
        except RuntimeError:
            # The cluster answered with an error: a duplicate id (ours already), or a refusal.
            try:
                found = cluster.get(run_id, what)
            except ProviderError:
                raise unknown_outcome(what, "the cluster could not be asked again") from None
            if found is not None and is_ours(found, ours):
                return RunRef(run_id, seconds(found.start_time) or clock())
            if found is not None:
                raise refused(f"{what}: the cluster holds another job with this id") from None
            raise refused(
                f"{what}: the cluster refused the job",
                "see the Ray dashboard's log for the reason; bump spec.rerun to try again",
            ) from None
        except OSError as exc:  # transport: the request may or may not have arrived
            try:
                found = cluster.get(run_id, what)
            except ProviderError:
                found = None
            if found is not None and is_ours(found, ours):
                return RunRef(run_id, seconds(found.start_time) or clock())
            # Not there yet is no proof: a request the server is still handling may create
            # it. Adoption looks again (one get_job_info) until the grace has passed.
            raise unknown_outcome(what, type(exc).__name__) from None
        except Exception as exc:
            error = ray_error(what, exc)  # re-raises what is not Ray's own
            if is_auth_error(exc):
                raise error from None  # the cluster refused the request: nothing started
            raise unknown_outcome(what, type(exc).__name__) from None
    return RunRef(run_id, clock())
