"""A Hugging Face job's labels: its ownership marks (DESIGN §9). The Jobs API has no idempotency
key, so every job carries labels naming its job, revision, attempt and intent; adoption (§8)
lists jobs by those labels, server-side, and `not_owned` says why a job's labels are not an
intent's run."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from trainops.providers import marks
from trainops.providers.base import Intent
from trainops.repoid import scope

LABEL = "trainops"  # every job trainops starts carries trainops=1


def intent_id(job: str, revision: str, attempt: int, input_hash: str) -> str:
    """The label that names one intent: what the reconciler decided to submit."""
    text = f"{job}\0{revision}\0{attempt}\0{input_hash}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# `trainops.repoid.scope` of the repository that submitted it: hex digits, a value any label
# rule accepts (the service's rules for label values are not documented).
REPOSITORY_LABEL = marks.REPOSITORY


def labels_of(
    job: str, revision: str, attempt: int, input_hash: str, repository: str = ""
) -> dict[str, str]:
    """The labels a job carries: its ownership marks (DESIGN §9, `marks.build`, the repository
    as its scope when there is one), `trainops=1`, and the intent in place of the input hash
    and source commit (a label value is short). Adoption filters by all but the repository
    (a job started before trainops labelled it must still be found)."""
    named = marks.build(job, revision, attempt, repository=repository or None, scoped=True)
    return {
        LABEL: "1",
        **{k: named[k] for k in marks.RUN},
        "trainops-intent": intent_id(job, revision, attempt, input_hash),
        **({REPOSITORY_LABEL: named[REPOSITORY_LABEL]} if repository else {}),
    }


def not_owned(labels: Mapping[str, Any], intent: Intent, *, adopting: bool = False) -> str:
    """Why a job carrying `labels` is not `intent`'s run ("" when it is): every trainops label
    must say this job, revision, attempt and intent, and the repository label this
    repository. A job with no repository label was started by a trainops that did not write
    it yet: its other labels must match (a job of another repository that old cannot be told
    apart, and is as much this job's as its state file says). Not when `adopting`: a run found
    for an intent of this trainops was submitted with the repository label, and a job without
    one is anyone's in the namespace who copied the other labels (they are visible to all)."""
    want = labels_of(intent.job, intent.revision, intent.attempt, intent.input_hash)
    if not intent.input_hash:
        want.pop("trainops-intent")  # a record without one (never written by apply)
    if not any(k.startswith("trainops") for k in labels):
        return "it carries no trainops labels (someone else's job)"
    mismatch = marks.mismatch(want, labels, "label")
    if mismatch:
        return mismatch
    theirs = labels.get(REPOSITORY_LABEL)
    ours = scope(intent.repository)
    if theirs is None and adopting and intent.repository:
        return f"it has no {REPOSITORY_LABEL} label (an intent of this trainops always sets it)"
    if theirs is not None and theirs != ours:
        return (
            f"it was started for another repository ({REPOSITORY_LABEL}={str(theirs)[:40]!r}; "
            f"{intent.repository!r} is {ours!r})"
        )
    return ""
