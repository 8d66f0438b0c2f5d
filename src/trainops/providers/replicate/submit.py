"""Submitting a training (DESIGN §10): the trainer's full version, the destination model (created
private when missing), then exactly one create.

A create is never retried blindly: only a 429 (the service said no) is retried, after the wait
it names (`trainops.retry`: `ratelimit-reset`, the body's `~30s`, Retry-After); a create whose
outcome is unknown (timeout after sending, dropped connection, 5xx) raises `OutcomeUnknown` and
the run is adopted later through `find` (§8).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from trainops.errors import ProviderError
from trainops.lockfile import Lock
from trainops.providers.base import Submission
from trainops.providers.replicate.http import Api, NotFound, next_link, reason, results
from trainops.providers.replicate.trainings import is_training_id


class SubmissionRejected(ProviderError):
    """Replicate refused the training for a reason a resubmission of the same job cannot fix
    (input rejected by the trainer's schema, trainer version gone)."""

    retryable = False


def webhook_params(environ: Mapping[str, str]) -> dict[str, Any]:
    """With `TRAINOPS_PUBLIC_URL` set (a `trainops serve` reachable there), a training asks
    Replicate to POST its start and completion to the controller's webhook (DESIGN §17)."""
    public = environ.get("TRAINOPS_PUBLIC_URL", "").strip().rstrip("/")
    if not public.startswith(("http://", "https://")):  # `serve` refuses any other value
        return {}
    return {
        "webhook": f"{public}/webhooks/replicate",
        "webhook_events_filter": ["start", "completed"],
    }


class Submitter:
    """What a submit needs to know across jobs of one pass: trainer versions resolved and
    destination models known to exist."""

    def __init__(self, api: Api, lock: Lock | None) -> None:
        self.api = api
        self.lock = lock
        self.destinations: set[str] = set()
        self.versions: dict[str, str] = {}

    def known_version(self, trainer: str) -> str | None:
        """The full version of `trainer` when resolved or locked (no call)."""
        if trainer in self.versions:
            return self.versions[trainer]
        entry = self.lock.entry(trainer) if self.lock is not None else None
        return entry.version if entry is not None else None

    def trainer_version(self, trainer: str) -> tuple[str, str]:
        """(model, full version id) of `trainer`: pinned, locked, or the one version whose id
        starts with the given prefix."""
        model, _, version = trainer.partition(":")
        if len(version) == 64:
            return model, version
        known = self.known_version(trainer)
        if known:
            return model, known
        if not version:
            raise ProviderError(
                f"trainer {trainer} has no version and trainops.lock does not pin it",
                "run `trainops lock` and commit trainops.lock, or write owner/name:version",
            )
        owner, _, name = model.partition("/")
        url: str | None = f"/v1/models/{owner}/{name}/versions"
        found: list[str] = []
        try:
            while url:
                page = self.api.call("GET", url, "list versions")
                found += [
                    v["id"]
                    for v in results(page, "list versions")
                    if isinstance(v.get("id"), str) and v["id"].startswith(version)
                ]
                url = next_link(page)
        except NotFound:
            raise SubmissionRejected(f"trainer {model} does not exist on Replicate") from None
        if len(found) != 1:
            raise SubmissionRejected(
                f"trainer {trainer}: {len(found) or 'no'} versions of {model} start with {version}",
                "write the full version id",
            )
        self.versions[trainer] = found[0]
        return model, found[0]

    def ensure_destination(self, destination: str, hardware: str) -> None:
        if destination in self.destinations:
            return
        owner, _, name = destination.partition("/")
        try:
            self.api.call("GET", f"/v1/models/{owner}/{name}", "get destination model")
        except NotFound:
            self._create_model(owner, name, hardware)
        self.destinations.add(destination)

    def _create_model(self, owner: str, name: str, hardware: str) -> None:
        import httpx
        from replicate.exceptions import ReplicateError

        api = self.api
        client = api.client()
        for attempt in range(1, api.max_attempts + 1):
            api.pacer.acquire("default")
            try:
                client.models.create(
                    owner=owner, name=name, visibility="private", hardware=hardware
                )
                return
            except ReplicateError as exc:
                if exc.status == 409:
                    return  # created meanwhile (by us, before a lost answer, or by a racer)
                if exc.status != 429 and (exc.status or 0) < 500:
                    raise api.error(
                        f"cannot create destination model {owner}/{name}: {reason(exc)}",
                        f"the token's account must be {owner} or a member "
                        f"of it; or create the model on replicate.com",
                    ) from None
                failure = reason(exc)
            except httpx.HTTPError as exc:
                failure = type(exc).__name__
            if not api.pause(attempt):
                raise api.error(
                    f"cannot create destination model {owner}/{name}: {failure} "
                    f"after {attempt} attempts"
                )

    def create(
        self, model: str, version: str, submission: Submission, destination: str
    ) -> tuple[str, str | None]:
        """One training: (its id, its `created_at`)."""
        import httpx
        from replicate.exceptions import ReplicateError

        api = self.api
        client = api.client()
        what = f"creating the training of {submission.job.name} (attempt {submission.attempt})"
        for attempt in range(1, api.max_attempts + 1):
            api.pacer.acquire("create")
            api.retry_after = None
            try:
                training = client.trainings.create(
                    model=model,
                    version=version,
                    input=dict(submission.input),
                    destination=destination,
                    **webhook_params(api.environ),
                )
            except ReplicateError as exc:
                if exc.status == 429:
                    api.pacer.drain("create")
                    if not api.pause(attempt):
                        raise api.error(
                            f"{what}: still rate limited after {attempt} attempts",
                            "run apply again later",
                        ) from None
                    continue
                if (exc.status or 0) >= 500:
                    raise api.unknown(what, f"Replicate answered {exc.status}") from None
                if exc.status == 404 and "destination" in (exc.detail or ""):
                    self.destinations.discard(destination)
                    raise api.error(f"{what}: {reason(exc)}") from None
                cls = SubmissionRejected if exc.status in (400, 404, 422) else ProviderError
                raise cls(api.redact(f"{what}: {reason(exc)}")) from None
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
                # Nothing was sent: trying again cannot make a second training.
                if not api.pause(attempt):
                    raise api.error(
                        f"{what}: cannot reach Replicate at {api.base_url} ({type(exc).__name__})"
                    ) from None
            except httpx.HTTPError as exc:
                raise api.unknown(what, type(exc).__name__) from None
            except Exception as exc:  # an answer the client could not read: it was created
                raise api.unknown(what, f"unreadable answer ({type(exc).__name__})") from None
            else:
                if not is_training_id(training.id):
                    # Accepted, but named no run we could ever observe: adoption finds it.
                    raise api.unknown(what, "the answer has no valid training id")
                return str(training.id), training.created_at
        raise api.error(f"{what}: gave up")  # pragma: no cover - the loop always returns
