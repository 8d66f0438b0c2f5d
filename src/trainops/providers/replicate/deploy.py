"""Promotion to a Replicate deployment (DESIGN §19, `Deploys`): move the deployment's release to
a model version. Trainops moves releases; it never creates deployments."""

from __future__ import annotations

from trainops.providers.replicate.http import Api, NotFound, reason


def deploy(api: Api, deployment: str, version: str) -> str:
    """Read the deployment's current release; update it (the official client's
    `deployments.update`) only when it serves another version. An update is safe to repeat, so
    it is retried on 429, 5xx and transport errors like a read."""
    import httpx
    from replicate.exceptions import ReplicateError

    owner, _, name = deployment.partition("/")
    model, _, version_id = version.partition(":")
    if not version_id:
        raise api.error(f"no model version to deploy to {deployment} (got {version!r})")
    try:
        current = api.call("GET", f"/v1/deployments/{owner}/{name}", "get deployment")
    except NotFound:
        raise api.error(
            f"Replicate deployment {deployment} does not exist",
            "create it on replicate.com (or with the API) first; trainops moves its "
            "release, it does not create deployments",
        ) from None
    release = current.get("current_release")
    if isinstance(release, dict) and release.get("version") == version_id:
        return f"deployment {deployment} already serves {version}"
    client = api.client()
    for attempt in range(1, api.max_attempts + 1):
        api.pacer.acquire("default")
        try:
            client.deployments.update(owner, name, version=version_id)
            return f"deployment {deployment} now serves {version}"
        except ReplicateError as exc:
            if exc.status != 429 and (exc.status or 0) < 500:
                raise api.error(
                    f"cannot update deployment {deployment} to {model}:{version_id}: {reason(exc)}",
                    "the token's account must own the deployment, and the version must "
                    "be of the deployment's model",
                ) from None
            failure = reason(exc)
        except (httpx.HTTPError, ValueError) as exc:
            failure = type(exc).__name__
        if not api.pause(attempt):
            raise api.error(
                f"cannot update deployment {deployment}: {failure} after {attempt} attempts"
            )
    raise api.error(f"cannot update deployment {deployment}")  # pragma: no cover
