"""Observing trainings in batch (DESIGN §10): walk the newest-first trainings list while the pages
still reach back to the asked runs more cheaply than a GET each, then fetch only the rest one by
one, so observing 1,000 runs costs about 10 calls, not 1,000.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from typing import Any

from trainops.providers.base import Observation
from trainops.providers.replicate.http import (
    PAGE_SIZE,
    Api,
    NotFound,
    next_link,
    results,
    timestamp,
)
from trainops.providers.replicate.trainings import observation, training_path


class Walk:
    """What the list pages read so far showed: how many, and the span of creation times."""

    __slots__ = ("items", "newest", "oldest", "pages")

    def __init__(self) -> None:
        self.pages = 0
        self.items = 0
        self.newest: float | None = None
        self.oldest: float | None = None

    def read(self, items: list[Mapping[str, Any]]) -> None:
        self.pages += 1
        self.items += len(items)
        for item in items:
            created = timestamp(item.get("created_at"))
            if created is None:
                continue
            self.newest = created if self.newest is None else max(self.newest, created)
            self.oldest = created if self.oldest is None else min(self.oldest, created)

    def seconds_per_page(self) -> float | None:
        """Creation time one page of the list spans, judged from the pages read; None when they
        show no span to judge by (a page of ties tells nothing of how far back the next goes)."""
        if self.newest is None or self.oldest is None or self.items < 2:
            return None
        span = self.newest - self.oldest
        if span <= 0:
            return None
        return span / (self.items - 1) * PAGE_SIZE


def observe(
    api: Api, run_ids: Collection[str], *, extra_pages: int, clock_skew: float
) -> dict[str, Observation]:
    """`run_ids` may be a mapping of run id -> when it was created (unix seconds): the choice
    to read another page is then made from how much time the pages seen so far spanned, so a
    shared account whose list is full of other people's trainings is still paged through when
    that is cheaper, and a run older than the pages reached is fetched singly, never missed.
    Without times, as many pages are read as the asked runs would fill, and `extra_pages`
    more."""
    wanted = set(run_ids)
    since: dict[str, float] = {}
    if isinstance(run_ids, Mapping):
        since = {
            k: float(v)
            for k, v in run_ids.items()
            if isinstance(v, int | float) and math.isfinite(v)
        }
    found: dict[str, Observation] = {}
    walk = Walk()
    url: str | None = "/v1/trainings"
    # Never more pages than GETs would have cost, whatever the pages say.
    cap = len(wanted) + extra_pages
    while url and walk.pages < cap:
        missing = wanted - found.keys()
        if not missing or (
            walk.pages and not page_on(missing, since, walk, found, extra_pages, clock_skew)
        ):
            break
        page = api.call("GET", url, "list trainings")
        items = results(page, "list trainings")
        walk.read(items)
        for item in items:
            if item.get("id") in wanted:
                found[item["id"]] = observation(item)
        url = next_link(page)
    for run_id in sorted(wanted - found.keys()):
        try:
            item = api.call("GET", training_path(run_id), "get training")
        except NotFound:
            continue
        found[run_id] = observation(item, run_id)
    return found


def page_on(
    missing: set[str],
    since: Mapping[str, float],
    walk: Walk,
    found: Mapping[str, Observation],
    extra_pages: int,
    clock_skew: float,
) -> bool:
    """Whether reading more pages is expected to cost fewer calls than a GET for each run
    still missing. One page costs what one GET does."""
    if len(missing) < 2:
        return False
    timed = sorted((since[r] for r in missing if r in since), reverse=True)
    per_page = walk.seconds_per_page()
    if timed and per_page is not None:
        # Plan: page back far enough to reach the k newest missing runs, GET the others.
        untimed = len(missing) - len(timed)
        best = len(missing)  # stop now: a GET each
        for k, created in enumerate(timed, start=1):
            behind = walk.oldest - created + clock_skew  # type: ignore[operator]
            pages = max(1, math.ceil(behind / per_page)) if behind > 0 else 1
            best = min(best, pages + (len(timed) - k) + untimed)
        return best < len(missing)
    # No times to judge by: the pages the asked runs would fill, and a few more.
    asked = len(found) + len(missing)
    return walk.pages < math.ceil(asked / PAGE_SIZE) + extra_pages
