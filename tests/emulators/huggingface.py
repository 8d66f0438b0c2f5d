"""A Hugging Face Hub emulator: a real HTTP server on 127.0.0.1 for the calls delivery makes.

It serves exactly what `huggingface_hub` (2.x, read from its source: `hf_api.py`, `_commit_api.py`)
sends for `create_repo`, `get_paths_info`, `list_repo_tree`, `create_commit` (preupload, then an
NDJSON commit), `repo_info` and `whoami`, with the JSON shapes and `X-Error-Code` headers the client
parses. Model repositories live in memory with their commits. Preupload answers "regular" (the
content travels inside the commit) below `lfs_from_size` bytes and "lfs" from there on: the client
then asks the LFS batch endpoint, PUTs the content to the storage URL it answers, verifies it and
commits an `lfsFile` (`_commit_api.py`, `lfs.py`; Xet is disabled in `env()`). Such files are
reported as LFS files (pointer blob id plus `lfs.oid` sha256), as the Hub reports them. Every
request is recorded; faults are injected per endpoint, optionally after the operation took effect
(a lost response). Standalone: `python -m tests.emulators.huggingface`.

It also serves the Jobs API as `huggingface_hub` 2.4 calls it (`_jobs_api.py`, `hf_api.py`): run,
inspect, cancel, list (label and stage filters, pages linked by a `Link: <...>; rel="next"`
header; an unknown `stage` value is a 400), logs as server-sent events and the hardware (flavor)
list. Jobs advance SCHEDULING -> RUNNING -> COMPLETED (or ERROR) over simulated time (`advance`);
one still running at its `timeoutSeconds` (30 minutes when none was sent, as the service does)
ends in ERROR; `delete_job` puts a job in stage DELETED. A job whose environment names
`TRAINOPS_OUTPUT_REPO` pushes a commit there when it completes, as a training job would.
Faults on job endpoints add dropped connections (`status=DROP`).

Refs (a separate section below): branches and tags as `create_branch`, `delete_branch`,
`create_tag`, `delete_tag` and `list_repo_refs` call them (`hf_api.py`), for promotion's aliases;
`repo_info(revision=)` resolves a branch, tag or commit. Every ref change is kept in `ref_log`.
`list_repo_commits(revision=)` (`GET /api/models/{repo}/commits/{rev}`, hf_api.py: items with
`id`, `title`, `message`, `authors[].user`, `date`, newest first) lists a revision's history.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import itertools
import json
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

from huggingface_hub._jobs_api import JobHardware

from tests.emulators._loopback import LoopbackEmulator

__all__ = ["DROP", "FLAVORS", "Fault", "HubEmulator", "Recorded", "git_blob_id"]

WRITE_ENDPOINTS = frozenset(
    {
        "create",
        "preupload",
        "commit",
        "job-create",
        "job-cancel",
        "branch-create",
        "branch-delete",
        "tag-create",
        "tag-delete",
        "lfs-batch",
        "lfs-upload",
        "lfs-verify",
    }
)
DROP = -1  # a fault status: close the connection without answering
JOB_PAGE_SIZE = 100
ACTIVE_STAGES = ("SCHEDULING", "RUNNING")
# Every stage a job has (huggingface_hub `JobStage`, `_jobs_api.py`): a list filtered by any
# other `stage` value is refused with 400 (shared/ref/README.md, "HF list filters").
STAGES = frozenset({"COMPLETED", "CANCELED", "ERROR", "DELETED", "SCHEDULING", "RUNNING"})
# A job created without `timeoutSeconds` is stopped by the service after 30 minutes
# (huggingface_hub docs/source/en/guides/jobs.md; huggingface/huggingface_hub#3665, #3386).
# `JobStage` has no stage of its own for a timeout: the job ends in ERROR (never COMPLETED).
DEFAULT_TIMEOUT_S = 30 * 60
TIMED_OUT = "Job timeout exceeded"
# Every flavor the service runs: huggingface_hub's `JobHardware` (kept in sync with the Hub by
# its maintainers); only those in FLAVORS below have a price here.
JOB_FLAVORS = frozenset(h.value for h in JobHardware)
# The hardware list as GET /api/jobs/hardware answers it (JobHardwareInfo's camelCase keys);
# per-minute prices, as the service quotes them. trainops' default prices are these / 60.
FLAVORS: dict[str, float] = {
    "cpu-basic": 0.0001, "cpu-upgrade": 0.0005, "t4-small": 0.0067, "t4-medium": 0.01,
    "l4x1": 0.0133, "l4x4": 0.0633, "l40sx1": 0.03, "l40sx4": 0.1383, "l40sx8": 0.3917,
    "a10g-small": 0.0167, "a10g-large": 0.025, "a10g-largex2": 0.05, "a10g-largex4": 0.0833,
    "a100-large": 0.0417, "h200": 0.0833,
}  # fmt: skip
GITATTRIBUTES = (
    b"*.bin filter=lfs diff=lfs merge=lfs -text\n"
    b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n"
)
_REPO = r"/api/models/(?P<repo>[^/]+/[^/]+)"
_ROUTES: list[tuple[str, str, re.Pattern[str]]] = [
    (method, name, re.compile(pattern))
    for method, name, pattern in [
        ("POST", "create", r"/api/repos/create"),
        ("POST", "paths-info", _REPO + r"/paths-info/(?P<rev>[^/]+)"),
        ("POST", "preupload", _REPO + r"/preupload/(?P<rev>[^/]+)"),
        ("POST", "commit", _REPO + r"/commit/(?P<rev>[^/]+)"),
        ("GET", "tree", _REPO + r"/tree/(?P<rev>[^/]+)(?:/(?P<path>.*))?"),
        ("GET", "refs", _REPO + r"/refs"),
        ("GET", "commit-list", _REPO + r"/commits/(?P<rev>[^/]+)"),
        ("POST", "branch-create", _REPO + r"/branch/(?P<ref>.+)"),
        ("DELETE", "branch-delete", _REPO + r"/branch/(?P<ref>.+)"),
        ("POST", "tag-create", _REPO + r"/tag/(?P<at>[^/]+)"),
        ("DELETE", "tag-delete", _REPO + r"/tag/(?P<ref>.+)"),
        ("GET", "info", _REPO + r"(?:/revision/(?P<rev>[^/]+))?"),
        ("GET", "whoami", r"/api/whoami-v2"),
        ("POST", "lfs-batch", r"/(?P<repo>[^/]+/[^/]+)\.git/info/lfs/objects/batch"),
        ("POST", "lfs-verify", r"/(?P<repo>[^/]+/[^/]+)\.git/info/lfs/objects/verify"),
        ("PUT", "lfs-upload", r"/lfs-storage/(?P<oid>[0-9a-f]{64})"),
        ("GET", "hardware", r"/api/jobs/hardware"),
        ("POST", "job-create", r"/api/jobs/(?P<ns>[^/]+)"),
        ("GET", "job-list", r"/api/jobs/(?P<ns>[^/]+)"),
        ("GET", "job-get", r"/api/jobs/(?P<ns>[^/]+)/(?P<id>[^/]+)"),
        ("POST", "job-cancel", r"/api/jobs/(?P<ns>[^/]+)/(?P<id>[^/]+)/cancel"),
        ("GET", "job-logs", r"/api/jobs/(?P<ns>[^/]+)/(?P<id>[^/]+)/logs"),
    ]
]


def git_blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass(frozen=True)
class Recorded:
    """One request the emulator received, and what it answered."""

    method: str
    path: str
    endpoint: str  # create, paths-info, preupload, commit, tree, info, whoami, or "" (unknown)
    status: int
    body: bytes = field(repr=False, default=b"")
    headers: dict[str, str] = field(repr=False, default_factory=dict)  # request, lowercased

    @property
    def write(self) -> bool:
        return self.endpoint in WRITE_ENDPOINTS


@dataclass
class Fault:
    """Answer `times` requests to `endpoint` with `status`, after letting `skip` through.
    With `after_apply` the operation takes effect first and only its answer is lost."""

    endpoint: str
    status: int = 500
    times: int = 1
    skip: int = 0
    after_apply: bool = False
    seen: int = 0
    hits: int = 0

    def take(self, endpoint: str) -> bool:
        if endpoint != self.endpoint or self.hits >= self.times:
            return False
        self.seen += 1
        if self.seen <= self.skip:
            return False
        self.hits += 1
        return True


@dataclass
class Commit:
    oid: str
    summary: str
    paths: tuple[str, ...]


@dataclass
class Repo:
    repo_id: str
    private: bool
    files: dict[str, bytes] = field(default_factory=dict)
    commits: list[Commit] = field(default_factory=list)
    refs: dict[tuple[str, str], str] = field(default_factory=dict)  # (branch|tag, name) -> oid

    @property
    def head(self) -> str:
        return self.commits[-1].oid


@dataclass
class HFJob:
    """One emulated job: its JSON as created, and when (simulated) it changes stage."""

    spec: dict[str, Any]
    namespace: str
    job_id: str
    created: float
    schedule_s: float
    run_s: float
    outcome: str  # COMPLETED or ERROR, reached after run_s of RUNNING
    canceled_at: float | None = None
    deleted_at: float | None = None
    pushed: bool = False
    message: str | None = None  # status.message once it ended in ERROR

    def stage(self, now: float) -> tuple[str, float | None, float | None]:
        """(stage, startedAt, finishedAt) at simulated time `now`."""
        if self.deleted_at is not None and self.deleted_at <= now:
            # A deleted job stays listed, in stage DELETED (JobStage); one deleted while it ran
            # stopped then.
            was, started, finished = self._stage(self.deleted_at)
            return "DELETED", started, self.deleted_at if was in ACTIVE_STAGES else finished
        return self._stage(now)

    def _stage(self, now: float) -> tuple[str, float | None, float | None]:
        start = self.created + self.schedule_s
        end = start + self.run_s
        if self.canceled_at is not None and self.canceled_at < end:
            started = start if self.canceled_at >= start else None
            return "CANCELED", started, self.canceled_at
        if now < start:
            return "SCHEDULING", None, None
        if now < end:
            return "RUNNING", start, None
        return self.outcome, start, end


class _Reply(Exception):
    def __init__(self, status: int, message: str, code: str = "") -> None:
        super().__init__(message)
        self.status, self.message, self.code = status, message, code


class HubEmulator(LoopbackEmulator):
    """In-memory Hub. Use as a context manager or `start()`/`stop()`.

    `token` is the one write token accepted; `namespaces` those it may create repos in (None: any).
    """

    thread_name = "hub-emulator"

    def __init__(
        self,
        token: str = "hf_emulator_write_token",
        *,
        namespaces: set[str] | None = None,
        lfs_from_size: int | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        user: str = "trainops-bot",
    ) -> None:
        self.token, self.namespaces, self.lfs_from_size = token, namespaces, lfs_from_size
        self.host, self.port, self.user = host, port, user
        self.repos: dict[str, Repo] = {}
        self.requests: list[Recorded] = []
        self.errors: list[str] = []  # exceptions raised inside the emulator (should stay empty)
        self._faults: list[Fault] = []
        self._lock = threading.RLock()
        self._commits = 0
        # Jobs API: simulated time starts at the real clock and moves only by `advance`.
        self.jobs: dict[str, HFJob] = {}
        self.now = time.time()
        self.schedule_s, self.run_s = 5.0, 60.0
        # trainops job names whose first attempt ends in ERROR (later attempts complete)
        self.failing: set[str] = set()
        self.list_lag = 0.0  # seconds after creation before a job shows in lists
        self.page_size = JOB_PAGE_SIZE
        # Random faults on job endpoints: (rate, rng). Each request fails with `rate`: 429 (the
        # request refused), 500, 503 or a dropped connection, which on creates and cancels half
        # the time strike after the effect (a lost answer).
        self.chaos: tuple[float, Any] | None = None
        # Seconds a 429 says the window resets in (`RateLimit ...;t=`, `Retry-After`).
        self.rate_limit_reset = 1
        # Seeded 429s only, at a rate, on job endpoints: (rate, rng) (the benchmarks' mode).
        self.throttle: tuple[float, Any] | None = None
        self._ids = itertools.count(1)
        # LFS storage: sha256 -> content, filled by PUTs to the batch answer's upload hrefs
        self.lfs_objects: dict[str, bytes] = {}
        # Every ref change: (repo, "branch" | "tag", name, commit oid, or None for a delete)
        self.ref_log: list[tuple[str, str, str, str | None]] = []

    # -- lifecycle ----------------------------------------------------------------------------

    def env(self) -> dict[str, str]:
        """The environment that points a trainops process at this emulator."""
        return {
            "HF_ENDPOINT": self.url,
            "HF_TOKEN": self.token,
            "HF_HUB_DISABLE_TELEMETRY": "1",
            # The emulator speaks LFS, not Xet: a client with hf_xet installed would take Xet
            # for every LFS-mode file (`_commit_api._upload_files`).
            "HF_HUB_DISABLE_XET": "1",
        }

    def advance(self, seconds: float) -> None:
        """Move simulated time on: jobs change stage as if `seconds` had passed."""
        with self._lock:
            self.now += seconds

    def delete_job(self, job_id: str) -> None:
        """Someone deleted the job (the Hub's UI): from now on it answers stage DELETED."""
        with self._lock:
            self.jobs[job_id].deleted_at = self.now

    def created_jobs(self, **labels: str) -> list[dict[str, Any]]:
        """Every job ever created whose labels include `labels` (counted at the emulator)."""
        with self._lock:
            return [
                self._job_json(j)
                for j in self.jobs.values()
                if labels.items() <= (j.spec.get("labels") or {}).items()
            ]

    # -- faults and inspection ----------------------------------------------------------------

    def fail(
        self,
        endpoint: str,
        status: int = 500,
        *,
        times: int = 1,
        nth: int = 1,
        after_apply: bool = False,
    ) -> Fault:
        """Answer the `nth` (and following, `times` in all) request to `endpoint` with `status`."""
        fault = Fault(endpoint, status, times, nth - 1, after_apply)
        with self._lock:
            self._faults.append(fault)
        return fault

    def calls(self, endpoint: str | None = None) -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests if endpoint in (None, r.endpoint)]

    def writes(self) -> list[Recorded]:
        """Requests that create or change something: create, preupload, commit."""
        return [r for r in self.calls() if r.write]

    def files(self, repo_id: str) -> dict[str, bytes]:
        with self._lock:
            return dict(self.repos[repo_id].files)

    def commits(self, repo_id: str) -> list[Commit]:
        with self._lock:
            return list(self.repos[repo_id].commits)

    # -- request handling (server threads) ----------------------------------------------------

    def _handle(self, method: str, raw_path: str, headers: dict[str, str], body: bytes) -> _Answer:
        path = unquote(urlsplit(raw_path).path)
        endpoint, match = "", None
        for route_method, name, pattern in _ROUTES:
            match = pattern.fullmatch(path)
            if match and route_method == method:
                endpoint = name
                break
        status, payload, extra = 500, None, {}
        try:
            if not endpoint or match is None:
                raise _Reply(404, f"no route for {method} {path}")
            args = {k: v for k, v in match.groupdict().items() if v is not None}
            args["_query"] = urlsplit(raw_path).query
            with self._lock:
                fault = next((f for f in self._faults if f.take(endpoint)), None)
                if fault is None and self.chaos and endpoint.startswith("job-"):
                    rate, rng = self.chaos
                    if rng.random() < rate:
                        status = rng.choice([429, 500, 503, DROP])
                        # a 429 refuses the request; other faults may follow the effect
                        lost = status != 429 and endpoint in WRITE_ENDPOINTS and rng.random() < 0.5
                        fault = Fault(endpoint, status, after_apply=lost)
                if fault is None and self.throttle and endpoint.startswith("job-"):
                    rate, rng = self.throttle
                    if rng.random() < rate:
                        fault = Fault(endpoint, 429)
                if fault is not None and not fault.after_apply:
                    raise _Reply(fault.status, f"injected fault on {endpoint}")
                status, payload = getattr(self, "_" + endpoint.replace("-", "_"))(
                    args, headers, body
                )
                if fault is not None:
                    raise _Reply(fault.status, f"injected fault on {endpoint} (after applying)")
        except _Reply as reply:
            status, payload = reply.status, {"error": reply.message}
            extra = {"X-Error-Message": reply.message}
            if reply.status == 429:
                # The Hub's 429: 5-minute windows, the reset in `RateLimit: "api";r=0;t=N` and
                # `Retry-After` (shared/ref/README.md "HF rate limits"; docs: hub/rate-limits;
                # huggingface_hub utils/_http.py parse_ratelimit_headers reads the same header).
                reset = str(self.rate_limit_reset)
                extra["RateLimit"] = f'"api";r=0;t={reset}'
                extra["RateLimit-Policy"] = '"fixed window";"api";q=1000;w=300'
                extra["Retry-After"] = reset
            if reply.code:
                extra["X-Error-Code"] = reply.code
        except Exception as exc:  # an emulator bug: answer 500 and keep it for the test to see
            self.errors.append(f"{method} {path}: {type(exc).__name__}: {exc}")
            status, payload = 500, {"error": "emulator error"}
        with self._lock:
            self.requests.append(Recorded(method, path, endpoint, status, body, headers))
        if isinstance(payload, _Extra):
            payload, extra = payload.payload, {**extra, **payload.headers}
        return status, payload, extra

    def _auth(self, headers: dict[str, str]) -> bool:
        """True with the write token, False without a token; 401 for any other token."""
        scheme, _, credential = headers.get("authorization", "").partition(" ")
        if not credential:
            return False
        if scheme.lower() != "bearer" or credential.strip() != self.token:
            raise _Reply(401, "Invalid credentials in Authorization header")
        return True

    def _repo(self, args: dict[str, str], headers: dict[str, str], *, write: bool) -> Repo:
        authed = self._auth(headers)
        repo = self.repos.get(args["repo"])
        if repo is None or (repo.private and not authed):
            raise _Reply(404, "Repository not found", "RepoNotFound")
        if write and not authed:
            raise _Reply(401, "You must be authenticated to write")
        if write and not self._may_write(repo.repo_id.split("/")[0]):
            raise _Reply(403, f"You don't have the rights to write to {repo.repo_id}")
        if args.get("rev", "main") != "main":
            raise _Reply(404, f"Invalid rev id: {args['rev']}", "RevisionNotFound")
        return repo

    def _may_write(self, namespace: str) -> bool:
        return self.namespaces is None or namespace in self.namespaces

    # -- routes (lock held) -------------------------------------------------------------------

    def _create(self, args: dict[str, str], headers: dict[str, str], body: bytes) -> _Ok:
        if not self._auth(headers):
            raise _Reply(401, "You must be authenticated to create a repo")
        data = json.loads(body)
        if data.get("type", "model") != "model":
            raise _Reply(400, "only model repositories are emulated")
        namespace = data.get("organization") or self.user
        repo_id = f"{namespace}/{data['name']}"
        if repo_id in self.repos:
            raise _Reply(409, "You already created this model repo")
        if not self._may_write(namespace):
            raise _Reply(
                403,
                f'You don\'t have the rights to create a model under the namespace "{namespace}"',
            )
        private = data.get("visibility", "private" if data.get("private") else "public") != "public"
        repo = Repo(repo_id, private)
        self._apply(repo, "initial commit", {".gitattributes": GITATTRIBUTES}, [])
        self.repos[repo_id] = repo
        return 200, {"url": f"{self.url}/{repo_id}", "name": repo_id, "id": _oid(repo_id)}

    def _paths_info(self, args: dict[str, str], headers: dict[str, str], body: bytes) -> _Ok:
        repo = self._repo(args, headers, write=False)
        paths = [v for k, v in parse_qsl(body.decode(), keep_blank_values=True) if k == "paths"]
        return 200, [self._entry(p, repo.files[p]) for p in paths if p in repo.files]

    def _tree(self, args: dict[str, str], headers: dict[str, str], body: bytes) -> _Ok:
        repo = self._repo(args, headers, write=False)
        prefix = args.get("path", "").strip("/")
        inside = [p for p in sorted(repo.files) if not prefix or p.startswith(prefix + "/")]
        entries: list[dict[str, Any]] = []
        folders: set[str] = set()
        for p in inside:
            rest = p[len(prefix) + 1 :] if prefix else p
            if "/" in rest:
                folder = (prefix + "/" if prefix else "") + rest.split("/")[0]
                if folder not in folders:
                    folders.add(folder)
                    entries.append(
                        {"type": "directory", "oid": _oid(folder), "size": 0, "path": folder}
                    )
            else:
                entries.append(self._entry(p, repo.files[p]))
        return 200, entries

    def _preupload(self, args: dict[str, str], headers: dict[str, str], body: bytes) -> _Ok:
        repo = self._repo(args, headers, write=True)
        files = json.loads(body)["files"]
        return 200, {
            "files": [
                {
                    "path": f["path"],
                    "uploadMode": self._upload_mode(f),
                    "shouldIgnore": False,
                    "oid": git_blob_id(repo.files[f["path"]]) if f["path"] in repo.files else None,
                }
                for f in files
            ],
            "commitOid": repo.head,
        }

    def _upload_mode(self, f: dict[str, Any]) -> str:
        """What the Hub answers a preupload entry: `lfs` from `lfs_from_size` bytes on (the Hub
        decides by size and content; `_commit_api._fetch_upload_modes` takes its word)."""
        size = f.get("size")
        big = self.lfs_from_size is not None and isinstance(size, int)
        return "lfs" if big and size >= self.lfs_from_size else "regular"

    # -- LFS (lock held): the batch API as `lfs.post_lfs_batch_info` calls it, "basic" transfer,
    # uploads to a presigned storage URL (no Authorization: S3 refuses a second auth mechanism,
    # and `lfs._upload_single_part` sends none), and the verify step. --------------------------

    def _lfs_batch(self, args: dict[str, str], headers: dict[str, str], body: bytes) -> _Ok:
        repo = self._repo(args, headers, write=True)
        data = json.loads(body)
        if data.get("operation") != "upload" or data.get("hash_algo") != "sha256":
            raise _Reply(400, "only sha256 uploads are emulated")
        if "basic" not in (data.get("transfers") or ["basic"]):
            raise _Reply(400, "the emulator offers the basic transfer only")
        objects = []
        for obj in data.get("objects") or []:
            oid, size = obj.get("oid"), obj.get("size")
            if not isinstance(oid, str) or not re.fullmatch(r"[0-9a-f]{64}", oid):
                objects.append(
                    {"oid": str(oid), "size": 0, "error": {"code": 422, "message": "bad oid"}}
                )
                continue
            answer: dict[str, Any] = {"oid": oid, "size": size, "authenticated": True}
            stored = self.lfs_objects.get(oid)
            if stored is None or len(stored) != size:  # already stored: no actions, no upload
                verify = f"{self.url}/{repo.repo_id}.git/info/lfs/objects/verify"
                answer["actions"] = {
                    "upload": {"href": f"{self.url}/lfs-storage/{oid}", "expires_in": 3600},
                    "verify": {"href": verify, "header": {}},
                }
            objects.append(answer)
        return 200, {"transfer": "basic", "objects": objects}

    def _lfs_upload(self, args: dict[str, str], headers: dict[str, str], body: bytes) -> _Ok:
        if "authorization" in headers:
            raise _Reply(400, "Only one auth mechanism allowed")  # a presigned URL, as S3
        if hashlib.sha256(body).hexdigest() != args["oid"]:
            raise _Reply(400, "the content does not match its sha256")
        self.lfs_objects[args["oid"]] = body
        return 200, None

    def _lfs_verify(self, args: dict[str, str], headers: dict[str, str], body: bytes) -> _Ok:
        self._repo(args, headers, write=True)
        data = json.loads(body)
        stored = self.lfs_objects.get(data.get("oid"))
        if stored is None or len(stored) != data.get("size"):
            raise _Reply(404, "object not found")
        return 200, {"success": True}

    def _commit(self, args: dict[str, str], headers: dict[str, str], body: bytes) -> _Ok:
        repo = self._repo(args, headers, write=True)
        lines = [json.loads(line) for line in body.decode().splitlines() if line.strip()]
        if not lines or lines[0].get("key") != "header":
            raise _Reply(400, "the first line of a commit must be its header")
        header = lines[0]["value"]
        parent = header.get("parentCommit")
        if parent is not None and parent != repo.head:
            raise _Reply(412, "A commit has happened since. Please refresh and try again.")
        added: dict[str, bytes] = {}
        deleted: list[str] = []
        for op in lines[1:]:
            key, value = op.get("key"), op.get("value", {})
            if key == "file":
                if value.get("encoding") != "base64":
                    raise _Reply(400, "file content must be base64")
                added[value["path"]] = base64.b64decode(value["content"])
            elif key in ("deletedFile", "deletedFolder"):
                deleted.append(value["path"])
            elif key == "lfsFile":
                stored = self.lfs_objects.get(value.get("oid"))
                if value.get("algo") != "sha256" or stored is None:
                    raise _Reply(422, f"LFS object of {value.get('path')} was not uploaded")
                if len(stored) != value.get("size"):
                    raise _Reply(422, f"LFS object of {value.get('path')} has another size")
                added[value["path"]] = stored
            else:
                raise _Reply(400, f"unknown commit operation {key!r}")
        commit = self._apply(repo, header.get("summary", ""), added, deleted)
        return 200, {
            "success": True,
            "commitOid": commit.oid,
            "commitUrl": f"{self.url}/{repo.repo_id}/commit/{commit.oid}",
            "hookOutput": "",
            "pullRequestUrl": None,
        }

    def _info(self, args: dict[str, str], headers: dict[str, str], body: bytes) -> _Ok:
        rev = args.pop("rev", "main")
        repo = self._repo(args, headers, write=False)
        sha = repo.head if rev == "main" else self._resolve(repo, rev)
        return 200, {
            "id": repo.repo_id,
            "_id": _oid(repo.repo_id)[:24],
            "sha": sha,
            "private": repo.private,
            "siblings": [{"rfilename": p} for p in sorted(repo.files)],
        }

    def _whoami(self, args: dict[str, str], headers: dict[str, str], body: bytes) -> _Ok:
        if not self._auth(headers):
            raise _Reply(401, "Invalid credentials in Authorization header")
        return 200, {
            "type": "user",
            "name": self.user,
            "orgs": [],
            "auth": {"type": "access_token", "accessToken": {"role": "write"}},
        }

    # -- refs: branches and tags (lock held) --------------------------------------------------

    def ref(self, repo_id: str, name: str, kind: str = "branch") -> str | None:
        """The commit a branch or tag points at (None: no such ref)."""
        with self._lock:
            return self.repos[repo_id].refs.get((kind, name))

    def ref_moves(self, repo_id: str, name: str, kind: str = "branch") -> list[str]:
        """The commits a ref was created at, in order (each move of an alias is one)."""
        with self._lock:
            return [
                oid
                for r, k, n, oid in self.ref_log
                if (r, k, n) == (repo_id, kind, name) and oid is not None
            ]

    def _resolve(self, repo: Repo, rev: str) -> str:
        if rev == "main":
            return repo.head
        for kind in ("branch", "tag"):
            if (kind, rev) in repo.refs:
                return repo.refs[(kind, rev)]
        if any(c.oid == rev for c in repo.commits):
            return rev
        raise _Reply(404, f"Invalid rev id: {rev}", "RevisionNotFound")

    def _commit_list(self, args: dict[str, str], headers: dict[str, str], body: bytes) -> _Ok:
        """The history of `rev`, newest first, in one page (the client follows `Link` when a
        page has one; the Hub's pages are not needed to tell one commit's title)."""
        rev = args.pop("rev")
        repo = self._repo(args, headers, write=False)
        at = self._resolve(repo, rev)
        oids = [c.oid for c in repo.commits]
        history = repo.commits[: oids.index(at) + 1]
        return 200, [
            {
                "id": c.oid,
                "title": c.summary,
                "message": "",
                "authors": [{"user": self.user}],
                "date": _iso(self.now),
            }
            for c in reversed(history)
        ]

    def _refs(self, args: dict[str, str], headers: dict[str, str], body: bytes) -> _Ok:
        repo = self._repo(args, headers, write=False)

        def listed(kind: str, prefix: str) -> list[dict[str, str]]:
            items = sorted((n, oid) for (k, n), oid in repo.refs.items() if k == kind)
            if kind == "branch":
                items = [("main", repo.head), *items]
            return [{"name": n, "ref": f"{prefix}{n}", "targetCommit": oid} for n, oid in items]

        return 200, {
            "branches": listed("branch", "refs/heads/"),
            "tags": listed("tag", "refs/tags/"),
            "converts": [],
        }

    def _set_ref(self, repo: Repo, kind: str, name: str, at: str) -> _Ok:
        if name == "main" or (kind, name) in repo.refs:
            raise _Reply(409, f"{kind} {name} already exists")
        oid = self._resolve(repo, at)
        repo.refs[(kind, name)] = oid
        self.ref_log.append((repo.repo_id, kind, name, oid))
        return 200, None

    def _drop_ref(self, repo: Repo, kind: str, name: str) -> _Ok:
        if (kind, name) not in repo.refs:
            raise _Reply(404, f"{kind} {name} not found", "RevisionNotFound")
        del repo.refs[(kind, name)]
        self.ref_log.append((repo.repo_id, kind, name, None))
        return 200, None

    def _branch_create(self, args: dict[str, str], headers: dict[str, str], body: bytes) -> _Ok:
        repo = self._repo(args, headers, write=True)
        data = json.loads(body or b"{}")
        return self._set_ref(repo, "branch", args["ref"], data.get("startingPoint") or "main")

    def _branch_delete(self, args: dict[str, str], headers: dict[str, str], body: bytes) -> _Ok:
        return self._drop_ref(self._repo(args, headers, write=True), "branch", args["ref"])

    def _tag_create(self, args: dict[str, str], headers: dict[str, str], body: bytes) -> _Ok:
        repo = self._repo(args, headers, write=True)
        return self._set_ref(repo, "tag", json.loads(body)["tag"], args["at"])

    def _tag_delete(self, args: dict[str, str], headers: dict[str, str], body: bytes) -> _Ok:
        return self._drop_ref(self._repo(args, headers, write=True), "tag", args["ref"])

    # -- Jobs API (lock held) -----------------------------------------------------------------

    def _hardware(self, args: dict[str, str], headers: dict[str, str], body: bytes) -> _Ok:
        return 200, [
            {
                "name": name,
                "prettyName": name,
                "cpu": "8 vCPU",
                "ram": "32 GB",
                "ephemeralStorage": "100 GB",
                "accelerator": None,
                "unitCostMicroUSD": round(per_minute * 1e6),
                "unitCostUSD": per_minute,
                "unitLabel": "minute",
            }
            for name, per_minute in FLAVORS.items()
        ]

    def _jobs_auth(self, args: dict[str, str], headers: dict[str, str]) -> None:
        if not self._auth(headers):
            raise _Reply(401, "Invalid credentials in Authorization header")
        if not self._may_write(args["ns"]):
            raise _Reply(403, f"You don't have the rights to run jobs under {args['ns']}")

    def _job(self, args: dict[str, str]) -> HFJob:
        job = self.jobs.get(args["id"])
        if job is None or job.namespace != args["ns"]:
            raise _Reply(404, "Job not found")
        return job

    def _job_create(self, args: dict[str, str], headers: dict[str, str], body: bytes) -> _Ok:
        self._jobs_auth(args, headers)
        spec = json.loads(body)
        if not isinstance(spec.get("command"), list) or not spec["command"]:
            raise _Reply(400, "command must be a non-empty list")
        if spec.get("flavor") not in JOB_FLAVORS:
            raise _Reply(400, f"unknown flavor {spec.get('flavor')!r}")
        if ("dockerImage" in spec) == ("spaceId" in spec):
            raise _Reply(400, "exactly one of dockerImage or spaceId")
        labels = spec.get("labels") or {}
        if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
            raise _Reply(400, "labels must map strings to strings")
        job_id = hashlib.sha1(f"job-{next(self._ids)}".encode()).hexdigest()[:24]
        limit = float(spec.get("timeoutSeconds") or DEFAULT_TIMEOUT_S)
        first = labels.get("trainops-attempt") == "1"
        outcome = "ERROR" if first and labels.get("trainops-job") in self.failing else "COMPLETED"
        message = "training diverged" if outcome == "ERROR" else None
        if self.run_s > limit:  # the service stops it at its timeout: never COMPLETED
            outcome, message = "ERROR", TIMED_OUT
        run_s = min(self.run_s, limit)
        job = HFJob(spec, args["ns"], job_id, self.now, self.schedule_s, run_s, outcome)
        job.message = message
        self.jobs[job_id] = job
        return 200, self._job_json(job)

    def _job_get(self, args: dict[str, str], headers: dict[str, str], body: bytes) -> _Ok:
        self._jobs_auth(args, headers)
        return 200, self._job_json(self._job(args))

    def _job_cancel(self, args: dict[str, str], headers: dict[str, str], body: bytes) -> _Ok:
        self._jobs_auth(args, headers)
        job = self._job(args)
        if job.stage(self.now)[0] in ACTIVE_STAGES:
            job.canceled_at = self.now
        return 200, None

    def _job_list(self, args: dict[str, str], headers: dict[str, str], body: bytes) -> _Ok:
        self._jobs_auth(args, headers)
        query = parse_qsl(args["_query"], keep_blank_values=True)
        # No `stage` and no `label`: every job of the namespace, in every stage (`list_jobs`
        # sends `stage` and `label` only when given: hf_api.py 2.4; `status --all` lists so).
        stages = {v for k, v in query if k == "stage"}
        if stages - STAGES:
            raise _Reply(400, f"Invalid stage: {sorted(stages - STAGES)[0]}")
        wanted = [tuple(v.split("=", 1)) for k, v in query if k == "label" and "=" in v]
        cursor = int(next((v for k, v in query if k == "cursor"), "0") or 0)
        matching = []
        for job in sorted(self.jobs.values(), key=lambda j: j.created, reverse=True):
            if job.namespace != args["ns"] or self.now < job.created + self.list_lag:
                continue
            labels = job.spec.get("labels") or {}
            if any(labels.get(k) != v for k, v in wanted):
                continue
            if stages and job.stage(self.now)[0] not in stages:
                continue
            matching.append(job)
        page = matching[cursor : cursor + self.page_size]
        extra = {}
        if cursor + self.page_size < len(matching):
            rest = [(k, v) for k, v in query if k != "cursor"]
            rest.append(("cursor", str(cursor + self.page_size)))
            link = f"{self.url}/api/jobs/{args['ns']}?{urlencode(rest)}"
            extra["Link"] = f'<{link}>; rel="next"'
        return 200, _Extra([self._job_json(j) for j in page], extra)

    def _job_logs(self, args: dict[str, str], headers: dict[str, str], body: bytes) -> _Ok:
        self._jobs_auth(args, headers)
        job = self._job(args)
        stage, started, _finished = job.stage(self.now)
        lines = ["===== Job started ====="] if started is not None else []
        if started is not None:
            name = (job.spec.get("labels") or {}).get("trainops-job", "job")
            lines += [f"{name}: step {i}/3 loss={1.0 / i:.3f}" for i in (1, 2, 3)]
        if stage == "COMPLETED":
            lines.append(f"{name}: pushed outputs")
        elif stage == "ERROR" and job.message == TIMED_OUT:
            lines.append(TIMED_OUT)
        elif stage == "ERROR":
            lines.append(f"{name}: RuntimeError: training diverged")
        stamp = _iso(min(time.time(), self.now) - 1)
        events = [json.dumps({"data": line, "timestamp": stamp}) for line in lines]
        return 200, _Extra(_SSE("".join(f"data: {e}\n\n" for e in events)), {})

    def _job_json(self, job: HFJob) -> dict[str, Any]:
        stage, started, finished = job.stage(self.now)
        if stage == "COMPLETED" and not job.pushed:
            job.pushed = True
            self._push_outputs(job)
        spec = job.spec
        out: dict[str, Any] = {
            "id": job.job_id,
            "createdAt": _iso(job.created),
            "command": spec["command"],
            "arguments": spec.get("arguments", []),
            "environment": spec.get("environment", {}),
            "secrets": sorted(spec.get("secrets") or {}),  # names only, never the values
            "flavor": spec["flavor"],
            "labels": spec.get("labels") or {},
            "status": {
                "stage": stage,
                "message": job.message if stage == "ERROR" else None,
            },
            "owner": {"id": _oid(job.namespace)[:24], "name": job.namespace, "type": "org"},
        }
        if started is not None:
            out["startedAt"] = _iso(started)
        if finished is not None:
            out["finishedAt"] = _iso(finished)
        if "dockerImage" in spec:
            out["dockerImage"] = spec["dockerImage"]
        else:
            out["spaceId"] = spec["spaceId"]
        return out

    def _push_outputs(self, job: HFJob) -> None:
        """What a training job does at its end: commit its weights to the output repo."""
        repo_id = (job.spec.get("environment") or {}).get("TRAINOPS_OUTPUT_REPO")
        if not repo_id or repo_id.count("/") != 1:
            return
        repo = self.repos.get(repo_id)
        if repo is None:
            repo = Repo(repo_id, True)
            self._apply(repo, "initial commit", {".gitattributes": GITATTRIBUTES}, [])
            self.repos[repo_id] = repo
        weights = f"weights of {job.job_id} input {job.spec['environment'].get('TRAINOPS_INPUT')}"
        self._apply(
            repo, f"trainops: outputs of job {job.job_id}", {"weights.bin": weights.encode()}, []
        )

    # -- storage ------------------------------------------------------------------------------

    def _apply(
        self, repo: Repo, summary: str, added: dict[str, bytes], deleted: list[str]
    ) -> Commit:
        for path in deleted:
            for existing in [p for p in repo.files if p == path or p.startswith(path + "/")]:
                del repo.files[existing]
        repo.files.update(added)
        self._commits += 1
        commit = Commit(
            _oid(f"{repo.repo_id}:{self._commits}"), summary, tuple(sorted({*added, *deleted}))
        )
        repo.commits.append(commit)
        return commit

    def _entry(self, path: str, data: bytes) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "type": "file",
            "oid": git_blob_id(data),
            "size": len(data),
            "path": path,
        }
        if self.lfs_from_size is not None and len(data) >= self.lfs_from_size:
            sha256 = hashlib.sha256(data).hexdigest()
            pointer = (
                f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\n"
                f"size {len(data)}\n"
            ).encode()
            entry["oid"] = git_blob_id(pointer)
            entry["lfs"] = {"oid": sha256, "size": len(data), "pointerSize": len(pointer)}
        return entry


@dataclass(frozen=True)
class _Extra:
    """A payload with response headers of its own (a list page's Link)."""

    payload: Any
    headers: dict[str, str]


@dataclass(frozen=True)
class _SSE:
    """A server-sent events body (not JSON)."""

    text: str


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


_Ok = tuple[int, Any]
_Answer = tuple[int, Any, dict[str, str]]


def _oid(seed: str) -> str:
    return hashlib.sha1(seed.encode()).hexdigest()


class _Handler(BaseHTTPRequestHandler):
    emu: HubEmulator
    protocol_version = "HTTP/1.1"
    timeout = 10
    disable_nagle_algorithm = True
    wbufsize = -1
    server_version = "HubEmulator"
    sys_version = ""

    def _read_body(self) -> bytes:
        if self.headers.get("transfer-encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("content-length") or 0)
        return self.rfile.read(length) if length else b""

    def _serve(self) -> None:
        body = self._read_body()
        headers = {k.lower(): v for k, v in self.headers.items()}
        status, payload, extra = self.emu._handle(self.command, self.path, headers, body)
        if status == DROP:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(2)
            return
        kind = "application/json; charset=utf-8"
        if isinstance(payload, _SSE):
            data, kind = payload.text.encode(), "text/event-stream"
        else:
            data = b"" if payload is None else json.dumps(payload).encode()
        with contextlib.suppress(OSError):
            self.send_response(status)
            self.send_header("content-type", kind)
            self.send_header("content-length", str(len(data)))
            for key, value in extra.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = _serve

    def log_message(self, format: str, *args: Any) -> None:
        pass


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--token", default="hf_emulator_write_token")
    args = parser.parse_args(argv)
    with HubEmulator(args.token, port=args.port) as emu:
        print(f"HF_ENDPOINT={emu.url} HF_TOKEN={args.token}", flush=True)
        threading.Event().wait()


HubEmulator.handler = _Handler


if __name__ == "__main__":
    main()
