"""`RayProvider`, the `Provider` protocol's face for Ray (DESIGN §10): availability, the
offline check, adoption (`find`, `owns`) and where outputs lie; the work is done by `submit`,
`observe`, `cancel` and `logs`, each through the one `Cluster` client."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from trainops.errors import Problem
from trainops.manifest import Job, RayConfig, RaySpec
from trainops.providers import marks
from trainops.providers.base import (
    Intent,
    Listing,
    Observation,
    RunRef,
    Submission,
    display_path,
    job_cwd,
)
from trainops.providers.ray import cancel, listing, logs, observe, submit
from trainops.providers.ray.client import ADDRESS_ENV, Cluster, seconds
from trainops.providers.ray.ids import not_owned, submission_id


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
        self.cluster = Cluster(self._environ)  # the client, made on first use

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
        if not isinstance(spec, RaySpec):
            return []
        cwd = job_cwd(self.repo_root, job, spec.workdir)
        if cwd.is_dir():
            return []
        problem = job.doc.problem(
            ("spec", "workdir"),
            f"workdir {display_path(self.repo_root, cwd)} does not exist",
            "workdir is relative to the repository root; by default the manifest's folder",
        )
        return [replace(problem, job=job.name)]

    # ---- Provider protocol ------------------------------------------------------------------

    def submit(self, submission: Submission) -> RunRef:
        """Start the run of this (job, revision, attempt) unless the cluster has it already
        (`submit.submit`)."""
        return submit.submit(
            self.cluster,
            submission,
            repo_root=self.repo_root,
            config=self.config,
            environ=self._environ,
            clock=self._clock,
        )

    def observe(self, run_ids: Collection[str]) -> dict[str, Observation]:
        """One `list_jobs` for every asked run (`observe.observe`)."""
        return observe.observe(self.cluster, self.config.output_uri, run_ids)

    def cancel(self, run_id: str) -> None:
        """`stop_job`. Idempotent: a finished or unknown job is left as it is."""
        cancel.cancel(self.cluster, run_id)

    def logs(self, run_id: str, tail: int = 50) -> str:
        return logs.logs(self.cluster, run_id, tail)

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
            info = self.cluster.get(run_id, f"looking up Ray job {run_id}")
            if info is None:
                continue
            meta = getattr(info, "metadata", None) or {}
            if not_owned(run_id, meta if isinstance(meta, Mapping) else {}, intent):
                return None
            return RunRef(run_id, seconds(info.start_time) or intent.created_at)
        return None

    # ---- Runs nobody declared (DESIGN §20) ---------------------------------------------------

    def list_runs(self, probes: Sequence[Intent], max_calls: int) -> Listing:
        """`Listable`: one `list_jobs` (Ray's list is not paged), judged against `probes`."""
        return listing.list_runs(self.cluster, self.config.output_uri, probes, max_calls)

    def claims(self, probe: Intent, seen: Observation) -> str:
        """`Listable`, for `adopt`: this repository's id and metadata of `probe`'s job,
        revision and input, at the attempt its metadata names."""
        meta = seen.marks.get("metadata")
        return listing.claims(probe, seen.run_id, meta if isinstance(meta, Mapping) else {})

    def attempt_of(self, seen: Observation) -> int | None:
        """`Attempted`: the attempt its metadata names."""
        meta = seen.marks.get("metadata")
        return marks.attempt_named(meta) if isinstance(meta, Mapping) else None

    def output_dir(self, run_id: str) -> Path | None:
        """`OutputFolder`, when outputs go to a shared folder: `<output_uri>/<run-id>/outputs`."""
        return observe.output_dir(self.config.output_uri, run_id)

    def output_prefix(self, run_id: str) -> str | None:
        """`OutputPrefix`, when outputs go to S3: `s3://bucket/prefix/<run-id>/outputs/`."""
        return observe.output_prefix(self.config.output_uri, run_id)
