"""What the planner is given (DESIGN §7): the desired jobs (`Desired`, one `Target` per valid job
in git and its revision) and the rules they run under (`Limits`: policy, prices, which
providers cannot be used from here now, provider timeouts).

Inputs: the workspace builds these (`Workspace.desired()`, `Workspace.limits()`). Outputs: values
only; `Limits.estimate` prices a spec's worst case (`cost`, DESIGN §4).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from trainops import cost
from trainops.manifest import DEFAULT_PRICES, AnySpec, Job, Policy, SweepSet, set_of


@dataclass(frozen=True)
class Target:
    """A valid job in git and its current revision."""

    job: Job
    revision: str
    # spec.data packaged (DESIGN §18), by input key: their digests are in `revision`
    packages: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def name(self) -> str:
        return self.job.name


@dataclass(frozen=True)
class Desired:
    targets: Mapping[str, Target]
    invalid: frozenset[str] = frozenset()
    complete: bool = True  # every manifest file parsed: only then may a missing job be pruned
    # When each job's manifest last changed in git (commit time): jobs waiting for a concurrency
    # slot are admitted oldest change first. Jobs without one come last, by name.
    changed_at: Mapping[str, float] = field(default_factory=dict)
    # The sweep sets (DESIGN §21) by name; their members are ordinary targets.
    sets: Mapping[str, SweepSet] = field(default_factory=dict)

    def is_invalid(self, name: str) -> bool:
        """Whether the job's manifest does not validate: its own, or (for a member of a set,
        `<set>.<suffix>`) its set's, whose members cannot be known then: left alone, never
        pruned."""
        return name in self.invalid or set_of(name) in self.invalid


@dataclass(frozen=True)
class Limits:
    """Policy and prices, as the planner needs them."""

    policy: Policy = field(default_factory=Policy)
    prices: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_PRICES))
    # Providers that cannot be used from here now, and why (no credentials, unreachable, a
    # machine that cannot keep a local run): their jobs wait, Blocked with that reason. Not a
    # refusal: the manifests are fine, and no intent or attempt is spent on a call never sent.
    unavailable: Mapping[str, str] = field(default_factory=dict)
    # Providers that stop every run at a timeout trainops sends: the seconds a job without
    # `budget.max_duration` gets there (trainops.yaml), which its worst case is priced at.
    timeouts: Mapping[str, int] = field(default_factory=dict)
    # Jobs whose submissions are held, and why (DESIGN §20: not in the reviewed plan of the
    # pull request the commit came from, under `policy.require_reviewed_plan: block`). A
    # refusal: Blocked, no intent, no run; its cancels go ahead (they spend nothing).
    held: Mapping[str, str] = field(default_factory=dict)

    def estimate(self, spec: AnySpec) -> cost.Estimate:
        return cost.estimate(spec, self.prices, self.timeouts.get(spec.provider))

    def timeout(self, spec: AnySpec) -> int | None:
        """How long the provider lets a run of `spec` go, when it enforces a timeout."""
        if spec.provider not in self.timeouts:
            return None
        return spec.budget.max_duration or self.timeouts[spec.provider]
