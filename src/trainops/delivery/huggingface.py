"""Delivery to a Hugging Face Hub model repository (huggingface_hub `HfApi`).

Files land at the repository root, as `from_pretrained(repo)` expects, next to `trainops.json`
naming the job, revision and run they came from: the repository holds the latest delivered
revision, and its git history every earlier one (one commit per delivery, its message naming the
run). One repository per job, then. Before writing, `paths-info` gives each file's git blob id
(or LFS sha256); only files that are missing or differ go into the commit, so a repeated
delivery makes no write request at all. A commit is atomic: a failed one leaves nothing behind.
The token comes from `HF_TOKEN`, the endpoint from `HF_ENDPOINT` (default the public Hub).
"""

from __future__ import annotations

import os
from typing import Any

from trainops.delivery import hubapi
from trainops.delivery.base import Bundle, DeliveryError, File, Tally
from trainops.manifest import HuggingFaceTarget


def deliver(target: HuggingFaceTarget, bundle: Bundle, locate: bool = False) -> Tally:
    """Commit the files the repository lacks. The tally's `where` is the commit that holds
    the bundle: the new one, or with `locate` (promotion needs it) the head when nothing was
    written (a delivery repeated after a crash); one more read only then."""
    from huggingface_hub import CommitOperationAdd, HfApi

    token = os.environ.get("HF_TOKEN") or os.environ.get("HUGGING_FACE_HUB_TOKEN")
    if not token:
        raise DeliveryError(
            f"cannot deliver to the Hub repo {target.repo}: HF_TOKEN is not set", hubapi.TOKEN_HINT
        )
    # Passed explicitly: huggingface_hub reads HF_ENDPOINT once, when it is first imported.
    api = HfApi(endpoint=hubapi.endpoint(), token=token)
    held = _held(api, target.repo, [f.name for f in bundle.files])
    if held is None:
        _create(api, target)
        held = {}
    todo = [f for f in bundle.files if not _same(held.get(f.name), f)]
    if todo:
        operations = [
            CommitOperationAdd(path_in_repo=f.name, path_or_fileobj=str(f.path)) for f in todo
        ]
        # Promotion reads this title back (promotion.hub.written_for): keep the two in step.
        message = f"trainops: {bundle.job} revision {bundle.revision} (run {bundle.run_id})"
        info = hubapi.guard(
            lambda: api.create_commit(
                target.repo, operations, commit_message=message, repo_type="model"
            ),
            f"uploading to the Hub repo {target.repo}",
        )
        where = str(getattr(info, "oid", "") or "")
    elif locate:
        info = hubapi.guard(
            lambda: api.repo_info(target.repo, repo_type="model"),
            f"reading the Hub repo {target.repo}",
        )
        where = str(getattr(info, "sha", "") or "")
    else:
        where = ""
    names = {f.name for f in todo}
    return Tally(
        tuple(f.name for f in todo),
        tuple(f.name for f in bundle.files if f.name not in names),
        where,
    )


def _held(api: Any, repo: str, names: list[str]) -> dict[str, Any] | None:
    """Path -> RepoFile for those of `names` the repository holds; None when it is missing."""
    from huggingface_hub.errors import RepositoryNotFoundError, RevisionNotFoundError

    try:
        entries = hubapi.guard(
            lambda: api.get_paths_info(repo, names, repo_type="model"),
            f"reading the Hub repo {repo}",
            passthrough=(RepositoryNotFoundError, RevisionNotFoundError),
        )
    except RepositoryNotFoundError:
        return None
    except RevisionNotFoundError:
        return {}  # a repository without a main branch yet holds nothing
    return {e.path: e for e in entries if hasattr(e, "blob_id")}


def _create(api: Any, target: HuggingFaceTarget) -> None:
    hubapi.guard(
        lambda: api.create_repo(
            target.repo, private=target.private, exist_ok=True, repo_type="model"
        ),
        f"creating the Hub repo {target.repo}",
    )


def _same(remote: Any, f: File) -> bool:
    if remote is None or remote.size != f.size:
        return False
    if remote.lfs is not None:
        return bool(remote.lfs.sha256 == f.sha256)
    return bool(remote.blob_id == f.git_sha1)
