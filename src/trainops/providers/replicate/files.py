"""`spec.data` on Replicate (DESIGN §18): a package becomes a file of the account through the
official client's files API, and its URL becomes the training's input.

A package is uploaded once per digest. The file's metadata names the digest, so any reconciler
finds it again by listing the account's files (newest first) and reuses it while it has not
expired: a second apply, a crash between upload and submit, or an upload whose answer was lost
sends nothing twice. Apply stages only after the run's intent won the compare-and-swap (§8), so
two reconcilers racing on one job never both upload it.
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from trainops.errors import ProviderError
from trainops.providers.replicate.http import Api, reason, results, timestamp

if TYPE_CHECKING:
    from trainops.data import Package

# The metadata key that names a file's package digest (`sha256:<hex>`).
DIGEST_KEY = "trainops_digest"
# A file that expires within this long is not reused: a queued training fetches its input
# when it starts, which can be a while after the submit.
REUSE_MARGIN = 3600.0
FILES_MAX_PAGES = 10  # how far back the list is searched for a reusable file (100 a page)
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


class UploadRejected(ProviderError):
    """Replicate refused the upload for a reason retrying cannot fix (the file is too large)."""

    retryable = False


class Files:
    """The `DataInputs` capability of the Replicate provider: packages as files of the account,
    through the provider's `Api` (client, pacing, retries, token-scrubbed errors)."""

    def __init__(
        self,
        api: Api,
        *,
        reuse_margin: float = REUSE_MARGIN,
        max_pages: int = FILES_MAX_PAGES,
    ) -> None:
        self.api = api
        self.reuse_margin = reuse_margin
        self.max_pages = max_pages
        self.staged: dict[str, str] = {}  # digest -> URL, staged by this process

    def stage(self, package: Package) -> str:
        """The URL of a Replicate file holding `package`: a file of this account whose metadata
        names the digest, whose sha256 checksum and size agree and which does not expire within
        `reuse_margin`, else a new upload. Idempotent per digest."""
        if package.digest in self.staged:
            return self.staged[package.digest]
        url = self.find_file(package) or self._upload(package)
        self.staged[package.digest] = url
        return url

    def find_file(self, package: Package) -> str | None:
        """The URL of a reusable file holding `package`, or None (a bounded walk of the list)."""
        for item in self._file_items():
            if _holds(item, package) and not self._expiring(item):
                return _file_url(item)
        return None

    def file_digests(self) -> dict[str, str]:
        """URL -> package digest of the account's trainops files (recent pages), for adoption:
        a training's input holds the URL where its intent recorded the digest."""
        found = {}
        for item in self._file_items():
            meta = item.get("metadata")
            digest = meta.get(DIGEST_KEY) if isinstance(meta, Mapping) else None
            url = _file_url(item)
            if isinstance(digest, str) and _DIGEST.fullmatch(digest) and url:
                found[url] = digest
        return found

    def _file_items(self) -> list[Mapping[str, Any]]:
        # The client's `files.list()` reads the first page only: the pages are walked raw, as
        # the trainings list is.
        items: list[Mapping[str, Any]] = []
        for page in self.api.pages("/v1/files", "list files", self.max_pages):
            items += results(page, "list files")
        return items

    def _expiring(self, item: Mapping[str, Any]) -> bool:
        # The files' expiry is wall-clock time.
        expires = timestamp(item.get("expires_at"))
        return expires is not None and expires - self.api.wall() < self.reuse_margin

    def _upload(self, package: Package) -> str:
        """One upload through `client.files.create`. Only a refusal (429) is retried as is; an
        upload whose answer was lost is looked for first, and sent again only when absent."""
        import httpx
        from replicate.exceptions import ReplicateError

        from trainops.data import human_size

        api = self.api
        client = api.client()
        what = f"uploading {package.path} ({human_size(package.size)}) to Replicate"
        failure = ""
        for attempt in range(1, api.max_attempts + 1):
            api.pacer.acquire("default")
            api.retry_after = None
            lost = False
            try:
                created = client.files.create(
                    io.BytesIO(package.content),
                    filename=package.filename,
                    content_type="application/zip" if package.folder else "",
                    metadata={DIGEST_KEY: package.digest, "trainops_key": package.key},
                )
            except ReplicateError as exc:
                if exc.status == 413:
                    raise UploadRejected(api.redact(f"{what}: {reason(exc)}")) from None
                if exc.status == 429:
                    api.pacer.drain("default")
                elif (exc.status or 0) < 500:
                    raise api.error(f"{what}: {reason(exc)}") from None
                lost = (exc.status or 0) >= 500
                failure = reason(exc)
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
                failure = type(exc).__name__  # nothing was sent
            except httpx.HTTPError as exc:
                lost, failure = True, type(exc).__name__
            except Exception as exc:  # an answer the client could not read: it may exist
                lost, failure = True, f"unreadable answer ({type(exc).__name__})"
            else:
                url = _file_url({"urls": getattr(created, "urls", None)})
                if url:
                    return url
                lost, failure = True, "the answer names no file URL"
            if lost:
                found = self.find_file(package)
                if found:
                    return found
            if not api.pause(attempt):
                break
        raise api.error(
            f"{what}: {failure} after {attempt} attempts",
            "the service may be degraded; run apply again later (nothing is uploaded twice)",
        )


def _holds(item: Mapping[str, Any], package: Package) -> bool:
    """The file is this package: its metadata names the digest, and what the service measured
    (size, sha256 when given) agrees, so a file whose metadata lies is never reused."""
    meta = item.get("metadata")
    if not isinstance(meta, Mapping) or meta.get(DIGEST_KEY) != package.digest:
        return False
    if item.get("size") != package.size:
        return False
    sums = item.get("checksums")
    sha = sums.get("sha256") if isinstance(sums, Mapping) else None
    return sha is None or sha == package.sha256


def _file_url(item: Mapping[str, Any]) -> str:
    """The file's `urls.get` when it is an http(s) URL of sane length ("" otherwise)."""
    urls = item.get("urls")
    url = urls.get("get") if isinstance(urls, Mapping) else None
    if not isinstance(url, str) or len(url) > 2048 or not url.startswith(("https://", "http://")):
        return ""
    if any(c.isspace() or ord(c) < 32 for c in url) or "@" in url.split("/")[2]:
        return ""
    return url
