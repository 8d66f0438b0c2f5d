"""What a pass hands back (DESIGN §7, §12): the plan it made, the state it ended with, what
happened to each action, and what a preview could not see.

Inputs: filled in by the phases of one pass. Outputs: `Pass` and its `Outcome`s, rendered by
`render`/`output` and judged by `commands.settled`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from trainops.errors import Problem
from trainops.plan import Action, Plan
from trainops.state.model import JobState
from trainops.state.trust import state_problems


@dataclass(frozen=True)
class Outcome:
    """What happened to one action."""

    action: Action
    ok: bool
    detail: str = ""


@dataclass
class Pass:
    """The result of one reconcile pass."""

    plan: Plan
    state: dict[str, JobState]
    outcomes: list[Outcome] = field(default_factory=list)
    version: str = ""
    notes: list[str] = field(default_factory=list)  # what a preview could not see
    # The snapshots a preview read (DESIGN §9: only those a diff needs), by path, so a plan
    # report can diff each job's spec against the snapshot it last submitted. Empty after apply.
    files: Mapping[str, str] = field(default_factory=dict)
    # Per job, each input whose object changed behind its URL since the current revision's run
    # saw it (DESIGN §18): `input drift: KEY changed behind its URL`. Only `preview(drift=True)`.
    drift: Mapping[str, list[str]] = field(default_factory=dict)
    # Per job, each submit no reviewed plan of the commit showed and how it differs (DESIGN
    # §20, `reconcile.reviewed`; only with `--github`), and whether they were held (`block`).
    unreviewed: Mapping[str, str] = field(default_factory=dict)
    held_unreviewed: bool = False

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.ok]

    @property
    def problems(self) -> list[Problem]:
        """State files that failed validation (their jobs were left alone)."""
        return state_problems(self.state)
