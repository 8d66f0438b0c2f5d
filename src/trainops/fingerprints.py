"""Remote inputs (DESIGN §18): what stands behind each http(s)://, s3:// and hf:// URL of a job's
input, observed cheaply (a HEAD, S3 `head_object`, the Hub's revision sha) and recorded on a run
just before its submit, so that `plan` can say when the object behind an unchanged URL changed.

URLs come from manifests, so from pull requests: they are hostile. Only HEAD (a GET only to hash
an object that `spec.digests` pins), through the one egress policy (`egress.py`, DESIGN §13a):
http(s) only, no credential of this machine, bounded redirects each judged again, and no
loopback, private, link-local, carrier-grade NAT or metadata address, in any spelling, unless
the environment names that host. trainops.yaml cannot allow one: a pull request could change it.
S3 and Hub credentials go only to the endpoints their clients read from the environment.
Everything is batched (one call per distinct URL, `WORKERS` at a time) and bounded in time; an
input that cannot be observed is a note, never a failure.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable, Collection, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

from trainops.egress import Policy, Refused, Unresolved

SCHEMES = ("http://", "https://", "s3://", "hf://")
# `all` (the default): any public host, and the hosts the environment names; `named`: only the
# hosts the environment names (a closed network, the test suite); `off`: nothing is asked.
MODE_ENV = "TRAINOPS_INPUT_FINGERPRINTS"
MODES = ("all", "named", "off")
TIMEOUT = 5.0  # seconds for one request
DEADLINE = 20.0  # seconds for a whole batch
WORKERS = 8
MAX_PINNED_BYTES = 20 * 1024**3  # an object pinned by spec.digests is hashed up to this size
_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class Seen:
    """One URL as observed now: its fingerprint, or why there is none; with `sha256` when the
    object was hashed (a pin asked for it)."""

    url: str
    fingerprint: str = ""
    note: str = ""
    sha256: str = ""
    skipped: bool = False  # not asked by choice (`named`/`off` mode): nothing worth a note


def remote_inputs(input: Mapping[str, Any]) -> dict[str, str]:
    """Input key -> URL, for each top-level input value that names a remote object."""
    return {
        k: v
        for k, v in sorted(input.items())
        if isinstance(v, str) and v.startswith(SCHEMES) and len(v) <= 4096
    }


def record(url: str, fingerprint: str) -> str:
    """What a run records for one input: which URL (a short hash) and what stood behind it."""
    return f"{_url_id(url)} {fingerprint}"


def drifted(recorded: str, url: str, fingerprint: str) -> bool:
    """The object behind `url` is not the one the recorded run saw (same URL, new fingerprint).
    A different URL is a change of the input itself, not drift."""
    rid, _, before = recorded.partition(" ")
    return bool(fingerprint) and rid == _url_id(url) and before != fingerprint


def _url_id(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()[:12]


class Observer:
    """Fingerprints of remote URLs, batched and bounded. `environ` names the endpoints that may
    be on private addresses, and holds the S3 and Hub credentials their clients use."""

    def __init__(
        self,
        environ: Mapping[str, str] | None = None,
        *,
        timeout: float = TIMEOUT,
        deadline: float = DEADLINE,
        workers: int = WORKERS,
        resolve: Callable[[str, int], list[str]] | None = None,
        mode: str | None = None,
    ) -> None:
        self.environ = os.environ if environ is None else environ
        self.timeout, self.deadline, self.workers = timeout, deadline, workers
        chosen = mode or self.environ.get(MODE_ENV, "").strip().lower() or "all"
        self.mode = chosen if chosen in MODES else "named"  # an unknown word: the careful one
        self.policy = Policy(
            self.environ,
            only_named=self.mode != "all",
            resolve=resolve,
            only_named_why=f" ({MODE_ENV}={self.mode})",
        )
        self._s3_client: Any = None
        self._s3_lock = threading.Lock()

    def observe(self, urls: Iterable[str], hashed: Collection[str] = ()) -> dict[str, Seen]:
        """Each distinct URL observed once (`hashed` ones also hashed), concurrently; a URL
        with no answer within the deadline is a note."""
        wanted = sorted(set(urls) | set(hashed))
        if not wanted:
            return {}
        # One client for the batch (thread-safe, one TLS context), connecting only where the
        # egress policy allows.
        client = self.policy.client(self.timeout)
        pool = ThreadPoolExecutor(max_workers=min(self.workers, len(wanted)))
        futures = {u: pool.submit(self._safe, u, u in hashed, client) for u in wanted}
        try:
            # A pinned object is downloaded whole: its deadline is its own timeouts'.
            wait(futures.values(), timeout=None if hashed else self.deadline)
            return {
                u: f.result()
                if f.done() and not f.cancelled()
                else Seen(u, note=f"no answer within {self.deadline:g} s")
                for u, f in futures.items()
            }
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
            _close_when_done(client, list(futures.values()))

    def allowed(self, host: str, port: int) -> str:
        """Why a request to host:port is refused ("" when it may be made)."""
        try:
            self.policy.addresses(host, port)
        except Refused as exc:
            return exc.reason
        except Unresolved as exc:
            return str(exc)
        return ""

    def _safe(self, url: str, hashed: bool, client: Any) -> Seen:
        if self.mode == "off":
            return Seen(url, note=f"not asked ({MODE_ENV}=off)", skipped=True)
        try:
            if url.startswith(("s3://", "hf://")) and not self._endpoint_named(url):
                return Seen(
                    url, note=f"not asked: no endpoint is named for it ({MODE_ENV})", skipped=True
                )
            if url.startswith("s3://"):
                return self._s3_object(url, hashed)
            if url.startswith("hf://"):
                return self._hub(url, hashed)
            return self._http(url, hashed, client)
        except Exception as exc:  # a remote input is a note, never a failure
            return Seen(url, note=f"cannot observe it ({type(exc).__name__})")

    def _endpoint_named(self, url: str) -> bool:
        """Whether an s3:// or hf:// URL may be asked: always in `all` mode (the clients' own
        default endpoints); otherwise only when the environment names the endpoint."""
        if self.mode == "all":
            return True
        names = ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3") if url.startswith("s3://") else ()
        return any(self.environ.get(n) for n in names or ("HF_ENDPOINT",))

    # ---- http(s) ----------------------------------------------------------------------------

    def _http(self, url: str, hashed: bool, client: Any) -> Seen:
        try:
            with self.policy.stream(client, "GET" if hashed else "HEAD", url) as response:
                if hashed:
                    return self._hashed(url, response)
                if response.status_code >= 400:
                    host = response.request.url.host
                    return Seen(url, note=f"{host} answered {response.status_code}")
                return Seen(url, _http_fingerprint(response.headers))
        except Refused as exc:
            skip = self.policy.only_named and MODE_ENV in exc.reason
            return Seen(url, note=f"not asked: {exc.reason}", skipped=skip)

    def _hashed(self, url: str, response: Any) -> Seen:
        if response.status_code >= 400:
            return Seen(url, note=f"answered {response.status_code}")
        digest, size = hashlib.sha256(), 0
        for chunk in response.iter_bytes(_CHUNK):
            size += len(chunk)
            if size > MAX_PINNED_BYTES:
                return Seen(url, note="larger than a pinned input may be; not hashed")
            digest.update(chunk)
        return Seen(url, _http_fingerprint(response.headers), sha256=digest.hexdigest())

    # ---- s3:// -------------------------------------------------------------------------------

    def _s3_object(self, url: str, hashed: bool) -> Seen:
        from botocore.exceptions import ClientError

        bucket, _, key = url.removeprefix("s3://").partition("/")
        if not bucket or not key:
            return Seen(url, note="not an s3://bucket/key URL")
        client = self._s3()
        try:
            head = client.head_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "error")
            return Seen(url, note=f"S3 answered {code}")
        parts = [
            f"etag={str(head.get('ETag', ''))[:200]}",
            f"length={head.get('ContentLength', '')}",
        ]
        if head.get("VersionId"):
            parts.append(f"version={str(head['VersionId'])[:200]}")
        fingerprint = " ".join(parts)
        if not hashed:
            return Seen(url, fingerprint)
        if int(head.get("ContentLength") or 0) > MAX_PINNED_BYTES:
            return Seen(url, fingerprint, note="larger than a pinned input may be; not hashed")
        body = client.get_object(Bucket=bucket, Key=key)["Body"]
        digest = hashlib.sha256()
        for chunk in iter(lambda: body.read(_CHUNK), b""):
            digest.update(chunk)
        return Seen(url, fingerprint, sha256=digest.hexdigest())

    def _s3(self) -> Any:
        """One client for the batch (boto3 clients are thread-safe); endpoint, region and
        credentials are boto3's own environment variables."""
        import boto3
        from botocore.config import Config

        with self._s3_lock:
            if self._s3_client is None:
                config = Config(
                    retries={"mode": "standard", "max_attempts": 2},
                    connect_timeout=self.timeout,
                    read_timeout=self.timeout,
                )
                self._s3_client = boto3.session.Session().client("s3", config=config)
            return self._s3_client

    # ---- hf:// -------------------------------------------------------------------------------

    def _hub(self, url: str, hashed: bool) -> Seen:
        """`hf://[datasets/|spaces/]owner/name[@revision][/path]`: the revision sha the repo's
        branch (or given revision) points at."""
        from huggingface_hub import HfApi

        rest = url.removeprefix("hf://")
        kind = "model"
        for prefix, name in (("datasets/", "dataset"), ("spaces/", "space"), ("models/", "model")):
            if rest.startswith(prefix):
                rest, kind = rest[len(prefix) :], name
        parts = rest.split("/")
        if len(parts) < 2:
            return Seen(url, note="not an hf://owner/name URL")
        name, _, revision = parts[1].partition("@")
        if hashed:
            return Seen(url, note="a Hub input is pinned by its revision in the URL (@sha)")
        endpoint = (self.environ.get("HF_ENDPOINT") or "https://huggingface.co").rstrip("/")
        token = self.environ.get("HF_TOKEN") or None
        api = HfApi(endpoint=endpoint, token=token)
        info = api.repo_info(f"{parts[0]}/{name}", repo_type=kind, revision=revision or None)
        sha = getattr(info, "sha", None)
        if not isinstance(sha, str) or not sha:
            return Seen(url, note="the Hub named no revision")
        return Seen(url, f"revision={sha[:64]}")


def _close_when_done(client: Any, futures: list[Any]) -> None:
    """Close the batch's client once its last request ended (at once when all have): a request
    still running past the deadline ends by its own timeout, then the client is closed."""
    lock, left = threading.Lock(), [len(futures)]

    def one_done(_future: Any) -> None:
        with lock:
            left[0] -= 1
            last = left[0] == 0
        if last:
            client.close()

    for future in futures:
        future.add_done_callback(one_done)  # runs at once for a future already done


def _http_fingerprint(headers: Mapping[str, str]) -> str:
    parts = []
    for name in ("etag", "content-length", "last-modified"):
        value = headers.get(name)
        if value:
            parts.append(f"{name}={value[:200]}")
    return " ".join(parts)


@dataclass(frozen=True)
class Checked:
    """One job's remote inputs just before its submit: the fingerprints to record on its run,
    why its submit is refused (a `spec.digests` pin that does not hold), and notes."""

    fingerprints: dict[str, str]
    refused: str = ""
    notes: tuple[str, ...] = ()


def check_inputs(
    observer: Observer,
    inputs: Mapping[str, Mapping[str, Any]],
    pins: Mapping[str, Mapping[str, str]],
    packaged: Mapping[str, Mapping[str, str]],
) -> dict[str, Checked]:
    """For each job (its resolved input, its pins, its data packages' digests by key): one
    batch of observations for all of them, then each pin checked. A pin that cannot be checked
    refuses the submit too: a pin says "this object, or nothing"."""
    remote = {job: remote_inputs(given) for job, given in inputs.items()}
    hashed = {
        url
        for job, urls in remote.items()
        for key, url in urls.items()
        if key in pins.get(job, {}) and key not in packaged.get(job, {})
    }
    seen = observer.observe({u for urls in remote.values() for u in urls.values()}, hashed)
    out = {}
    for job in inputs:
        refused = ""
        for key, pin in sorted(pins.get(job, {}).items()):
            if key in packaged.get(job, {}):
                actual, why = packaged[job][key], ""
            else:
                url = remote[job].get(key)
                got = seen.get(url) if url else None
                actual = f"sha256:{got.sha256}" if got and got.sha256 else ""
                why = got.note if got else "its value is not a remote URL"
            if not actual:
                refused = f"spec.digests.{key}: cannot check what is behind input {key} ({why})"
            elif actual != pin:
                refused = (
                    f"spec.digests.{key}: input {key} is {actual}, but spec.digests pins {pin}"
                )
            if refused:
                refused += "; nothing was submitted"
                break
        fingerprints, notes = {}, []
        for key, url in remote[job].items():
            got = seen[url]
            if got.fingerprint:
                fingerprints[key] = record(url, got.fingerprint)
            elif got.note and not got.skipped:
                notes.append(f"input {key}: {got.note}")
        out[job] = Checked(fingerprints, refused, tuple(notes))
    return out
