"""Adoption on Replicate (DESIGN §8): which training an intent created (`find`), and whether an
observed training is the one a record names (`owns`). Replicate keeps no labels, so both judge
by what a training carries: trainer, version, input hash, creation time, destination.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from trainops.errors import ProviderError
from trainops.providers.base import Intent, Observation, RunRef
from trainops.providers.replicate.http import Api, next_link, results, timestamp
from trainops.providers.replicate.trainings import is_training_id, matches


def find_training(
    api: Api,
    intent: Intent,
    version: str,
    *,
    clock_skew: float,
    max_pages: int,
    files: Callable[[], Mapping[str, str]],
) -> RunRef | None:
    """The training this intent created: same trainer (and `version` prefix), same input hash,
    destination not contradicted, created at or after the intent (allowing `clock_skew`), not
    `intent.taken`. Prefers the earliest created after the intent. `files` maps the account's
    file URLs to package digests, called at most once."""
    model = intent.trainer.partition(":")[0]
    cutoff = intent.created_at - clock_skew
    seen: list[Mapping[str, str]] = []

    def digests() -> Mapping[str, str]:
        # A training's input holds its data's file URL where the intent recorded the
        # package digest (DESIGN §18): the account's files map one to the other.
        if not seen:
            seen.append(files())
        return seen[0]

    after: list[tuple[float, str]] = []
    before: list[tuple[float, str]] = []
    url: str | None = "/v1/trainings"
    for _ in range(max_pages):
        if not url:
            break
        page = api.call("GET", url, "list trainings")
        reached = False
        for item in results(page, "list trainings"):
            created = timestamp(item.get("created_at"))
            if created is None or not is_training_id(item.get("id")):
                continue  # never adopt what cannot be named
            if created < cutoff:
                reached = True
                continue
            if item.get("id") not in intent.taken and matches(
                item, model, version, intent, digests
            ):
                (after if created >= intent.created_at else before).append((created, item["id"]))
        if reached:
            break
        url = next_link(page)
    else:
        if url:
            raise ProviderError(
                f"searched {max_pages} pages of trainings without reaching the "
                f"time of {intent.job}'s submission; not adopting blindly",
                "run apply again later, or cancel stray trainings on replicate.com",
            )
    pick = min(after) if after else (max(before) if before else None)
    return RunRef(pick[1], pick[0]) if pick else None


def owns_training(
    intent: Intent,
    seen: Observation,
    version: str,
    *,
    provider: str,
    clock_skew: float,
    files: Callable[[], Mapping[str, str]],
) -> str:
    """Why the observed training is not this record's (empty when it is): made with the
    recorded trainer (model, and `version` when known), through the API (not the website), no
    earlier than the intent (allowing `clock_skew`), towards the recorded destination when its
    output names one, and with the recorded input hash while its input is still kept (the API
    removes a training's input after a while: then the other marks decide)."""
    item = seen.marks
    model = intent.trainer.partition(":")[0]
    if not model:
        return "its record names no trainer to compare the training with"
    if item.get("model") != model:
        return f"it was made with {str(item.get('model'))[:80]!r}, not {model!r}"
    if version and not str(item.get("version", "")).startswith(version):
        return f"it was made with another version of {model}"
    if item.get("source") == "web":
        return "it was started on the website, not by trainops"
    created = timestamp(item.get("created_at"))
    if created is None or created < intent.created_at - clock_skew:
        return "it was created before this job's intent"
    output = item.get("output")
    produced = output.get("version") if isinstance(output, Mapping) else None
    went = produced.partition(":")[0] if isinstance(produced, str) else ""
    if went and intent.destination and went != intent.destination:
        return f"its output goes to {went[:80]!r}"
    given = item.get("input")
    if isinstance(given, Mapping) and given and intent.input_hash:
        probe = Intent(
            intent.job, intent.revision, intent.attempt, intent.input_hash, 0.0, provider
        )
        if not matches({"input": given}, "", "", probe, files):
            return "its input is not the one this job's record says it was given"
    return ""
