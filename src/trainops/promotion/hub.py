"""A Hub branch or tag as an alias (huggingface_hub `list_repo_refs`, `create_branch`,
`delete_branch`, `create_tag`, `delete_tag`): pointed at the commit that delivered the run.

The Hub has no call that moves a ref: a move is delete then create. A crash between the two
leaves the ref missing, and the next apply creates it; the ref is read first every time, so a
ref already at the commit is never written again.
"""

from __future__ import annotations

import os
from typing import Any

from trainops.delivery.hubapi import TOKEN_HINT, endpoint, guard
from trainops.faults import crashpoint
from trainops.manifest import HuggingFaceAlias
from trainops.promotion.base import PromotionError
from trainops.state.model import Run


def _api() -> Any:
    from huggingface_hub import HfApi

    token = os.environ.get("HF_TOKEN") or os.environ.get("HUGGING_FACE_HUB_TOKEN")
    if not token:
        raise PromotionError("cannot move a Hub ref: HF_TOKEN is not set", TOKEN_HINT)
    return HfApi(endpoint=endpoint(), token=token)


def pointed(api: Any, alias: HuggingFaceAlias) -> str | None:
    """The commit `alias` points at now (None: no such ref)."""
    refs = guard(
        lambda: api.list_repo_refs(alias.repo, repo_type="model"),
        f"reading the refs of the Hub repo {alias.repo}",
    )
    found = refs.branches if alias.kind == "branch" else refs.tags
    return next((str(r.target_commit) for r in found if r.name == alias.ref), None)


def delivery_title(job: str, revision: str, run_id: str) -> str:
    """The title of the commit trainops' Hub delivery of a run writes (delivery/huggingface)."""
    return f"trainops: {job} revision {revision} (run {run_id})"


def written_for(api: Any, repo: str, commit: str, job: str, run: Run) -> str:
    """Why `commit` is not the one trainops' delivery of `run` wrote to `repo` ("" when it
    is): a state record names the commit, and the state branch is input (DESIGN §9), so a
    forged one could point an alias at any commit of the repository. One read of its history
    (`list_repo_commits`, whose first entry is the commit itself)."""
    commits = guard(
        lambda: api.list_repo_commits(repo, revision=commit, repo_type="model"),
        f"reading commit {commit[:12]} of the Hub repo {repo}",
    )
    first = commits[0] if commits else None
    if first is None or getattr(first, "commit_id", None) != commit:
        return f"the Hub repo {repo} has no commit {commit[:12]}"
    title = str(getattr(first, "title", "") or "").strip()
    if title != delivery_title(job, run.revision, run.run_id or ""):
        return (
            f"commit {commit[:12]} of {repo} is not the one trainops delivered run "
            f"{run.run_id} in (its title is {title[:80]!r})"
        )
    return ""


def move(alias: HuggingFaceAlias, commit: str, job: str, run: Run, delivered: bool = True) -> str:
    """Point the alias at `commit`. With `delivered` (the commit is the one the run's delivery
    recorded) it must be a commit that delivery wrote for this run (`written_for`)."""
    what = f"{alias.kind} {alias.ref} of {alias.repo}"
    if not commit:
        raise PromotionError(
            f"{job}: run {run.run_id} has no recorded Hub commit in {alias.repo}",
            "its delivery predates promotion; bump spec.rerun to deliver a new run",
        )
    api = _api()
    current = pointed(api, alias)
    if current == commit:
        return f"{what} already at {commit[:12]}"
    why = written_for(api, alias.repo, commit, job, run) if delivered else ""
    if why:
        raise PromotionError(
            f"{job}: {why}: the {what} is left where it is",
            "the state branch is input: fix the run's record there (or bump spec.rerun)",
        )
    message = f"trainops: {job} run {run.run_id}"
    for _ in range(2):
        if current is not None:
            guard(lambda: _delete(api, alias), f"moving the {what}")
            crashpoint("promote-moving")
        if guard(lambda: _create(api, alias, commit, message), f"moving the {what}"):
            return f"{what} moved to {commit[:12]}"
        # Created meanwhile (a racing reconciler): read it again, move it once more if needed.
        current = pointed(api, alias)
        if current == commit:
            return f"{what} already at {commit[:12]}"
    raise PromotionError(f"the {what} keeps moving under this apply", "run apply again")


def _delete(api: Any, alias: HuggingFaceAlias) -> None:
    if alias.kind == "branch":
        api.delete_branch(alias.repo, branch=alias.ref, repo_type="model")
    else:
        api.delete_tag(alias.repo, tag=alias.ref, repo_type="model")


def _create(api: Any, alias: HuggingFaceAlias, commit: str, message: str) -> bool:
    """Create the ref at `commit`: True, or False when it exists already (HTTP 409)."""
    from huggingface_hub.errors import HfHubHTTPError

    try:
        if alias.kind == "branch":
            api.create_branch(alias.repo, branch=alias.ref, revision=commit, repo_type="model")
        else:
            api.create_tag(
                alias.repo, tag=alias.ref, revision=commit, tag_message=message, repo_type="model"
            )
    except HfHubHTTPError as exc:
        if getattr(getattr(exc, "response", None), "status_code", None) == 409:
            return False
        raise
    return True


__all__ = ["move", "pointed"]
