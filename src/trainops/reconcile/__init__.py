"""The reconciler (DESIGN §7, §8): one pass in phases, each a module of its own.

| phase | module | DESIGN |
| --- | --- | --- |
| the pass itself | `reconciler.py` (`Reconciler.apply`, `preview`) | §7, §8 |
| shared handles | `context.py` (`Context`, `RunReporter`) | §11 |
| read | `read.py`: state at one version, `here`, `Limits`, snapshots to diff | §9 |
| observe | `observe.py`: one batch per provider about the active runs | §6 |
| ownership | `ownership.py`: a run is ours only if its provider record says so; the plan | §9 |
| refresh, plan | `trainops.plan` (pure) | §7 |
| review | `reviewed.py`: submits against the reviewed plans of the commit (block: held) | §20 |
| binding | `binding.py`: a saved plan (`apply FILE`) checked against the pass's plan | §20 |
| intents | `intents.py`: the commit that must win the swap before any provider call | §8.1 |
| act | `act.py`: adopt, cancel, submit | §8.2-4 |
| deliver, promote | `deliver.py` | §10, §19 |
| report | `report.py`: the outbox, pruned jobs | §11, §6 |
| record | `record.py`: the outcome's commit, merged onto newer state after a lost swap | §8, §9 |
| inputs | `snapshot.py` (input resolved, data staged), `drift.py` (plan only) | §2, §9, §18 |
"""

from trainops.reconcile.context import PromotionReporter, RunReporter, SetReporter
from trainops.reconcile.reconciler import Reconciler
from trainops.reconcile.result import Outcome, Pass

__all__ = ["Outcome", "Pass", "PromotionReporter", "Reconciler", "RunReporter", "SetReporter"]
