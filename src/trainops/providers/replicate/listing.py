"""Listing on Replicate (DESIGN §20, `status --all`): the account's trainings, newest first, 100
a page (`GET /v1/trainings`, following each page's `next` cursor as the official client's
`replicate.pagination.paginate` does; shared/ref/README.md "Lists"), each judged against the
jobs of this repository. Replicate keeps no labels, so a training is ours when it carries a
job's marks of §9 (its trainer and version, its input, made through the API), and foreign when
its output goes to one of our destinations without them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from trainops.providers.base import Intent, Listed, Listing
from trainops.providers.replicate.http import Api, next_link, results, timestamp
from trainops.providers.replicate.trainings import is_training_id, matches, observation


def list_trainings(
    api: Api,
    probes: Sequence[Intent],
    version_of: Callable[[str], str],
    *,
    max_calls: int,
    files: Callable[[], Mapping[str, str]],
) -> Listing:
    """Every training of the account within `max_calls` list requests, as `Listed`: ours for
    the first probe whose marks it carries, foreign when its output names a probe's
    destination. `files` (the account's file URLs to package digests) is read at most once."""
    wanted = [(p, p.trainer.partition(":")[0], version_of(p.trainer)) for p in probes]
    to = {p.destination: p.job for p in probes if p.destination}
    seen: list[Mapping[str, str]] = []

    def digests() -> Mapping[str, str]:
        if not seen:
            seen.append(files())
        return seen[0]

    found: list[Listed] = []
    url: str | None = "/v1/trainings"
    calls = 0
    while url and calls < max_calls:
        page = api.call("GET", url, "list trainings")
        calls += 1
        for item in results(page, "list trainings"):
            created = timestamp(item.get("created_at"))
            if created is None or not is_training_id(item.get("id")):
                continue  # what cannot be named is never listed, nor adopted
            listed = _judge(item, created, wanted, to, digests)
            if listed is not None:
                found.append(listed)
        url = next_link(page)
    return Listing(found, calls, complete=url is None)


def _judge(
    item: Mapping[str, object],
    created: float,
    wanted: Sequence[tuple[Intent, str, str]],
    to: Mapping[str, str],
    digests: Callable[[], Mapping[str, str]],
) -> Listed | None:
    if item.get("source") != "web":  # a website training is never trainops's (§9)
        for probe, model, version in wanted:
            if model and matches(item, model, version, probe, digests):
                return Listed(probe.job, observation(item), created)
    output = item.get("output")
    produced = output.get("version") if isinstance(output, Mapping) else None
    went = produced.partition(":")[0] if isinstance(produced, str) else ""
    if went in to:
        return Listed(to[went], observation(item), created, foreign=True)
    return None
