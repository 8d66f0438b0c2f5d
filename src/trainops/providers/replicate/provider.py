"""The Replicate provider (DESIGN §10): trainings through the official `replicate` client.

The provider is the `Provider` protocol's face; the work is in its neighbours: `http` (the
client, pacing, the one retry layer, token-scrubbed errors), `submit` (trainer versions,
destination models, the one create), `observe` (the batched walk of the trainings list),
`adopt` (`find` and `owns`), `files` (`spec.data` as account files), `listing` (`status --all`),
`deploy` (promotion to a deployment) and `trainings` (a training's JSON as values).
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from trainops.errors import Problem, ProviderError
from trainops.lockfile import Lock, check_input
from trainops.manifest import ReplicateSpec
from trainops.providers.base import Intent, Listing, Observation, RunRef, Submission
from trainops.providers.replicate.adopt import find_training, owns_training
from trainops.providers.replicate.deploy import deploy
from trainops.providers.replicate.files import Files
from trainops.providers.replicate.http import Api, NotFound, Pacer, timestamp
from trainops.providers.replicate.listing import list_trainings
from trainops.providers.replicate.observe import observe
from trainops.providers.replicate.submit import Submitter
from trainops.providers.replicate.trainings import training_path
from trainops.retry import Budget, Policy

if TYPE_CHECKING:
    from trainops.data import Package
    from trainops.manifest import Job, ReplicateConfig

DEFAULT_HARDWARE = "gpu-l40s"  # for a destination model created on first submit


class ReplicateProvider:
    """Trainings on Replicate. The token is read from the environment variable `token_env` on
    first use and never appears in an error message."""

    name = "replicate"
    adoption_grace = 600.0  # DESIGN §8: an intent with no visible run is lost after 10 minutes

    def __init__(
        self,
        *,
        token_env: str = "REPLICATE_API_TOKEN",
        environ: Mapping[str, str] | None = None,
        lock: Lock | None = None,
        default_hardware: str = DEFAULT_HARDWARE,
        timeout: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        pacer: Pacer | None = None,
        rng: random.Random | None = None,
        max_attempts: int = 5,
        max_backoff: float = 30.0,
        budget: Budget | None = None,
        clock_skew: float = 60.0,
        observe_extra_pages: int = 2,
        find_max_pages: int = 50,
    ) -> None:
        self._environ = os.environ if environ is None else environ
        self.token_env = token_env
        self.lock = lock
        self.default_hardware = default_hardware
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.max_backoff = max_backoff
        self.clock_skew = clock_skew  # how far Replicate's clock may trail ours (adoption)
        self.observe_extra_pages = observe_extra_pages
        self.find_max_pages = find_max_pages
        self.api = Api(
            environ=self._environ,
            token_env=token_env,
            timeout=timeout,
            pacer=pacer or Pacer(clock=clock, sleep=sleep),
            # The one retry layer (trainops.retry): the client's own RetryTransport is off.
            retry=Policy(
                budget=budget or Budget(sleep=sleep),
                max_attempts=max_attempts,
                base=1.0,
                cap=max_backoff,
                rng=rng or random.Random(),
                wall=wall,
            ),
            max_attempts=max_attempts,
            wall=wall,
        )
        self.base_url = self.api.base_url
        self.pacer, self.retry = self.api.pacer, self.api.retry
        self.submitter = Submitter(self.api, lock)
        self.files = Files(self.api)

    @classmethod
    def from_config(cls, config: ReplicateConfig, **kw: Any) -> ReplicateProvider:
        return cls(token_env=config.token_env, **kw)

    def close(self) -> None:
        self.api.close()

    def __enter__(self) -> ReplicateProvider:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- Provider protocol ------------------------------------------------------------------

    def unavailable(self) -> str:
        """Availability: without its token no call can be made (a fork's pull request, a
        newcomer's machine), so a plan shows the job Blocked rather than "to submit"."""
        return "" if self._environ.get(self.token_env) else f"{self.token_env} is not set"

    def check(self, job: Job, lock: Any) -> list[Problem]:
        """Offline: the job's input against the TrainingInput schema its lock entry pins."""
        spec = job.spec
        if not isinstance(spec, ReplicateSpec):
            return []
        lock = lock if isinstance(lock, Lock) else self.lock
        entry = lock.entry(spec.trainer) if lock is not None else None
        if entry is None:
            if ":" in spec.trainer:
                return []  # pinned in the manifest; its inputs are checked by the service
            problem = job.doc.problem(
                ("spec", "trainer"),
                f"trainer {spec.trainer} has no version and trainops.lock does not pin it",
                "run `trainops lock` and commit trainops.lock, or write owner/name:version",
            )
            return [replace(problem, job=job.name)]
        model = spec.trainer.partition(":")[0]
        return check_input(
            spec.input,
            entry.schema,
            job.doc.locate,
            job.file,
            job=job.name,
            trainer=model,
            data=tuple(spec.data),
        )

    def submit(self, submission: Submission) -> RunRef:
        """Create the destination model when missing (private), then exactly one training."""
        spec = submission.job.spec
        if not isinstance(spec, ReplicateSpec):
            raise ProviderError(f"job {submission.job.name!r} is not a Replicate job")
        submitter = self.submitter
        model, version = submitter.trainer_version(spec.trainer)
        submitter.ensure_destination(spec.destination, spec.hardware or self.default_hardware)
        run_id, created = submitter.create(model, version, submission, spec.destination)
        return RunRef(run_id, timestamp(created) or time.time())

    def observe(self, run_ids: Collection[str]) -> dict[str, Observation]:
        """Batched (`observe.observe`): the newest-first list while its pages reach the asked
        runs more cheaply than a GET each, then a GET for each run still missing. `run_ids` may
        be a mapping of run id -> when it was created (the reconciler passes its records')."""
        return observe(
            self.api, run_ids, extra_pages=self.observe_extra_pages, clock_skew=self.clock_skew
        )

    def cancel(self, run_id: str) -> None:
        """Idempotent: a training already terminal is answered as it is; an unknown one is
        ignored."""
        try:
            self.api.call("POST", f"{training_path(run_id)}/cancel", "cancel training")
        except NotFound:
            return

    def logs(self, run_id: str, tail: int = 50) -> str:
        try:
            data = self.api.call("GET", training_path(run_id), "get training")
        except NotFound:
            return ""
        lines = str(data.get("logs") or "").splitlines()
        return "\n".join(lines[-tail:]) if tail > 0 else ""

    # ---- optional capabilities ---------------------------------------------------------------

    def deploy(self, deployment: str, version: str) -> str:
        """`Deploys`: move the deployment's release to `version` unless it serves it already."""
        return deploy(self.api, deployment, version)

    def stage(self, package: Package) -> str:
        """`DataInputs`: the URL of an account file holding `package`, uploaded once per digest
        (`files.Files.stage`)."""
        return self.files.stage(package)

    def find_file(self, package: Package) -> str | None:
        return self.files.find_file(package)

    def file_digests(self) -> dict[str, str]:
        return self.files.file_digests()

    def owns(self, intent: Intent, seen: Observation) -> str:
        """`Owned`: Replicate keeps no labels, so a training is this record's when its trainer,
        version, source, creation time, destination and input agree (`adopt.owns_training`)."""
        return owns_training(
            intent,
            seen,
            self._version(intent.trainer),
            provider=self.name,
            clock_skew=self.clock_skew,
            files=self.files.file_digests,
        )

    def find(self, intent: Intent) -> RunRef | None:
        """Adoption: the training this intent created — same trainer (and version when known),
        same input hash, destination not contradicted, created at or after the intent (allowing
        `clock_skew`), not `intent.taken`. Prefers the earliest created after the intent."""
        return find_training(
            self.api,
            intent,
            self._version(intent.trainer),
            clock_skew=self.clock_skew,
            max_pages=self.find_max_pages,
            files=self.files.file_digests,
        )

    def list_runs(self, probes: Sequence[Intent], max_calls: int) -> Listing:
        """`Listable`: the account's trainings, 100 a page, at most `max_calls` pages, judged
        against `probes` (`listing.list_trainings`)."""
        return list_trainings(
            self.api, probes, self._version, max_calls=max_calls, files=self.files.file_digests
        )

    def claims(self, probe: Intent, seen: Observation) -> str:
        """Why the observed training does not carry `probe`'s marks (empty when it does), for
        `adopt` (DESIGN §20): what `owns` checks, and its input must still be there to prove
        it (a training whose input the API removed cannot be told from a foreign one)."""
        given = seen.marks.get("input")
        if not isinstance(given, Mapping) or not given:
            return "its input is no longer kept by Replicate, so its marks cannot be checked"
        return self.owns(probe, seen)

    def _version(self, trainer: str) -> str:
        """The version (or prefix) a training of `trainer` must have: the full id when resolved
        or locked."""
        version = trainer.partition(":")[2]
        if version and len(version) < 64:
            version = self.submitter.known_version(trainer) or version
        return version
