"""Writing a saved plan (DESIGN §20): the planned actions of a `Plan` (`planned`, each with
its worst case and provider timeout), the document bound to the workspace and the state
version, every string scrubbed (the file is a CI artifact) and its digest of what is written
(`make`), and its text (`dump`)."""

from __future__ import annotations

import json
from typing import Any

from trainops.savedplan.digest import UNSIGNED, digest_of, prices_digest
from trainops.savedplan.model import FORMAT, Binding, PlannedAction, SavedPlanDoc


def planned(plan: Any) -> list[PlannedAction]:
    """The actions of a `Plan`, each with its worst case and provider timeout."""
    from trainops.plan import Adopt, Cancel, Deliver, Promote, Submit

    out = []
    for a in plan.actions:
        fields: dict[str, Any] = {"op": a.op.value, "job": a.job}
        if isinstance(a, Submit | Adopt | Cancel):
            fields.update(revision=a.revision, attempt=a.attempt)
        if isinstance(a, Cancel | Deliver | Promote):
            fields["run_id"] = a.run_id or None
        if isinstance(a, Submit | Cancel):
            fields["reason"] = a.reason
        if isinstance(a, Deliver | Promote):
            fields["target"] = a.target
        if isinstance(a, Promote):
            fields.update(candidate=a.candidate or None, reason=a.verdict or None)
        if isinstance(a, Submit):
            view = plan.jobs.get(a.job)
            estimate = view.estimate if view is not None else None
            fields["worst_case_usd"] = None if estimate is None else estimate.attempt_usd
            fields["timeout_seconds"] = view.timeout if view is not None else None
        out.append(PlannedAction(**fields))
    return out


def make(
    binding: Binding, state_version: str, plan: Any, report: str, created_at: str
) -> SavedPlanDoc:
    """The saved plan of `plan` (its JSON report `report`, as `plan --output json` printed it)."""
    from trainops.scrub import scrub_json, scrubber

    body = {
        "format": FORMAT,
        "repository": binding.repository,
        "commit": binding.commit,
        "state_version": state_version,
        "lock_digest": binding.lock_digest,
        "prices_digest": prices_digest(binding.prices),
        "prices_usd_per_second": {k: float(v) for k, v in sorted(binding.prices.items())},
        "created_at": created_at,
        "actions": [a.model_dump() for a in planned(plan)],
        "report": json.loads(report),
    }
    # The file is attached to CI artifacts: no credential reaches it, whatever a run's error,
    # output or a reason quotes (DESIGN §13). The digest is of what is written.
    body = scrub_json(body, scrubber())
    unsigned = SavedPlanDoc(digest=UNSIGNED, **body)
    return unsigned.model_copy(update={"digest": digest_of(dump(unsigned).encode())})


def dump(doc: SavedPlanDoc) -> str:
    return doc.model_dump_json(indent=2) + "\n"
