"""The ownership marks of DESIGN §9 as a provider keeps them in a key -> value map (Ray job
metadata, SageMaker tags, Hugging Face labels): one builder and one reader, so the marks each
provider writes and judges cannot drift apart.

Every such run carries `trainops-job`, `trainops-revision`, `trainops-attempt`, the repository
(`trainops-repository`) and, where the provider has room, `trainops-input-hash` and
`trainops-source-commit`. Only the repository's spelling is the provider's: the full id where
values are long enough (Ray metadata), its `repoid.scope` digest where a value is short or
its alphabet narrow (SageMaker tags, Hugging Face labels). Pure values, no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from trainops.repoid import scope

if TYPE_CHECKING:
    from trainops.providers.base import Intent, Submission

JOB = "trainops-job"
REVISION = "trainops-revision"
ATTEMPT = "trainops-attempt"
INPUT_HASH = "trainops-input-hash"  # the mark naming a run's input
REPOSITORY = "trainops-repository"
SOURCE_COMMIT = "trainops-source-commit"
RUN = (JOB, REVISION, ATTEMPT)  # the marks naming the run of one attempt


def build(
    job: str,
    revision: str,
    attempt: int,
    *,
    input_hash: str = "",
    repository: str | None = None,
    source_commit: str = "",
    scoped: bool = False,
) -> dict[str, str]:
    """The marks of one attempt of one job, in this order: job, revision, attempt, input hash,
    repository (None: none; `scoped`: as its `repoid.scope` digest, which is one even of an
    empty id, as the SageMaker name that ends in it), source commit. An empty input hash or
    source commit is left out (a reader treats a missing mark as unset)."""
    out = {JOB: job, REVISION: revision, ATTEMPT: str(attempt)}
    if input_hash:
        out[INPUT_HASH] = input_hash
    if repository is not None:
        out[REPOSITORY] = scope(repository) if scoped else repository
    if source_commit:
        out[SOURCE_COMMIT] = source_commit
    return out


def of_submission(submission: Submission, *, scoped: bool = False) -> dict[str, str]:
    """The marks a submission's run carries (`build` of its job, revision, attempt, input
    hash, source commit and repository: always its digest when `scoped`, else the id when
    there is one)."""
    return build(
        submission.job.name,
        submission.revision,
        submission.attempt,
        input_hash=submission.input_hash,
        repository=submission.repository if scoped or submission.repository else None,
        source_commit=submission.source_commit,
        scoped=scoped,
    )


def wanted(intent: Intent, *, scoped: bool = False, repository: bool = False) -> dict[str, str]:
    """What a run of `intent` must carry exactly: its job, revision and attempt, and with
    `repository` its repository as `build` spells it (the input hash is judged apart, by
    `mismatch`: a run marked before that mark existed has none)."""
    out = build(intent.job, intent.revision, intent.attempt)
    if repository:
        out[REPOSITORY] = scope(intent.repository) if scoped else intent.repository
    return out


def attempt_named(got: Mapping[str, Any]) -> int | None:
    """The attempt `got` (a record's marks, as the provider returned them: input) names; None
    when it names none, or not as `build` writes one (digits, under 6 of them, not 0)."""
    value = got.get(ATTEMPT)
    if not isinstance(value, str) or not value.isdigit() or len(value) >= 6:
        return None
    return int(value) if int(value) >= 1 else None


def mismatch(
    want: Mapping[str, str], got: Mapping[str, Any], kind: str, *, input_hash: str = ""
) -> str:
    """Why a provider's record does not carry these marks, "" when it does: the first of
    `want` (mark -> value) that `got` (the record's tags, labels or metadata, as the provider
    returned them: input) does not hold exactly, as `its <kind> <mark> is 'x', not 'y'`. With
    `input_hash`: a record whose `trainops-input-hash` names another input is not the run
    either (one written before that mark existed has none, and is judged without it). Every
    `Owned.owns` and `Listable.claims` compares marks through here."""
    for key, value in want.items():
        if got.get(key) != value:
            return f"its {kind} {key} is {str(got.get(key))[:80]!r}, not {value!r}"
    given = got.get(INPUT_HASH)
    if input_hash and given is not None and given != input_hash:
        return f"its {kind} {INPUT_HASH} names another input ({str(given)[:80]!r})"
    return ""
