"""A Replicate HTTP API emulator: a real server on 127.0.0.1 for tests, benchmarks and demos.

It serves the endpoints trainops uses with the JSON shapes of Replicate's OpenAPI description
(`tests/fixtures/replicate-openapi.json`) and the quirks noted in `../shared/ref/README.md`:
trainings move starting -> processing -> succeeded on a simulated clock the test controls,
errors are `application/problem+json`, lists are pages of 100 with absolute `next` links, rate
limits are enforced per token, and faults (429, 5xx, slow or dropped responses, a response lost
after the training was created, aborted trainings) are injected on demand. Files (`/v1/files`)
are uploaded as multipart, listed newest first and expire `file_ttl` simulated seconds after
their upload. Every request is
recorded (never the Authorization header) so tests can count what reached the service.

    with ReplicateEmulator() as emu:
        client = replicate.Client(api_token=emu.token, base_url=emu.base_url)
        ...
        emu.advance(120)          # simulated seconds: trainings progress

Standalone: `python -m tests.emulators.replicate --port 8765 --token r8_demo --speed 10`.
"""

from __future__ import annotations

import argparse
import base64
import collections
import contextlib
import copy
import hashlib
import json
import random
import re
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jsonschema

DEFAULT_TOKEN = "r8_emulatorTestToken0000000000000000000"
DEFAULT_ACCOUNT = "acme"
PAGE_SIZE = 100
FAIL_MARKER = "__fail__"  # a training whose input holds this in any string fails
ABORT_MARKER = "__abort__"  # ... is aborted before it starts
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
OPENAPI_FIXTURE = FIXTURES / "replicate-openapi.json"
TRAINERS_FIXTURE = FIXTURES / "replicate-trainers.json"

# Versions of the seeded trainers (tests/fixtures/replicate-trainers.json).
FLUX_LORA_VERSION = "26dce37af90b9d997eeb970d92e47de3064d46c300504ae376c75bef6a9022d2"
FLUX_LORA_OLD_VERSION = "d995297071a44dcb72244e6c19462111649ec86a9646c32df56daa7f14801944"
FAST_FLUX_VERSION = "8b10794665aed907bb98a1a5324cd1d3a8bea0e9b31e65210967fb9c9e2e08ed"

# Path patterns for `inject(path=...)` (searched in the request path).
CREATE_PATH = r"/versions/[^/]+/trainings$"
LIST_PATH = r"^/v1/trainings$"
GET_PATH = r"^/v1/trainings/[^/]+$"
CANCEL_PATH = r"^/v1/trainings/[^/]+/cancel$"
FILES_PATH = r"^/v1/files$"  # POST: an upload; GET: the list
FILE_PATH = r"^/v1/files/[^/]+$"

FILE_TTL = 24 * 3600.0  # simulated seconds an uploaded file lives (the service's own choice)
# "Files must be less than 100MB in size": 100 MB as the service counts, 100,000,000 bytes, and a
# body of exactly that size is refused (shared/ref/README.md "Checked against the real clients").
FILE_LIMIT = 100_000_000

TERMINAL = frozenset({"succeeded", "failed", "canceled", "aborted"})
FAULT_KINDS = frozenset(
    {"rate_limit", "error", "delay", "drop", "lost_response", "abort", "fail", "no_id"}
)


# ---- time -----------------------------------------------------------------------------------


class SimClock:
    """Unix time that moves only when told (`advance`), or at `speed` x real time. It starts at
    the wall clock unless told otherwise: Replicate stamps `created_at` with real time, and
    trainops proves a training is its own by a creation time no earlier than its intent (DESIGN
    §9), so an emulator whose clock trails the caller's by more than the tolerated skew answers
    like a provider whose trainings predate the intent (see tests/security/test_ownership.py)."""

    def __init__(self, start: float | None = None, speed: float = 0.0) -> None:
        self._lock = threading.Lock()
        self._base = time.time() if start is None else start
        self._speed = speed
        self._real0 = time.monotonic()

    def now(self) -> float:
        with self._lock:
            return self._base + (time.monotonic() - self._real0) * self._speed

    def advance(self, seconds: float) -> float:
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        with self._lock:
            self._base += seconds
        return self.now()


class RateLimiter:
    """Sliding-window limits per (token, bucket): at most `limits[bucket]` requests in any
    `window` seconds of `clock`. Buckets: `create` (trainings and predictions) and `default`."""

    def __init__(
        self,
        limits: Mapping[str, int],
        window: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limits = dict(limits)
        self.window = window
        self.clock = clock
        self._log: dict[tuple[str, str], collections.deque[float]] = {}
        self._lock = threading.Lock()

    def acquire(self, key: str, bucket: str) -> tuple[bool, int, int]:
        """(allowed, remaining, seconds until a slot frees)."""
        limit = self.limits[bucket]
        now = self.clock()
        with self._lock:
            log = self._log.setdefault((key, bucket), collections.deque())
            while log and log[0] <= now - self.window:
                log.popleft()
            reset = max(1, int(log[0] + self.window - now + 0.999)) if log else 1
            if len(log) >= limit:
                return False, 0, reset
            log.append(now)
            return True, limit - len(log), reset


# ---- recorded values ------------------------------------------------------------------------


@dataclass
class Fault:
    """One injected fault. `path` is a regex searched in the request path; `count` None means
    forever. Kinds: rate_limit (429 with `ratelimit-reset`
    and a `~Ns` detail, no Retry-After, as Replicate answers; with `probability`, a seeded rate),
    error (`status`; with `after`, the request
    is handled first), delay (handle, then wait `delay` real seconds before answering), drop
    (close the socket, request not handled), lost_response (handle, then close the socket),
    abort / fail (the created training ends aborted / failed), no_id (handle, then answer
    without `id`, in the object and in every item of a list: a malformed answer)."""

    kind: str
    method: str | None = None
    path: str = ""
    count: int | None = 1
    probability: float = 1.0
    status: int = 500
    retry_after: int = 1
    delay: float = 0.0
    after: bool = False
    hits: int = 0


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: Mapping[str, list[str]]
    body: Any  # parsed JSON, or None
    status: int  # 0 when the connection was dropped without a response
    response: Any  # parsed JSON body, or None
    content_type: str
    fault: str  # the injected fault kind that shaped this response, or ""
    time: float  # simulated clock at arrival
    account: str  # the token's account ("" when unauthenticated); never the token


@dataclass(frozen=True)
class TrainingRecord:
    """A created training as tests see it, in creation order."""

    id: str
    seq: int
    model: str
    version: str
    destination: str
    input: Mapping[str, Any]
    status: str
    created_at: float
    source: str


@dataclass
class _File:
    id: str
    seq: int
    account: str
    name: str
    content_type: str
    sha256: str
    md5: str
    size: int
    metadata: dict[str, Any]
    created_at: float
    expires_at: float


@dataclass(frozen=True)
class FileRecord:
    """An uploaded file as tests see it, in upload order (`deleted` once removed)."""

    id: str
    name: str
    sha256: str
    size: int
    metadata: Mapping[str, Any]
    created_at: float
    expires_at: float
    deleted: bool


@dataclass
class _Version:
    id: str
    seq: int
    created_at: float
    openapi_schema: dict[str, Any]
    cog_version: str = "0.9.13"


@dataclass
class _Model:
    owner: str
    name: str
    visibility: str
    hardware: str
    description: str | None = None
    versions: list[_Version] = field(default_factory=list)  # oldest first
    run_count: int = 0


@dataclass
class _Training:
    id: str
    seq: int
    account: str
    model: str
    version: str
    destination: str
    input: dict[str, Any]
    source: str
    created_at: float
    queue_s: float
    run_s: float
    outcome: str  # what it ends as unless canceled: succeeded | failed | aborted
    status: str = "starting"
    started_at: float | None = None
    completed_at: float | None = None
    error: str | None = None
    output: dict[str, str] | None = None
    webhook: str | None = None  # where the service POSTs signed events (Standard Webhooks)
    webhook_events: frozenset[str] = frozenset({"start", "output", "logs", "completed"})


@dataclass(frozen=True)
class WebhookDelivery:
    """One signed event the emulator sent, and what the receiver answered (0: unreachable)."""

    training_id: str
    event: str
    url: str
    msg_id: str
    status: int
    sent_at: float  # real time.time() when the answer came


class _ApiError(Exception):
    def __init__(self, status: int, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.status = status
        self.payload: dict[str, Any] = {"detail": detail, "status": status, **extra}


@dataclass
class _Reply:
    status: int = 200
    payload: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None  # a non-JSON body
    drop: bool = False
    delay: float = 0.0
    fault: str = ""

    @property
    def content_type(self) -> str:
        if self.raw is not None:
            return "application/octet-stream"
        return "application/json" if self.status < 400 else "application/problem+json"


# ---- the emulator ---------------------------------------------------------------------------


class ReplicateEmulator:
    """The service state, its HTTP server and the knobs tests turn. Thread-safe."""

    def __init__(
        self,
        *,
        token: str = DEFAULT_TOKEN,
        account: str = DEFAULT_ACCOUNT,
        tokens: Mapping[str, str] | None = None,
        queue_seconds: float = 5.0,
        run_seconds: float = 60.0,
        durations: Callable[[Mapping[str, Any]], tuple[float, float]] | None = None,
        fail_marker: str = FAIL_MARKER,
        abort_marker: str = ABORT_MARKER,
        rate_limits: Mapping[str, int] | None = None,
        rate_clock: Callable[[], float] = time.monotonic,
        clock: SimClock | None = None,
        seed: int = 0,
        seed_trainers: bool = True,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.token = token
        self.account = account
        self._tokens = {token: account, **(tokens or {})}
        self.clock = clock or SimClock()
        self.queue_seconds = queue_seconds
        self.run_seconds = run_seconds
        self.durations = durations
        self.fail_marker = fail_marker
        self.abort_marker = abort_marker
        self.limiter = RateLimiter(
            {"create": 600, "default": 3000, **(rate_limits or {})}, clock=rate_clock
        )
        self.log_interval = 5.0  # simulated seconds between progress lines
        # What a succeeded training answers as its `output.weights` (training id -> URL): the
        # service's own file URL by default; a test sets a hostile one (a provider's answer is
        # untrusted input, DESIGN §13a).
        self.weights_url: Callable[[str], str] | None = None
        # What a trainer reports under `output.metrics` (its input -> numbers): a trainer's own
        # output, which the service passes on as is. None: no metrics (Replicate's own timing,
        # `metrics.total_time`/`predict_time`, is not a training metric).
        self.output_metrics: Callable[[Mapping[str, Any]], dict[str, Any]] | None = None
        self._lock = threading.RLock()
        self._ids = random.Random(seed)
        self._fault_rng = random.Random(seed + 1)
        self._seq = 0
        self._models: dict[tuple[str, str], _Model] = {}
        self._trainings: dict[str, _Training] = {}
        self._deployments: dict[tuple[str, str], dict[str, Any]] = {}
        self._order: list[_Training] = []  # creation order
        self._active: set[str] = set()
        self._files: dict[str, _File] = {}
        self._contents: dict[str, bytes] = {}
        self._uploads: list[tuple[_File, bool]] = []  # every upload, and whether it was deleted
        self.file_ttl = FILE_TTL
        self._faults: list[Fault] = []
        self._requests: list[RecordedRequest] = []
        self.server_errors: list[str] = []  # unexpected exceptions in handler threads
        key = hashlib.sha256(b"webhook-%d" % seed).digest()[:24]
        self._secret = "whsec_" + base64.b64encode(key).decode()
        self._outbox: list[tuple[str, str, str, dict[str, Any]]] = []  # (id, event, url, body)
        self.webhook_deliveries: list[WebhookDelivery] = []
        self._webhook_threads: list[threading.Thread] = []
        self._host, self._port = host, port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        if seed_trainers:
            _seed_trainers(self)

    # -- lifecycle --

    def start(self) -> ReplicateEmulator:
        if self._server is not None:
            return self
        self._server = _Server((self._host, self._port), _Handler, self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="replicate-emulator",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.close_connections()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> ReplicateEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the emulator is not running: call start()")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        """What `replicate.Client(base_url=...)` takes: no `/v1` (the client adds it)."""
        return f"http://{self._host}:{self.port}"

    # -- time --

    def advance(self, seconds: float) -> float:
        """Move simulated time forward; trainings progress accordingly (and their webhooks are
        sent, as the service does when a training changes). Returns the new now."""
        now = self.clock.advance(seconds)
        with self._lock:
            self._settle()
        self._flush_webhooks()
        return now

    # -- webhooks --

    @property
    def webhook_secret(self) -> str:
        """What `GET /v1/webhooks/default/secret` answers (`whsec_...`)."""
        return self._secret

    def sign_webhook(
        self, body: bytes, msg_id: str, timestamp: float | None = None, secret: str | None = None
    ) -> dict[str, str]:
        """The Standard Webhooks headers Replicate sends with `body` (signed with `secret`,
        default the account's; `timestamp` default now, real time)."""
        from standardwebhooks.webhooks import Webhook

        at = datetime.fromtimestamp(time.time() if timestamp is None else timestamp, UTC)
        signature = Webhook(secret or self._secret).sign(msg_id, at, body.decode())
        return {
            "webhook-id": msg_id,
            "webhook-timestamp": str(int(at.timestamp())),
            "webhook-signature": signature,
            "content-type": "application/json",
        }

    def wait_webhooks(self, timeout: float = 30.0) -> list[WebhookDelivery]:
        """Wait until every webhook sent so far has been answered; returns all deliveries."""
        deadline = time.monotonic() + timeout
        for thread in list(self._webhook_threads):
            thread.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            return list(self.webhook_deliveries)

    def _queue_webhook(self, t: _Training, event: str) -> None:
        if t.webhook is None or event not in t.webhook_events:
            return
        msg_id = f"msg_{self._ids.getrandbits(96):024x}"
        self._outbox.append((msg_id, event, t.webhook, self._training_json(t)))

    def _flush_webhooks(self) -> None:
        with self._lock:
            batch, self._outbox = self._outbox, []
        if not batch:
            return
        thread = threading.Thread(target=self._send_webhooks, args=(batch,), daemon=True)
        self._webhook_threads.append(thread)
        thread.start()

    def _send_webhooks(self, batch: list[tuple[str, str, str, dict[str, Any]]]) -> None:
        import httpx

        with httpx.Client(timeout=10.0) as client:
            for msg_id, event, url, payload in batch:
                body = json.dumps(payload).encode()
                try:
                    status = client.post(
                        url, content=body, headers=self.sign_webhook(body, msg_id)
                    ).status_code
                except httpx.HTTPError:
                    status = 0
                with self._lock:
                    self.webhook_deliveries.append(
                        WebhookDelivery(payload["id"], event, url, msg_id, status, time.time())
                    )

    def now(self) -> float:
        return self.clock.now()

    # -- seeding --

    def add_model(
        self,
        owner: str,
        name: str,
        *,
        visibility: str = "public",
        hardware: str = "cpu",
        description: str | None = None,
    ) -> None:
        with self._lock:
            self._models.setdefault(
                (owner, name), _Model(owner, name, visibility, hardware, description)
            )

    def add_version(
        self,
        owner: str,
        name: str,
        *,
        training_input: Mapping[str, Any] | None = None,
        openapi_schema: Mapping[str, Any] | None = None,
        version_id: str | None = None,
        extra_schemas: Mapping[str, Any] | None = None,
    ) -> str:
        """Add a version (the model is created public when missing); it becomes the latest.
        `training_input` makes it a trainer: it lands at components.schemas.TrainingInput."""
        with self._lock:
            self.add_model(owner, name)
            if openapi_schema is None:
                openapi_schema = _cog_schema(training_input, extra_schemas)
            vid = version_id or self._hex64()
            self._models[(owner, name)].versions.append(
                _Version(vid, self._next_seq(), self.now(), copy.deepcopy(dict(openapi_schema)))
            )
            return vid

    def add_trainer(self, ref: str, training_input: Mapping[str, Any], **kw: Any) -> str:
        """`owner/name` -> a new trainer version id."""
        owner, name = ref.split("/", 1)
        return self.add_version(owner, name, training_input=training_input, **kw)

    def add_deployment(self, deployment: str, model: str, version: str) -> None:
        """A deployment `owner/name` of `model` serving `version` (a version id of it)."""
        owner, _, name = deployment.partition("/")
        with self._lock:
            self._deployments[(owner, name)] = {
                "owner": owner,
                "name": name,
                "model": model,
                "configuration": {"hardware": "gpu-t4", "min_instances": 0, "max_instances": 1},
                "releases": [{"version": version, "at": self.now()}],
            }

    def deployment_releases(self, deployment: str) -> list[str]:
        """The version ids `deployment` served, one per release, oldest first."""
        owner, _, name = deployment.partition("/")
        with self._lock:
            return [r["version"] for r in self._deployments[(owner, name)]["releases"]]

    def has_model(self, ref: str) -> bool:
        owner, _, name = ref.partition("/")
        with self._lock:
            return (owner, name) in self._models

    def versions(self, ref: str) -> list[str]:
        """Version ids of a model, newest first."""
        owner, _, name = ref.partition("/")
        with self._lock:
            model = self._models.get((owner, name))
            return [v.id for v in reversed(model.versions)] if model else []

    def create_training(
        self,
        trainer: str,
        destination: str,
        input: Mapping[str, Any],
        *,
        account: str | None = None,
        source: str = "web",
        outcome: str | None = None,
    ) -> str:
        """Create a training without HTTP (e.g. one started on the website); no validation."""
        owner, name, version = re.split(r"[/:]", trainer, maxsplit=2)
        with self._lock:
            t = self._new_training(
                account or self.account,
                f"{owner}/{name}",
                version,
                destination,
                dict(input),
                source,
                outcome,
            )
            return t.id

    # -- faults --

    def inject(self, kind: str, **options: Any) -> Fault:
        """Add a fault (see `Fault`); returns it so a test can read `hits`. Faults are tried in
        the order they were added; the first that matches a request applies."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; one of {sorted(FAULT_KINDS)}")
        fault = Fault(kind, **options)
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def abort(self, training_id: str) -> None:
        """Abort a training that has not started (status `aborted`, as the real service does when a
        queued training is terminated)."""
        with self._lock:
            t = self._training(training_id)
            if t.status != "starting":
                raise ValueError(f"training {training_id} is {t.status}, not starting")
            self._finish(t, "aborted", self.now())

    # -- what tests read --

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def count(self, method: str | None = None, path: str | None = None) -> int:
        """Recorded requests with this method and whose path matches the regex (searched)."""
        with self._lock:
            return sum(
                1
                for r in self._requests
                if (method is None or r.method == method)
                and (path is None or re.search(path, r.path))
            )

    def reset_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    @property
    def trainings(self) -> list[TrainingRecord]:
        """Every training, in creation order, with its current status."""
        with self._lock:
            self._settle()
            return [
                TrainingRecord(
                    t.id,
                    t.seq,
                    t.model,
                    t.version,
                    t.destination,
                    copy.deepcopy(t.input),
                    t.status,
                    t.created_at,
                    t.source,
                )
                for t in self._order
            ]

    def training_counts(self) -> collections.Counter[tuple[str, str]]:
        """Trainings per (destination, canonical JSON of input)."""
        return collections.Counter((t.destination, _canonical(t.input)) for t in self.trainings)

    def training_json(self, training_id: str) -> dict[str, Any]:
        """The training as `GET /v1/trainings/{id}` returns it."""
        with self._lock:
            self._settle()
            return self._training_json(self._training(training_id))

    @property
    def files(self) -> list[FileRecord]:
        """Every file ever uploaded, in upload order (deleted ones too)."""
        with self._lock:
            return [
                FileRecord(
                    f.id,
                    f.name,
                    f.sha256,
                    f.size,
                    copy.deepcopy(f.metadata),
                    f.created_at,
                    f.expires_at,
                    f.id not in self._files,
                )
                for f, _ in self._uploads
            ]

    def expire_file(self, file_id: str) -> None:
        """Make a file expired now (as the service does once its time is up): still listed, its
        `expires_at` in the past."""
        with self._lock:
            f = self._files[file_id]
            f.expires_at = min(f.created_at, self.now()) - 1.0

    def file_content(self, file_id: str) -> bytes:
        with self._lock:
            return self._contents[file_id]

    # -- internals: state --

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _hex64(self) -> str:
        return f"{self._ids.getrandbits(256):064x}"

    def _new_id(self) -> str:
        alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
        while True:
            tid = "".join(self._ids.choice(alphabet) for _ in range(26))
            if tid not in self._trainings:
                return tid

    def _training(self, training_id: str) -> _Training:
        t = self._trainings.get(training_id)
        if t is None:
            raise KeyError(training_id)
        return t

    def _new_training(
        self,
        account: str,
        model: str,
        version: str,
        destination: str,
        input: dict[str, Any],
        source: str,
        outcome: str | None,
    ) -> _Training:
        queue_s, run_s = (
            self.durations(input) if self.durations else (self.queue_seconds, self.run_seconds)
        )
        if outcome is None:
            outcome = "succeeded"
            if _holds(input, self.abort_marker):
                outcome = "aborted"
            elif _holds(input, self.fail_marker):
                outcome = "failed"
        t = _Training(
            id=self._new_id(),
            seq=self._next_seq(),
            account=account,
            model=model,
            version=version,
            destination=destination,
            input=copy.deepcopy(input),
            source=source,
            created_at=self.now(),
            queue_s=queue_s,
            run_s=run_s,
            outcome=outcome,
        )
        self._trainings[t.id] = t
        self._order.append(t)
        self._active.add(t.id)
        return t

    def _settle(self) -> None:
        """Bring every active training to where the clock says it is."""
        now = self.now()
        for tid in sorted(self._active, key=lambda i: self._trainings[i].seq):
            t = self._trainings[tid]
            start = t.created_at + t.queue_s
            if t.status == "starting" and now >= start:
                if t.outcome == "aborted":
                    self._finish(t, "aborted", start)
                    continue
                t.status, t.started_at = "processing", start
                self._queue_webhook(t, "start")
            if t.status == "processing" and t.started_at is not None:
                end = t.started_at + t.run_s
                if now >= end:
                    self._finish(t, t.outcome, end)

    def _finish(self, t: _Training, status: str, at: float) -> None:
        t.status, t.completed_at = status, at
        self._active.discard(t.id)
        if status == "failed":
            t.error = "RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB"
        elif status == "succeeded":
            owner, name = t.destination.split("/", 1)
            model = self._models[(owner, name)]
            version = _Version(self._hex64(), self._next_seq(), at, _cog_schema(None, None))
            model.versions.append(version)
            t.output = {
                "version": f"{t.destination}:{version.id}",
                "weights": self.weights_url(t.id)
                if self.weights_url is not None
                else f"{self.base_url}/delivery/{t.id}/trained_model.tar",
            }
            if self.output_metrics is not None:
                t.output["metrics"] = self.output_metrics(t.input)
        trainer = self._models.get((t.model.partition("/")[0], t.model.partition("/")[2]))
        if trainer is not None:
            trainer.run_count += 1
        self._queue_webhook(t, "completed")

    def _logs(self, t: _Training) -> str:
        if t.started_at is None:
            return ""
        end = t.completed_at if t.completed_at is not None else self.now()
        elapsed = max(0.0, end - t.started_at)
        steps = t.input.get("steps", t.input.get("training_steps", 1000))
        steps = steps if isinstance(steps, int) and steps > 0 else 1000
        lines = [f"Training {t.model} for {steps} steps", "Loading base model..."]
        ticks = min(int(elapsed // self.log_interval), 1000)
        for k in range(1, ticks + 1):
            done = min(steps, round(steps * k * self.log_interval / max(t.run_s, 1e-9)))
            loss = 0.5 / (1 + k * 0.1)
            lines.append(f"flux_train_replicate: step {done}/{steps} loss={loss:.4f}")
        if t.status == "succeeded":
            lines += ["Saving weights to output/trained_model.tar", "Training complete"]
        elif t.status == "failed":
            lines += ["Traceback (most recent call last):", f"  {t.error}"]
        elif t.status == "canceled":
            lines.append("Training canceled")
        return "\n".join(lines) + "\n"

    def _training_json(
        self, t: _Training, *, urls: str = "trainings", logs: bool = True
    ) -> dict[str, Any]:
        base = f"{self.base_url}/v1/{urls}/{t.id}"
        out: dict[str, Any] = {
            "id": t.id,
            "model": t.model,
            "version": t.version,
            "input": copy.deepcopy(t.input),
            "error": t.error,
            "status": t.status,
            "created_at": _iso(t.created_at),
            "source": t.source,
            "urls": {
                "get": base,
                "cancel": f"{base}/cancel",
                "web": f"https://replicate.com/p/{t.id}",
            },
        }
        if logs:
            out["logs"] = self._logs(t)
        if t.started_at is not None:
            out["started_at"] = _iso(t.started_at)
        if t.status == "processing":
            out["metrics"] = {}
        if t.completed_at is not None:
            out["completed_at"] = _iso(t.completed_at)
            metrics = {"total_time": round(t.completed_at - t.created_at, 6)}
            if t.status != "aborted":
                started = t.started_at if t.started_at is not None else t.completed_at
                metrics["predict_time"] = round(t.completed_at - started, 6)
            out["metrics"] = metrics
        if t.output is not None:
            out["output"] = dict(t.output)
        return out

    # -- internals: HTTP --

    def _take_fault(self, stage: str, method: str, path: str) -> Fault | None:
        for fault in self._faults:
            if _stage(fault) != stage:
                continue
            if fault.method is not None and fault.method.upper() != method:
                continue
            if fault.path and not re.search(fault.path, path):
                continue
            if fault.count is not None and fault.hits >= fault.count:
                continue
            if fault.probability < 1.0 and self._fault_rng.random() >= fault.probability:
                continue
            fault.hits += 1
            return fault
        return None

    def handle(self, method: str, target: str, headers: Mapping[str, str], raw: bytes) -> _Reply:
        """One HTTP exchange, decided under the lock (the server thread sleeps/drops after)."""
        url = urlsplit(target)
        path, query = url.path, parse_qs(url.query)
        if path.startswith("/_emulator/"):
            return self._admin(method, path, raw)
        content_type = headers.get("Content-Type", "") or ""
        try:
            if content_type.lower().startswith("multipart/form-data"):
                body: Any = _multipart(content_type, raw)
            else:
                body = json.loads(raw) if raw else None
            bad_json = False
        except ValueError:
            body, bad_json = None, True
        with self._lock:
            arrived = self.now()
            account = ""
            reply = self._pre_fault(method, path)
            if reply is None:
                token = _bearer(headers.get("Authorization", ""))
                account = self._tokens.get(token or "", "")
                reply = self._serve(method, path, query, body, bad_json, token, account)
            post = self._take_fault("post", method, path) if not reply.fault else None
            if post is not None:
                reply = self._post_fault(post, reply)
            self._requests.append(
                RecordedRequest(
                    method=method,
                    path=path,
                    query=query,
                    body=_recorded_body(body),
                    status=0 if reply.drop else reply.status,
                    response=None if reply.drop else copy.deepcopy(reply.payload),
                    content_type="" if reply.drop else reply.content_type,
                    fault=reply.fault,
                    time=arrived,
                    account=account,
                )
            )
            return reply

    def _pre_fault(self, method: str, path: str) -> _Reply | None:
        fault = self._take_fault("pre", method, path)
        if fault is None:
            return None
        if fault.kind == "drop":
            return _Reply(drop=True, fault="drop")
        if fault.kind == "rate_limit":
            return _throttled(fault.retry_after, fault="rate_limit")
        return _problem(_ApiError(fault.status, _STATUS_DETAIL.get(fault.status, "Error")), "error")

    def _post_fault(self, fault: Fault, reply: _Reply) -> _Reply:
        if fault.kind == "lost_response":
            return _Reply(drop=True, fault="lost_response")
        if fault.kind == "no_id":
            payload = copy.deepcopy(reply.payload)
            if isinstance(payload, dict):
                payload.pop("id", None)
                for item in payload.get("results") or []:
                    if isinstance(item, dict):
                        item.pop("id", None)
            reply.payload, reply.fault = payload, "no_id"
            return reply
        if fault.kind == "delay":
            reply.delay, reply.fault = fault.delay, "delay"
            return reply
        return _problem(_ApiError(fault.status, _STATUS_DETAIL.get(fault.status, "Error")), "error")

    def _serve(
        self,
        method: str,
        path: str,
        query: Mapping[str, list[str]],
        body: Any,
        bad_json: bool,
        token: str | None,
        account: str,
    ) -> _Reply:
        if method == "GET" and (m := re.fullmatch(r"/delivery/([^/]+)/trained_model\.tar", path)):
            if m.group(1) not in self._trainings:
                return _problem(_ApiError(404, "Not found."))
            return _Reply(raw=f"emulated weights of training {m.group(1)}\n".encode())
        if not account:
            return _problem(
                _ApiError(
                    401, "You did not pass a valid authentication token", title="Unauthenticated"
                )
            )
        route, params, miss = _route(method, path)
        bucket = "create" if route is not None and route.create else "default"
        allowed, remaining, reset = self.limiter.acquire(_token_key(token or ""), bucket)
        if not allowed:
            return _throttled(reset)
        try:
            if route is None:
                raise miss or _ApiError(404, "Not found.")
            if bad_json:
                raise _ApiError(400, "Request body is not valid JSON")
            self._settle()
            status, payload = route.func(self, account, params, query, body, method, path)
        except _ApiError as exc:
            reply = _problem(exc)
        else:
            reply = _Reply(status, payload)
        reply.headers.update({"ratelimit-remaining": str(remaining), "ratelimit-reset": str(reset)})
        return reply

    def _admin(self, method: str, path: str, raw: bytes) -> _Reply:
        """Test-only controls for an emulator in another process (not recorded, no auth)."""
        data = json.loads(raw) if raw else {}
        if method == "POST" and path == "/_emulator/advance":
            return _Reply(payload={"now": self.advance(float(data.get("seconds", 0)))})
        if method == "POST" and path == "/_emulator/faults":
            kind = data.pop("kind", "")
            try:
                self.inject(kind, **data)
            except (TypeError, ValueError) as exc:
                return _problem(_ApiError(400, str(exc)))
            return _Reply(payload={"ok": True})
        if method == "DELETE" and path == "/_emulator/faults":
            self.clear_faults()
            return _Reply(payload={"ok": True})
        if method == "GET" and path == "/_emulator/trainings":
            return _Reply(
                payload=[
                    {
                        "id": t.id,
                        "destination": t.destination,
                        "model": t.model,
                        "version": t.version,
                        "input": t.input,
                        "status": t.status,
                        "created_at": _iso(t.created_at),
                    }
                    for t in self.trainings
                ]
            )
        if method == "GET" and path == "/_emulator/requests":
            return _Reply(
                payload=[
                    {"method": r.method, "path": r.path, "status": r.status, "fault": r.fault}
                    for r in self.requests
                ]
            )
        return _problem(_ApiError(404, "Not found."))

    # -- internals: endpoints (called with the lock held) --

    def _visible_model(self, account: str, owner: str, name: str) -> _Model:
        model = self._models.get((owner, name))
        if model is None or (model.visibility == "private" and model.owner != account):
            raise _ApiError(404, "Not found.")
        return model

    def _page(self, items: list[Any], query: Mapping[str, list[str]], path: str) -> dict[str, Any]:
        """Cursor pagination over `items` (newest first, each with `.seq`)."""
        cursor = (query.get("cursor") or [""])[0]
        page: list[Any]
        if not cursor:
            page = items[:PAGE_SIZE]
        else:
            direction, seq = _decode_cursor(cursor)
            if direction == "o":
                page = [i for i in items if i.seq < seq][:PAGE_SIZE]
            else:
                page = [i for i in items if i.seq > seq][-PAGE_SIZE:]
        nxt = prev = None
        if page and any(i.seq < page[-1].seq for i in items):
            nxt = f"{self.base_url}{path}?cursor={_encode_cursor('o', page[-1].seq)}"
        if page and any(i.seq > page[0].seq for i in items):
            prev = f"{self.base_url}{path}?cursor={_encode_cursor('n', page[0].seq)}"
        return {"next": nxt, "previous": prev, "results": page}

    def _model_json(self, model: _Model) -> dict[str, Any]:
        latest = model.versions[-1] if model.versions else None
        return {
            "url": f"https://replicate.com/{model.owner}/{model.name}",
            "owner": model.owner,
            "name": model.name,
            "description": model.description,
            "visibility": model.visibility,
            "github_url": None,
            "paper_url": None,
            "license_url": None,
            "run_count": model.run_count,
            "cover_image_url": None,
            "default_example": None,
            "is_official": False,
            "latest_version": _version_json(latest) if latest else None,
        }


# ---- endpoints ------------------------------------------------------------------------------

Params = dict[str, str]
Query = Mapping[str, list[str]]


@contextlib.contextmanager
def simulated(token: str) -> Iterator[ReplicateEmulator]:
    """The emulator the CLI tests share: 5 s in the queue, 100 s of training, simulated time
    starting at the real time (the CLI stamps intents with its own clock); on a clean exit, no
    request may have made it fail."""
    with ReplicateEmulator(
        token=token, queue_seconds=5, run_seconds=100, clock=SimClock(time.time())
    ) as emulator:
        yield emulator
        assert emulator.server_errors == []


def _account(emu: ReplicateEmulator, account: str, *_: Any) -> tuple[int, Any]:
    return 200, {
        "type": "organization",
        "username": account,
        "name": account.capitalize(),
        "github_url": f"https://github.com/{account}",
    }


def _secret(emu: ReplicateEmulator, *_: Any) -> tuple[int, Any]:
    return 200, {"key": emu._secret}


def _create_model(
    emu: ReplicateEmulator, account: str, p: Params, q: Query, body: Any, *_: Any
) -> tuple[int, Any]:
    if not isinstance(body, dict):
        raise _ApiError(400, "The request body must be a JSON object")
    missing = [k for k in ("owner", "name", "visibility", "hardware") if not body.get(k)]
    if missing:
        raise _ApiError(400, f"Missing required fields: {', '.join(missing)}")
    if body["visibility"] not in ("public", "private"):
        raise _ApiError(400, "visibility must be one of: public, private")
    if body["owner"] != account:
        raise _ApiError(403, "You do not have permission to create models for this owner")
    key = (body["owner"], body["name"])
    if key in emu._models:
        raise _ApiError(409, "A model with that name and owner already exists.")
    emu._models[key] = _Model(
        body["owner"], body["name"], body["visibility"], body["hardware"], body.get("description")
    )
    return 201, emu._model_json(emu._models[key])


def _get_model(emu: ReplicateEmulator, account: str, p: Params, *_: Any) -> tuple[int, Any]:
    return 200, emu._model_json(emu._visible_model(account, p["owner"], p["name"]))


def _list_versions(
    emu: ReplicateEmulator, account: str, p: Params, q: Query, body: Any, method: str, path: str
) -> tuple[int, Any]:
    model = emu._visible_model(account, p["owner"], p["name"])
    page = emu._page(list(reversed(model.versions)), q, path)
    page["results"] = [_version_json(v) for v in page["results"]]
    return 200, page


def _get_version(emu: ReplicateEmulator, account: str, p: Params, *_: Any) -> tuple[int, Any]:
    model = emu._visible_model(account, p["owner"], p["name"])
    for v in model.versions:
        if v.id == p["version"]:
            return 200, _version_json(v)
    raise _ApiError(404, "Not found.")


def _create_training(
    emu: ReplicateEmulator, account: str, p: Params, q: Query, body: Any, method: str, path: str
) -> tuple[int, Any]:
    model = emu._visible_model(account, p["owner"], p["name"])
    version = next((v for v in model.versions if v.id == p["version"]), None)
    if version is None:
        raise _ApiError(404, "Not found.")
    if not isinstance(body, dict):
        raise _ApiError(400, "The request body must be a JSON object")
    destination = body.get("destination")
    if not isinstance(destination, str) or not destination:
        raise _ApiError(400, "destination is required")
    owner, _, name = destination.partition("/")
    dest = emu._models.get((owner, name))
    if dest is None or dest.owner != account:
        raise _ApiError(404, "The specified training destination does not exist")
    components = (version.openapi_schema.get("components") or {}).get("schemas") or {}
    schema = components.get("TrainingInput") or components.get("Input")
    if schema is None:
        raise _ApiError(400, "This model version does not support training")
    inp = body.get("input", {})
    invalid = _invalid_fields(inp, schema, version.openapi_schema)
    if invalid:
        detail = "".join(f"- {f['field']}: {f['description']}\n" for f in invalid)
        raise _ApiError(422, detail, title="Input validation failed", invalid_fields=invalid)
    fault = emu._take_fault("create", method, path)
    outcome = {"abort": "aborted", "fail": "failed"}.get(fault.kind) if fault else None
    webhook = body.get("webhook")
    if webhook is not None and not (isinstance(webhook, str) and webhook.startswith("http")):
        raise _ApiError(400, "webhook must be an HTTP(S) URL")
    events = body.get("webhook_events_filter")
    allowed = {"start", "output", "logs", "completed"}
    if events is not None and not (isinstance(events, list) and set(events) <= allowed):
        raise _ApiError(400, "webhook_events_filter must list start, output, logs, completed")
    t = emu._new_training(
        account, f"{model.owner}/{model.name}", version.id, destination, inp, "api", outcome
    )
    t.webhook = webhook
    if events is not None:
        t.webhook_events = frozenset(events)
    created = emu._training_json(t, urls="predictions")
    # A fresh training has no started_at/completed_at/metrics/output (the API omits them).
    return 201, created


def _list_trainings(
    emu: ReplicateEmulator, account: str, p: Params, q: Query, body: Any, method: str, path: str
) -> tuple[int, Any]:
    mine = [t for t in reversed(emu._order) if t.account == account]
    page = emu._page(mine, q, path)
    page["results"] = [emu._training_json(t, logs=False) for t in page["results"]]
    return 200, page


def _get_training(emu: ReplicateEmulator, account: str, p: Params, *_: Any) -> tuple[int, Any]:
    t = emu._trainings.get(p["id"])
    if t is None or t.account != account:
        raise _ApiError(404, "Not found.")
    return 200, emu._training_json(t)


def _cancel_training(emu: ReplicateEmulator, account: str, p: Params, *_: Any) -> tuple[int, Any]:
    t = emu._trainings.get(p["id"])
    if t is None or t.account != account:
        raise _ApiError(404, "Not found.")
    if t.status not in TERMINAL:
        now = emu.now()
        if t.started_at is None:
            t.started_at = now
        emu._finish(t, "canceled", now)
    return 200, emu._training_json(t)


# ---- deployments (promotion's Replicate alias) ----------------------------------------------
# GET/PATCH /v1/deployments/{owner}/{name} as the official client's `deployments.get` and
# `deployments.update` call them; a deployment is seeded with `add_deployment`, and every release
# (each PATCH that changes it) is kept in `deployment_releases`.


def _deployment_json(emu: ReplicateEmulator, d: dict[str, Any]) -> dict[str, Any]:
    release = d["releases"][-1]
    return {
        "owner": d["owner"],
        "name": d["name"],
        "current_release": {
            "number": len(d["releases"]),
            "model": d["model"],
            "version": release["version"],
            "created_at": _iso(release["at"]),
            "created_by": {"type": "organization", "username": d["owner"], "name": d["owner"]},
            "configuration": dict(d["configuration"]),
        },
    }


def _deployment(emu: ReplicateEmulator, account: str, p: Params) -> dict[str, Any]:
    d = emu._deployments.get((p["owner"], p["name"]))
    if d is None or d["owner"] != account:
        raise _ApiError(404, "Not found.")
    return d


def _get_deployment(emu: ReplicateEmulator, account: str, p: Params, *_: Any) -> tuple[int, Any]:
    return 200, _deployment_json(emu, _deployment(emu, account, p))


def _update_deployment(
    emu: ReplicateEmulator, account: str, p: Params, q: Query, body: Any, *_: Any
) -> tuple[int, Any]:
    d = _deployment(emu, account, p)
    if not isinstance(body, dict) or set(body) - {
        "version",
        "hardware",
        "min_instances",
        "max_instances",
    }:
        raise _ApiError(
            400,
            "The request body must be an object of version, hardware, min_instances, max_instances",
        )
    version = body.get("version")
    if version is not None:
        owner, name = d["model"].split("/", 1)
        if version not in emu.versions(f"{owner}/{name}"):
            raise _ApiError(400, f"Version {version} is not a version of {d['model']}")
    configuration = {**d["configuration"], **{k: body[k] for k in body if k != "version"}}
    current = d["releases"][-1]
    if (version or current["version"], configuration) != (current["version"], d["configuration"]):
        d["configuration"] = configuration
        d["releases"].append({"version": version or current["version"], "at": emu.now()})
    return 200, _deployment_json(emu, d)


def _file_json(emu: ReplicateEmulator, f: _File) -> dict[str, Any]:
    return {
        "id": f.id,
        "name": f.name,
        "content_type": f.content_type,
        "size": f.size,
        "etag": f.md5,
        "checksums": {"sha256": f.sha256, "md5": f.md5},
        "metadata": copy.deepcopy(f.metadata),
        "created_at": _iso(f.created_at),
        "expires_at": _iso(f.expires_at),
        "urls": {"get": f"{emu.base_url}/v1/files/{f.id}"},
    }


def _create_file(
    emu: ReplicateEmulator, account: str, p: Params, q: Query, body: Any, *_: Any
) -> tuple[int, Any]:
    parts = body.get(_MULTIPART) if isinstance(body, dict) else None
    if not isinstance(parts, dict) or "content" not in parts:
        raise _ApiError(400, "The request must be multipart/form-data with a content part")
    content = parts["content"]
    data: bytes = content["data"]
    if len(data) >= FILE_LIMIT:
        raise _ApiError(413, "Files must be less than 100MB in size")
    filename = (parts.get("filename") or {}).get("data", b"").decode() or content["filename"]
    if not filename or len(filename.encode()) > 255:
        raise _ApiError(400, "filename is required and at most 255 bytes")
    metadata: Any = {}
    if "metadata" in parts:
        try:
            metadata = json.loads(parts["metadata"]["data"])
        except ValueError:
            raise _ApiError(400, "metadata must be valid JSON") from None
        if not isinstance(metadata, dict):
            raise _ApiError(400, "metadata must be a JSON object")
    kind = (parts.get("type") or {}).get("data", b"").decode() or content["type"]
    while True:
        fid = emu._new_id()
        if fid not in emu._contents:
            break
    now = emu.now()
    f = _File(
        fid,
        emu._next_seq(),
        account,
        filename,
        kind or "application/octet-stream",
        hashlib.sha256(data).hexdigest(),
        hashlib.md5(data, usedforsecurity=False).hexdigest(),
        len(data),
        metadata,
        now,
        now + emu.file_ttl,
    )
    emu._files[fid] = f
    emu._contents[fid] = data
    emu._uploads.append((f, False))
    return 201, _file_json(emu, f)


def _list_files(
    emu: ReplicateEmulator, account: str, p: Params, q: Query, body: Any, method: str, path: str
) -> tuple[int, Any]:
    mine = sorted((f for f in emu._files.values() if f.account == account), key=lambda f: -f.seq)
    page = emu._page(mine, q, path)
    page["results"] = [_file_json(emu, f) for f in page["results"]]
    return 200, page


def _get_file(emu: ReplicateEmulator, account: str, p: Params, *_: Any) -> tuple[int, Any]:
    f = emu._files.get(p["id"])
    if f is None or f.account != account:
        raise _ApiError(404, "File not found")
    return 200, _file_json(emu, f)


def _delete_file(emu: ReplicateEmulator, account: str, p: Params, *_: Any) -> tuple[int, Any]:
    f = emu._files.get(p["id"])
    if f is None or f.account != account:
        raise _ApiError(404, "File not found")
    del emu._files[p["id"]]
    return 204, None


@dataclass(frozen=True)
class _Route:
    method: str
    pattern: re.Pattern[str]
    func: Callable[..., tuple[int, Any]]
    create: bool = False


_M = r"/v1/models/(?P<owner>[^/]+)/(?P<name>[^/]+)"
_ROUTES = [
    _Route("GET", re.compile(r"/v1/account"), _account),
    _Route("GET", re.compile(r"/v1/webhooks/default/secret"), _secret),
    _Route("POST", re.compile(r"/v1/models"), _create_model),
    _Route("GET", re.compile(_M), _get_model),
    _Route("GET", re.compile(_M + r"/versions"), _list_versions),
    _Route("GET", re.compile(_M + r"/versions/(?P<version>[^/]+)"), _get_version),
    _Route(
        "POST",
        re.compile(_M + r"/versions/(?P<version>[^/]+)/trainings"),
        _create_training,
        create=True,
    ),
    _Route("GET", re.compile(r"/v1/trainings"), _list_trainings),
    _Route("GET", re.compile(r"/v1/trainings/(?P<id>[^/]+)"), _get_training),
    _Route("POST", re.compile(r"/v1/trainings/(?P<id>[^/]+)/cancel"), _cancel_training),
    _Route("GET", re.compile(r"/v1/deployments/(?P<owner>[^/]+)/(?P<name>[^/]+)"), _get_deployment),
    _Route(
        "PATCH", re.compile(r"/v1/deployments/(?P<owner>[^/]+)/(?P<name>[^/]+)"), _update_deployment
    ),
    _Route("POST", re.compile(r"/v1/files"), _create_file),
    _Route("GET", re.compile(r"/v1/files"), _list_files),
    _Route("GET", re.compile(r"/v1/files/(?P<id>[^/]+)"), _get_file),
    _Route("DELETE", re.compile(r"/v1/files/(?P<id>[^/]+)"), _delete_file),
]


def _route(method: str, path: str) -> tuple[_Route | None, dict[str, str], _ApiError | None]:
    allowed = []
    for route in _ROUTES:
        m = route.pattern.fullmatch(path)
        if m is None:
            continue
        if route.method == method:
            return route, m.groupdict(), None
        allowed.append(route.method)
    if allowed:
        return None, {}, _ApiError(405, f'Method "{method}" not allowed.')
    return None, {}, _ApiError(404, "Not found.")


def _stage(fault: Fault) -> str:
    """When a fault applies: before the request is handled, at training creation, or after."""
    if fault.kind == "error":
        return "post" if fault.after else "pre"
    if fault.kind in ("rate_limit", "drop"):
        return "pre"
    if fault.kind in ("abort", "fail"):
        return "create"
    return "post"  # lost_response, delay, no_id


# ---- helpers --------------------------------------------------------------------------------

_STATUS_DETAIL = {
    500: "Internal server error",
    502: "Bad gateway",
    503: "Service unavailable",
    504: "Gateway timeout",
}


_MULTIPART = "__multipart__"


def _multipart(content_type: str, raw: bytes) -> dict[str, Any]:
    """A multipart/form-data body as {"__multipart__": {name: {filename, type, data}}}; raises
    ValueError when it is not one."""
    from email.parser import BytesParser
    from email.policy import HTTP

    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    message = BytesParser(policy=HTTP).parsebytes(head + raw)
    if not message.is_multipart():
        raise ValueError("not multipart")
    parts: dict[str, Any] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            raise ValueError("a part without a name")
        data = part.get_payload(decode=True)
        parts[name] = {
            "filename": part.get_filename() or "",
            "type": part.get_content_type() if part.get("Content-Type") else "",
            "data": data if isinstance(data, bytes) else b"",
        }
    return {_MULTIPART: parts}


def _recorded_body(body: Any) -> Any:
    """What a request records of its body: an upload's parts by name and size, never content."""
    if isinstance(body, dict) and _MULTIPART in body:
        return {
            name: {"filename": part["filename"], "type": part["type"], "size": len(part["data"])}
            for name, part in body[_MULTIPART].items()
        }
    return body


def _problem(exc: _ApiError, fault: str = "") -> _Reply:
    return _Reply(exc.status, exc.payload, fault=fault)


def _throttled(retry_after: int, fault: str = "") -> _Reply:
    """Replicate's 429: the reset in the body (`~30s`-style detail) and in `ratelimit-reset`,
    no `Retry-After` (not promised; shared/ref/README.md, "Checked against the real clients",
    "Replicate 429"; docs: replicate.com/docs/topics/predictions/rate-limits)."""
    return _Reply(
        429,
        {"detail": f"Request was throttled. Your rate limit resets in ~{retry_after}s."},
        headers={
            "ratelimit-remaining": "0",
            "ratelimit-reset": str(retry_after),
        },
        fault=fault,
    )


def _bearer(value: str) -> str | None:
    scheme, _, token = value.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _token_key(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()[:16]


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _encode_cursor(direction: str, seq: int) -> str:
    return base64.urlsafe_b64encode(f"{direction}:{seq}".encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[str, int]:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        direction, seq = text.split(":")
        if direction not in ("o", "n"):
            raise ValueError(direction)
        return direction, int(seq)
    except (ValueError, UnicodeDecodeError) as exc:
        raise _ApiError(400, "Invalid cursor") from exc


def _holds(value: Any, marker: str) -> bool:
    if isinstance(value, str):
        return marker in value
    if isinstance(value, dict):
        return any(_holds(v, marker) for v in value.values())
    if isinstance(value, list):
        return any(_holds(v, marker) for v in value)
    return False


def _version_json(v: _Version) -> dict[str, Any]:
    return {
        "id": v.id,
        "created_at": _iso(v.created_at),
        "cog_version": v.cog_version,
        "openapi_schema": copy.deepcopy(v.openapi_schema),
    }


def _invalid_fields(
    inp: Any, schema: Mapping[str, Any], root: Mapping[str, Any]
) -> list[dict[str, str]]:
    """Replicate's 422 `invalid_fields` for `inp` against a cog `TrainingInput` schema."""
    rooted = {**schema, "components": root.get("components", {})}
    validator = jsonschema.Draft202012Validator(rooted)
    found = []
    for err in sorted(validator.iter_errors(inp), key=lambda e: list(map(str, e.absolute_path))):
        where = ".".join(["input", *map(str, err.absolute_path)])
        if err.validator == "required":
            missing = re.match(r"'([^']+)'", err.message)
            where = f"input.{missing.group(1)}" if missing else where
            text = "Field required"
        elif err.validator == "minimum":
            text = f"Must be greater than or equal to {err.validator_value}"
        elif err.validator == "maximum":
            text = f"Must be less than or equal to {err.validator_value}"
        elif err.validator == "type":
            given = type(err.instance).__name__
            text = f"Invalid type. Expected: {err.validator_value}, given: {given}"
        elif err.validator == "enum":
            text = f"Must be one of: {', '.join(map(str, err.validator_value))}"
        else:
            text = err.message
        found.append({"type": str(err.validator), "field": where, "description": text})
    return found


def _cog_schema(
    training_input: Mapping[str, Any] | None, extra: Mapping[str, Any] | None
) -> dict[str, Any]:
    """An `openapi_schema` shaped as cog writes it; trainers carry TrainingInput/Output."""
    schemas: dict[str, Any] = {
        "Input": {
            "type": "object",
            "title": "Input",
            "required": ["prompt"],
            "properties": {
                "prompt": {"type": "string", "title": "Prompt", "x-order": 0},
                "lora_scale": {
                    "type": "number",
                    "title": "Lora Scale",
                    "default": 1,
                    "minimum": -1,
                    "maximum": 3,
                    "x-order": 1,
                },
            },
        },
        "Output": {
            "type": "array",
            "title": "Output",
            "items": {"type": "string", "format": "uri"},
        },
        "Status": {
            "enum": ["starting", "processing", "succeeded", "canceled", "failed"],
            "type": "string",
            "title": "Status",
        },
    }
    if training_input is not None:
        schemas["TrainingInput"] = copy.deepcopy(dict(training_input))
        schemas["TrainingOutput"] = {
            "type": "object",
            "title": "TrainingOutput",
            "required": ["weights"],
            "properties": {"weights": {"type": "string", "title": "Weights", "format": "uri"}},
        }
    schemas.update(copy.deepcopy(dict(extra or {})))
    return {
        "openapi": "3.0.2",
        "info": {"title": "Cog", "version": "0.1.0"},
        "paths": {},
        "components": {"schemas": schemas},
    }


# ---- seeded trainers ------------------------------------------------------------------------


def _seed_trainers(emu: ReplicateEmulator) -> None:
    """The trainers of `tests/fixtures/replicate-trainers.json`, oldest version first."""
    data = json.loads(TRAINERS_FIXTURE.read_text())
    for model in data["models"]:
        emu.add_model(
            model["owner"],
            model["name"],
            hardware=model["hardware"],
            description=model.get("description"),
        )
        for version in model["versions"]:
            schemas = dict(version["schemas"])
            emu.add_version(
                model["owner"],
                model["name"],
                version_id=version["id"],
                training_input=schemas.pop("TrainingInput"),
                extra_schemas=schemas,
            )


# ---- the HTTP server ------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self, address: tuple[str, int], handler: type, emulator: ReplicateEmulator
    ) -> None:
        self.emulator = emulator
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._conns_lock:
            self._conns.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._conns_lock:
            self._conns.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        with self._conns_lock:
            conns = list(self._conns)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, ConnectionError | TimeoutError | OSError):
            return
        text = traceback.format_exc()
        self.emulator.server_errors.append(text)
        sys.stderr.write(text)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ReplicateEmulator/1.0"
    server: _Server

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in two writes: without this, Nagle + delayed ACK add 40 ms.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._exchange("GET")

    def do_POST(self) -> None:
        self._exchange("POST")

    def do_DELETE(self) -> None:
        self._exchange("DELETE")

    def do_PATCH(self) -> None:
        self._exchange("PATCH")

    def do_PUT(self) -> None:
        self._exchange("PUT")

    def _exchange(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        reply = self.server.emulator.handle(method, self.path, self.headers, raw)
        self.server.emulator._flush_webhooks()  # a request may have moved a training on
        if reply.drop:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        if reply.delay:
            time.sleep(reply.delay)
        body = reply.raw if reply.raw is not None else json.dumps(reply.payload).encode()
        if reply.status == 204:
            body = b""  # No Content: a body would be read as the next response
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(body)))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            self.close_connection = True


# ---- OpenAPI response validation (for tests) ------------------------------------------------

PROBLEM_SCHEMA = {
    "type": "object",
    "required": ["detail"],
    "properties": {
        "detail": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
    },
}


class OpenAPIResponses:
    """Validates recorded emulator responses against the response schemas of the OpenAPI
    description in `tests/fixtures` (local `$ref`s inlined, OpenAPI `nullable` honoured)."""

    def __init__(self, path: Path = OPENAPI_FIXTURE) -> None:
        self.doc = json.loads(path.read_text())
        prefix = urlsplit(self.doc["servers"][0]["url"]).path  # "/v1"
        self._ops: list[tuple[str, re.Pattern[str], dict[str, Any]]] = []
        for template, ops in self.doc["paths"].items():
            regex = re.compile(prefix + re.sub(r"\{[^}]+\}", "[^/]+", template))
            for method, op in ops.items():
                if isinstance(op, dict) and "responses" in op:
                    self._ops.append((method.upper(), regex, op["responses"]))

    def schema_for(self, method: str, path: str, status: int) -> dict[str, Any] | None:
        for op_method, regex, responses in self._ops:
            if op_method == method and regex.fullmatch(path):
                response = responses.get(str(status))
                if response is None:
                    return None
                content = response.get("content", {}).get("application/json", {})
                return _openapi_to_jsonschema(content.get("schema", {}), self.doc)
        return None

    def errors(self, recorded: Iterable[RecordedRequest]) -> list[str]:
        """One message per response that does not match its schema (empty: all good)."""
        problems = []
        for r in recorded:
            if r.status == 0 or (r.response is None and r.status < 400):
                continue
            if r.status >= 400:
                schema: dict[str, Any] | None = PROBLEM_SCHEMA
                if r.content_type != "application/problem+json":
                    problems.append(f"{r.method} {r.path} -> {r.status}: {r.content_type}")
            else:
                schema = self.schema_for(r.method, r.path, r.status)
                if schema is None:
                    problems.append(f"{r.method} {r.path} -> {r.status}: not in the description")
                    continue
            for err in jsonschema.Draft202012Validator(schema).iter_errors(r.response):
                where = "/".join(map(str, err.absolute_path))
                problems.append(f"{r.method} {r.path} -> {r.status}: {where}: {err.message}")
        return problems


def _openapi_to_jsonschema(node: Any, doc: Mapping[str, Any], depth: int = 0) -> Any:
    if depth > 50:
        raise ValueError("$ref nesting too deep")
    if isinstance(node, list):
        return [_openapi_to_jsonschema(n, doc, depth + 1) for n in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target: Any = doc
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        return _openapi_to_jsonschema(target, doc, depth + 1)
    out = {
        k: _openapi_to_jsonschema(v, doc, depth + 1)
        for k, v in node.items()
        if k not in ("nullable", "example")
    }
    if node.get("nullable") and isinstance(node.get("type"), str):
        out["type"] = [node["type"], "null"]
    return out


# ---- standalone ------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--token", default=DEFAULT_TOKEN)
    parser.add_argument("--account", default=DEFAULT_ACCOUNT)
    parser.add_argument(
        "--speed",
        type=float,
        default=1.0,
        help="simulated seconds per real second (0: only /_emulator/advance)",
    )
    parser.add_argument("--queue-seconds", type=float, default=5.0)
    parser.add_argument("--run-seconds", type=float, default=60.0)
    parser.add_argument("--create-limit", type=int, default=600, help="creates per minute")
    parser.add_argument("--limit", type=int, default=3000, help="other requests per minute")
    args = parser.parse_args(argv)
    emu = ReplicateEmulator(
        token=args.token,
        account=args.account,
        host=args.host,
        port=args.port,
        queue_seconds=args.queue_seconds,
        run_seconds=args.run_seconds,
        clock=SimClock(time.time(), speed=args.speed),
        rate_limits={"create": args.create_limit, "default": args.limit},
    )
    with emu:
        print(f"Replicate emulator on {emu.base_url} (account {args.account})", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
