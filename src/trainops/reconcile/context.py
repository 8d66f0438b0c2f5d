"""What every phase of a pass works with: the workspace and its desired jobs, the state store, the
providers, the clock, where events and reports go, and what this process remembers between the
passes of one `apply --wait` (deliveries and promotions that failed here are not retried until
the next apply).

Inputs: built once per command (`commands.reconciler`). Outputs: the `Context` each phase
function takes as its first argument; `Reconciler` is one.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from trainops.fingerprints import Observer
from trainops.plan import Desired, SetOutcome
from trainops.providers import Providers
from trainops.providers.base import Intent
from trainops.state.base import StateStore
from trainops.state.model import Run
from trainops.workspace import Workspace

if TYPE_CHECKING:
    from trainops.github.reviewed import ReviewedPlan

MAX_SWAPS = 5  # lost compare-and-swaps before a pass gives up (DESIGN §8)


class RunReporter(Protocol):
    """Where health changes are reported (GitHub commit statuses and comments, DESIGN §11).

    Each run records the health last reported, so the state branch is the outbox: a report that
    fails is sent by a later apply, and a report is never a reason to hold back provider actions.
    """

    def report(self, job: str, run: Run, log_tail: str) -> bool:
        """Report `run`'s current health; True once delivered. Must be safe to repeat (a crash
        after delivery and before the state write sends it again)."""
        ...


@runtime_checkable
class PromotionReporter(Protocol):
    """Optional, for a `RunReporter`: where a promotion decided after its run was reported (a
    revert moving an alias back, a move retried after a failure) is told, on the commit being
    applied. Must be safe to repeat."""

    def report_promotion(self, job: str, sha: str, lines: list[str]) -> bool:
        """Post `lines` (what each alias did and why) about `job` on commit `sha`."""
        ...


@runtime_checkable
class SetReporter(Protocol):
    """Optional, for a `RunReporter`: where a sweep set is told once every member is settled
    (DESIGN §21: one table of its members instead of a comment per member). Must be safe to
    repeat."""

    def report_set(self, outcome: SetOutcome, sha: str) -> bool:
        """Post the settled set's table on commit `sha`."""
        ...


class Reviews(Protocol):
    """Where the reviewed plans of a commit are read, and where what no reviewed plan showed
    is told (DESIGN §20; `github.unreviewed.GitHubReviews`, used by `reconcile.reviewed`)."""

    def plans(self, commit: str) -> tuple[Sequence[ReviewedPlan], str]:
        """The reviewed plans of `commit` (`github.reviewed.reviewed_plans`) and why some could
        not be read ("" when nothing was amiss). Never raises for what GitHub answers."""
        ...

    def report(self, commit: str, unreviewed: Mapping[str, str], held: bool) -> None:
        """Tell where the workflow runs (a commit comment on `commit`, the job summary) which
        submissions no reviewed plan showed and whether they were `held` or started. Safe to
        repeat: the same list is not posted twice."""
        ...


class Context:
    """The handles one workspace's passes share."""

    def __init__(
        self,
        ws: Workspace,
        store: StateStore,
        providers: Providers,
        clock: Callable[[], float] = time.time,
        on_event: Callable[[str], None] | None = None,
        reporter: RunReporter | None = None,
        inputs: Observer | None = None,
    ) -> None:
        self.ws, self.store, self.providers, self.clock = ws, store, providers, clock
        self.inputs = inputs  # remote input fingerprints (DESIGN §18)
        self.desired: Desired = ws.desired()
        self.on_event = on_event or (lambda _msg: None)
        self.reporter = reporter
        # Where the reviewed plans of the applied commit are read (DESIGN §20): `--github`.
        self.reviews: Reviews | None = None
        # Deliveries that failed in this process: `apply --wait` must not hammer a target that
        # is down on every pass; the next apply retries them.
        self.failed_deliveries: set[tuple[str, str, str]] = set()
        self.failed_promotions: set[tuple[str, str, str]] = set()  # likewise for aliases
        self._repository = ""

    @property
    def repository(self) -> str:
        """This repository's id (`trainops.repoid`): the mark each submission carries, and
        that a recorded run's provider record must carry before it is acted on (DESIGN §9)."""
        if not self._repository:
            from trainops.repoid import repository_id

            self._repository = repository_id(self.ws.root)
        return self._repository

    def observer(self) -> Observer:
        """The remote input observer (DESIGN §18). Embedded without one, only the hosts the
        environment names are asked."""
        if self.inputs is None:
            self.inputs = Observer(mode="named")
        return self.inputs

    def intent_of(self, job: str, run: Run, taken: frozenset[str] = frozenset()) -> Intent:
        """What `run`'s record claims it was submitted as: the marks its provider record must
        carry (`Owned.owns`), and what adoption looks for."""
        return Intent(
            job,
            run.revision,
            run.attempt,
            run.input_hash,
            run.created_at,
            run.provider,
            run.trainer,
            run.destination,
            taken,
            self.repository,
        )
