"""One reconcile pass (DESIGN §7, §8), as a pipeline of phases:

    read -> observe -> refresh -> plan (pure) -> review -> act -> deliver/promote -> report
    -> record

`preview()` (`trainops plan`, `status`) stops after the plan. `apply()` acts: adopt, record
intents (a state commit that must win the swap before any run is started or canceled), cancel,
submit, deliver, promote, report, and writes the outcome as one more state commit. With
`--github`, each submit is first compared with the reviewed plans of the commit (DESIGN §20,
`reconcile.reviewed`), and held under `policy.require_reviewed_plan: block`. A lost swap
before the provider calls means another reconciler is at work: re-read and re-plan. A lost swap
after them merges this pass's run records onto the newer state, never dropping a run id.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial

from trainops.errors import StateConflict
from trainops.faults import crashpoint
from trainops.plan import Op, plan, refresh
from trainops.reconcile.act import adopt_intents, cancel_runs, submit_runs
from trainops.reconcile.binding import refuse_stale
from trainops.reconcile.context import MAX_SWAPS, Context
from trainops.reconcile.deliver import deliver_outputs, promote_aliases
from trainops.reconcile.drift import input_drift
from trainops.reconcile.intents import record_intents
from trainops.reconcile.observe import observe
from trainops.reconcile.ownership import held_plan, left_alone, owned_plan
from trainops.reconcile.read import limits, locations, read_state, snapshots_to_diff
from trainops.reconcile.record import save_outcome
from trainops.reconcile.report import mark_pruned, report_health
from trainops.reconcile.result import Pass
from trainops.reconcile.reviewed import report_unreviewed, review
from trainops.savedplan.model import AppliedPlan, SavedPlanDoc, StalePlan
from trainops.state.model import JobState

LOST_SWAP = "state moved while applying: another reconciler wrote trainops/state first"


class Reconciler(Context):
    """Drives the providers towards the desired state of one workspace."""

    def preview(self, drift: bool = False) -> Pass:
        """Plan without acting (`trainops plan`, `status`); with `drift` (plan), the remote
        inputs of each job's current run are observed again and compared."""
        version, recorded = read_state(self)
        here = locations(self, recorded)
        notes: list[str] = []
        unreachable: dict[str, str] = {}
        foreign: dict[str, str] = {}
        observed = observe(self, recorded, here, notes, unreachable=unreachable, foreign=foreign)
        recorded = left_alone(recorded, foreign)
        state = refresh(recorded, observed, self.ws.config.prices_usd_per_second)

        def planned(held: Mapping[str, str]) -> Pass:
            the_plan = plan(
                self.desired, state, limits(self, unreachable, held), self.clock(), here
            )
            return Pass(the_plan, state, version=version, notes=notes)

        result = review(self, planned({}), planned)
        submitting = {a.job for a in result.plan.actions if a.op is Op.SUBMIT}
        result.files = snapshots_to_diff(self, recorded, version, submitting)
        result.drift = input_drift(self, state, result.notes) if drift else {}
        return result

    def apply(self, saved: SavedPlanDoc | AppliedPlan | None = None, file: str = "") -> Pass:
        """One reconcile pass. Raises `StateConflict` only after `MAX_SWAPS` lost swaps. With
        a `saved` plan (`apply FILE`, DESIGN §20), exactly its actions or `StalePlan`: the
        pass must plan them from the state version it read, and its intents must win the swap
        against that version."""
        for _ in range(MAX_SWAPS):
            version, recorded = read_state(self)
            here = locations(self, recorded)
            foreign: dict[str, str] = {}
            observed = observe(self, recorded, here, reap=True, foreign=foreign)
            recorded = left_alone(recorded, foreign)
            state = refresh(recorded, observed, self.ws.config.prices_usd_per_second)
            crashpoint("after-observe")
            recorded, result = owned_plan(self, version, recorded, state, observed, foreign, here)
            # the same plan with some jobs held, for the review phase (DESIGN §20)
            again = partial(
                held_plan, self, version, recorded, result.state, observed, foreign, here
            )
            result = review(self, result, again)
            if saved is not None:
                refuse_stale(self, saved, file, result)
            try:
                self._act(result, recorded, None if saved is None else file)
            except StateConflict:
                if saved is not None:
                    raise  # lost after acting: the runs are recorded, never re-planned
                self.on_event("state moved while planning; re-reading and planning again")
                continue
            return result
        raise StateConflict(
            "state kept moving under this apply (another reconciler is busy)",
            "run apply again in a moment",
        )

    def _act(self, result: Pass, recorded: dict[str, JobState], saved: str | None = None) -> None:
        now = self.clock()
        adopt_intents(self, result, now)
        try:
            committed, inputs = record_intents(self, result, recorded, now)  # must win the swap
        except StateConflict:
            if saved is not None:  # a saved plan's version lost the swap: nothing was done
                raise StalePlan(saved, [LOST_SWAP]) from None
            raise
        cancel_runs(self, result)
        submit_runs(self, result, inputs)
        deliver_outputs(self, result)
        promote_aliases(self, result)
        report_health(self, result)
        report_unreviewed(self, result)
        mark_pruned(self, result.state)
        save_outcome(self, result, committed)
