"""The Provider protocol of DESIGN §10 and the values it exchanges.

A provider is an adapter between the reconciler and one training service. Every method is safe to
call again after a crash: `submit` is the only one that creates anything, and the reconciler
guards it with an intent (DESIGN §8) so that a retried submit goes through `find` first.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from pathlib import Path

    from trainops.data import Package
    from trainops.errors import Problem
    from trainops.manifest import Job
    from trainops.state.model import Health


@dataclass(frozen=True)
class RunRef:
    """What a provider returns for a run it created or found."""

    run_id: str
    created_at: float  # unix seconds, as the provider reports it


@dataclass(frozen=True)
class Observation:
    """A provider's view of one run at one moment."""

    run_id: str
    health: Health
    started_at: float | None = None
    completed_at: float | None = None
    billed_seconds: float | None = None  # what the provider bills (Replicate: metrics.predict_time)
    outputs: Mapping[str, str] = field(default_factory=dict)  # named outputs (DESIGN §2)
    metrics: Mapping[str, float] = field(default_factory=dict)  # final metrics (DESIGN §19)
    error: str = ""  # the provider's reason for a failure, one line
    retryable: bool = True  # False when a resubmission cannot help
    detail: str = ""  # what a running run is doing, as the provider says (SageMaker: Training)
    # What a running run reported so far (its metrics.json while it runs: local, and Ray with a
    # shared output folder), for a sweep's early stop (DESIGN §21); never recorded.
    progress: Mapping[str, float] = field(default_factory=dict)
    created_at: float | None = None  # when the provider made it, by its own record (`adopt`)
    # What the provider's own record says of whose run this is (HF labels, Ray metadata,
    # Replicate's trainer and input): what `Owned.owns` judges, never shown or recorded.
    marks: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class Submission:
    """Everything a provider needs to start one run of one revision."""

    job: Job
    revision: str
    attempt: int
    input: Mapping[str, Any]  # the resolved input (output references substituted)
    input_hash: str
    snapshot_path: str  # where the resolved manifest is kept on the state branch
    # spec.data packaged (DESIGN §18), by input key; `input` holds each one's staged value
    data: Mapping[str, Package] = field(default_factory=dict)
    source_commit: str = ""  # the commit apply was applying (DESIGN §3), for the run's metadata
    repository: str = ""  # `trainops.repoid`: the ownership mark every submission carries (§9)


@dataclass(frozen=True)
class Intent:
    """A recorded decision to submit, made before the provider is called (DESIGN §8)."""

    job: str
    revision: str
    attempt: int
    input_hash: str
    created_at: float  # unix seconds, before the provider call
    provider: str
    trainer: str = ""  # owner/name:version, when the provider has one
    destination: str = ""
    # Run ids already bound to other runs (an earlier attempt with the same input, another job):
    # never this intent's, however well they match.
    taken: frozenset[str] = frozenset()
    repository: str = ""  # `trainops.repoid` of the repository applying it


@runtime_checkable
class Provider(Protocol):
    """One training service. Implementations live in this package and are listed in `REGISTRY`."""

    name: str

    def check(self, job: Job, lock: Any) -> list[Problem]:
        """Offline checks of `job` (its input against the locked schema). No network."""
        ...

    def submit(self, submission: Submission) -> RunRef:
        """Start one run. Raise `ProviderError` when the outcome is known to be a failure, and
        `OutcomeUnknown` when the request may have created a run (the caller adopts it later,
        never retries blindly)."""
        ...

    def observe(self, run_ids: Collection[str]) -> dict[str, Observation]:
        """Current state of every asked run, batched. A run the provider does not know is absent."""
        ...

    def cancel(self, run_id: str) -> None:
        """Stop a run. Idempotent: a run already terminal, or unknown, returns silently."""
        ...

    def logs(self, run_id: str, tail: int = 50) -> str:
        """The last `tail` lines of a run's log; empty when there are none."""
        ...

    def find(self, intent: Intent) -> RunRef | None:
        """Adoption (DESIGN §8): the run this intent created, if the provider has one (same job
        inputs, created at or after the intent). None when there is none."""
        ...


def input_hash(value: Mapping[str, Any]) -> str:
    """A stable fingerprint of a resolved training input: sha256 of its canonical JSON, 16 hex.
    Intents record it so adoption (DESIGN §8) can recognise the run a crashed submit created."""
    import hashlib
    import json

    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def job_cwd(repo_root: Path, job: Job, workdir: str | None) -> Path:
    """Where a job's command runs (local, ray): `workdir` from the repository root, by default
    the manifest's own folder."""
    if workdir is not None:
        return (repo_root / workdir).resolve()
    return (repo_root / job.file).parent.resolve()


def display_path(repo_root: Path, path: Path) -> str:
    """`path` as a message shows it: relative to the repository root when it lies inside."""
    try:
        return path.relative_to(repo_root).as_posix() or "."
    except ValueError:
        return str(path)


def check_own_run(job: str, run: Any, expected_id: str, *, s3: bool = False) -> str:
    """Why a recorded run cannot be the one its id names (empty when it can), for providers
    whose run id is a function of (job, revision, attempt) and whose outputs lie in the run's
    own `<run-id>/outputs/` folder: an absolute path, or with `s3` an `s3://` key. A state
    branch is anyone's to write, so an output elsewhere is refused rather than delivered."""
    if run.run_id and run.run_id != expected_id:
        return f"run id {run.run_id!r} is not {job}'s (its run would be {expected_id!r})"
    for key, value in sorted(run.outputs.items()):
        if s3 and value.startswith("s3://"):
            path = "/" + value.removeprefix("s3://")
        elif value.startswith("/"):
            path = value
        else:
            path = ""
        parts = PurePosixPath(path).parts if path else ()
        inside = [i for i in range(len(parts) - 1) if parts[i : i + 2] == (run.run_id, "outputs")]
        if not run.run_id or not inside or ".." in parts or len(parts) <= inside[-1] + 2:
            return f"output {key!r} ({value}) is not in the run's own output folder"
    return ""


@runtime_checkable
class Owned(Protocol):
    """Optional: a provider whose records carry trainops' ownership marks (DESIGN §9). Before
    a recorded run is canceled, adopted, delivered or promoted, the reconciler asks whether
    the provider's record of it is the run its state record claims. A state file can name any
    run id; only this answer proves a run is this job's."""

    def owns(self, intent: Intent, seen: Observation) -> str:
        """Why `seen` (this provider's `observe` answer, with its `marks`) is not the run that
        `intent` (the state record: job, revision, attempt, input hash, time, repository)
        describes; "" when it is. Offline: judged from what `observe` returned."""
        ...


@runtime_checkable
class DataInputs(Protocol):
    """Optional: a provider that takes `spec.data` packages (DESIGN §18); its largest package is
    listed in `providers.limits.DATA_LIMITS`, which `validate` checks offline.

    Apply calls `stage` after the run's intent won the compare-and-swap (so racing reconcilers
    never stage twice) and before `submit`, and puts the value into the run's input. Idempotent:
    a package whose digest is already staged (and still available) is reused, never sent twice;
    a crash between `stage` and `submit` stages nothing new on the next pass."""

    def stage(self, package: Package) -> str:
        """Make `package` available to runs; return what input[key] holds (a path or URL).
        Raise `ProviderError` when it cannot be."""
        ...


@runtime_checkable
class Adoptable(Protocol):
    """Optional: how long after an intent a provider may still reveal the run it created.
    Absent: DESIGN §8's 10 minutes."""

    adoption_grace: float


@runtime_checkable
class OutputFolder(Protocol):
    """Optional: a provider whose runs write their output files on this machine. Delivery reads
    files only inside a run's own folder (DESIGN §13), whatever the recorded outputs say."""

    def output_dir(self, run_id: str) -> Path | None:
        """The folder run `run_id` writes its outputs to (None: not an id of this provider)."""
        ...


@runtime_checkable
class OutputPrefix(Protocol):
    """Optional: a provider whose runs write their outputs to object storage (a Ray cluster's
    s3:// output_uri). Delivery downloads only objects under a run's own prefix (DESIGN §13),
    whatever the recorded outputs say."""

    def output_prefix(self, run_id: str) -> str | None:
        """`s3://bucket/prefix/<run-id>/outputs/` of run `run_id` (None: none here)."""
        ...


@runtime_checkable
class LogFollower(Protocol):
    """Optional: a log read by byte offsets, so `trainops logs --follow` asks only for what is
    new instead of the whole log on every poll (DESIGN §13: bounded)."""

    def log_tail(self, run_id: str, tail: int) -> tuple[str, int]:
        """The last `tail` lines, and the offset where they end."""
        ...

    def log_after(self, run_id: str, offset: int, final: bool = False) -> tuple[str, int]:
        """Whole lines written after `offset` (bounded; with `final`, an unterminated last line
        too), and the offset to ask from next."""
        ...


@runtime_checkable
class Located(Protocol):
    """Optional: a provider whose runs live in one place (the local provider: one clone on one
    machine, DESIGN §10). Each run records the location it was submitted from; the provider
    sees only the runs of its own location, and any other is `Unknown` here."""

    def location(self, claim: bool = False) -> str:
        """Where runs submitted from here live. Read-only unless `claim`, which apply passes
        before it records an intent (the location may have to be made and kept first)."""
        ...


@runtime_checkable
class Deploys(Protocol):
    """Optional: a provider whose model versions serve behind named deployments (Replicate).
    Promotion (DESIGN §19) moves a deployment's release to a run's produced version."""

    def deploy(self, deployment: str, version: str) -> str:
        """Point `deployment` (`owner/name`) at model version `version` (`owner/name:id`);
        return a one-line summary. Idempotent: a deployment already on that version is not
        updated again. Raise `ProviderError` when it cannot be done."""
        ...


@runtime_checkable
class Reaper(Protocol):
    """Optional: a provider that must itself record a run's end when the run's process vanished
    (nothing else will). Apply calls `reap` before `observe`; read-only commands never do, so
    `observe` stays read-only (DESIGN §13)."""

    def reap(self, run_ids: Collection[str]) -> None:
        """Record as failed every asked run that is gone without a final status, and stop what
        is left of it. Idempotent."""
        ...


@runtime_checkable
class Availability(Protocol):
    """Optional: whether this provider can be used from here at all, asked before a plan is
    made (DESIGN §12: `plan` shows what a provider call would meet without making it)."""

    def unavailable(self) -> str:
        """Why no run can be submitted from here now ("" when it can): missing credentials, a
        machine that cannot keep a run. Offline and cheap: the environment, never the network."""
        ...


@dataclass(frozen=True)
class Listed:
    """One run a provider listed (DESIGN §20): whose job's marks it carries (`foreign` False:
    ours, though maybe no state file knows it) or, `foreign` True, whose destination it goes
    to without carrying our marks."""

    job: str
    seen: Observation
    created_at: float
    foreign: bool = False
    hardware: str = ""  # what it bills by, when the provider says


@dataclass(frozen=True)
class Listing:
    """What `Listable.list_runs` found within its budget: `calls` list requests made,
    `complete` False when the budget ran out before the end of the list."""

    runs: list[Listed]
    calls: int
    complete: bool = True
    # What `status --all` says of this listing besides its runs, one line each: what it skipped
    # and why (a malformed record), what the provider cannot tell (foreign runs).
    notes: tuple[str, ...] = ()


@runtime_checkable
class Listable(Protocol):
    """Optional: a provider that can list its runs (DESIGN §20, `status --all`). A provider
    without it is "not listable": runs nobody declared cannot be found there."""

    def list_runs(self, probes: Sequence[Intent], max_calls: int) -> Listing:
        """The runs carrying the marks of one of `probes` (an intent per job as its current
        revision would be submitted, `created_at` 0), and, where the provider can tell, runs
        to a probe's destination without them; newest first, at most `max_calls` list
        requests. Read-only."""
        ...

    def claims(self, probe: Intent, seen: Observation) -> str:
        """Why `seen` (as `observe` returned it) does not carry `probe`'s marks, by its
        provider record alone; empty when it does. What `adopt` checks before binding."""
        ...


@runtime_checkable
class Attempted(Protocol):
    """Optional, beside `Listable`: a provider whose run ids or marks name the attempt (local,
    Ray, SageMaker ids; Hugging Face labels). `adopt` records an adopted run under the attempt
    its provider record names, so that its id and marks stay its own record's."""

    def attempt_of(self, seen: Observation) -> int | None:
        """The attempt `seen`'s marks name (None: they name none)."""
        ...
