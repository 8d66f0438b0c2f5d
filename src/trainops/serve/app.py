"""`trainops serve`: the Starlette app (webhooks, /healthz, /metrics, the status page and its
JSON) served by uvicorn in a thread, while the main thread runs the controller's passes and
turns SIGTERM/SIGINT into "finish the pass in flight, then exit 0".
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import standardwebhooks  # noqa: F401  (imported here: a missing extra fails before serving)
import uvicorn
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from trainops.errors import UsageError
from trainops.serve.controller import Controller
from trainops.serve.replay import ReplayMemory
from trainops.serve.status_page import render
from trainops.serve.webhooks import GitHubVerifier, ReplicateVerifier, Verdict, is_push_to

MAX_BODY = 1 << 20  # webhook bodies over 1 MiB are refused unread
TOKEN_ENV = "TRAINOPS_SERVE_TOKEN"
GITHUB_SECRET_ENV = "TRAINOPS_GITHUB_WEBHOOK_SECRET"


def create_app(
    controller: Controller,
    *,
    replicate: ReplicateVerifier | None,
    github: GitHubVerifier | None,
    token: str | None,
) -> Starlette:
    metrics = controller.metrics

    def authorized(request: Request) -> bool:
        """With a token, every page needs it, whatever the peer's address: a reverse proxy on
        the same host makes every request loopback. Without one (serve listens on loopback
        only), the page is this machine's, asked for by a loopback name: a web page that
        rebinds its own DNS name to 127.0.0.1 cannot read it from a browser here."""
        if token is None:
            return _loopback_host(request.headers.get("host", ""))
        given = request.headers.get("authorization", "")
        return hmac.compare_digest(given.encode(), f"Bearer {token}".encode())

    def denied() -> Response:
        if token is None:
            return PlainTextResponse(
                "not a loopback Host: set TRAINOPS_SERVE_TOKEN to serve other names\n", 403
            )
        return PlainTextResponse(
            "a bearer token is required\n", 401, {"WWW-Authenticate": "Bearer"}
        )

    async def healthz(request: Request) -> Response:
        return PlainTextResponse("ok\n")

    async def metrics_endpoint(request: Request) -> Response:
        if not authorized(request):
            return denied()
        body, content_type = metrics.exposition()
        return Response(body, headers={"Content-Type": content_type})

    async def index(request: Request) -> Response:
        if not authorized(request):
            return denied()
        view = controller.view
        if view is None:
            return PlainTextResponse("the first pass has not finished yet\n", 503)
        return HTMLResponse(render(view))

    async def api_status(request: Request) -> Response:
        if not authorized(request):
            return denied()
        view = controller.view
        if view is None:
            return JSONResponse({"detail": "the first pass has not finished yet"}, 503)
        return JSONResponse(dict(view.doc))

    async def replicate_hook(request: Request) -> Response:
        if replicate is None:
            return JSONResponse({"detail": "Replicate webhooks are not configured"}, 404)
        body = await _body(request)
        verdict = body if isinstance(body, Verdict) else replicate.verify(body, request.headers)
        return _answer("replicate", verdict, "replicate webhook")

    async def github_hook(request: Request) -> Response:
        if github is None:
            return JSONResponse({"detail": "GitHub webhooks are not configured"}, 404)
        body = await _body(request)
        verdict = body if isinstance(body, Verdict) else github.verify(body, request.headers)
        if verdict.ok and isinstance(body, bytes):
            event = request.headers.get("x-github-event", "")
            if not is_push_to(event, body, controller.branch):
                metrics.webhooks.labels("github", "ignored").inc()
                return JSONResponse({"detail": "acknowledged; nothing to do"}, 202)
        return _answer("github", verdict, "push to the default branch")

    def _answer(source: str, verdict: Verdict, why: str) -> Response:
        outcome = "accepted" if verdict.ok else "repeat" if verdict.status < 300 else None
        metrics.webhooks.labels(source, outcome or f"refused-{verdict.status}").inc()
        if verdict.ok:
            controller.request(why)
        return JSONResponse({"detail": verdict.reason}, verdict.status)

    return Starlette(
        routes=[
            Route("/", index),
            Route("/api/status", api_status),
            Route("/healthz", healthz),
            Route("/metrics", metrics_endpoint),
            Route("/webhooks/replicate", replicate_hook, methods=["POST"]),
            Route("/webhooks/github", github_hook, methods=["POST"]),
        ]
    )


async def _body(request: Request) -> bytes | Verdict:
    """The request's body, or the refusal: 413 only for a body over `MAX_BODY` (declared or
    counted), 400 for one the client cut off (it closed, or its body deadline dropped it,
    serve/http.py) before its Content-Length: a short body is not a large one."""
    too_large = Verdict(False, 413, "body too large")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY:
        return too_large
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_BODY:
                return too_large
            chunks.append(chunk)
    except ClientDisconnect:
        return Verdict(False, 400, "request body cut off before its end")
    return b"".join(chunks)


def parse_listen(listen: str) -> tuple[str, int]:
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit() or not host or int(port) > 65535:
        raise UsageError(f"--listen {listen!r} is not HOST:PORT", "e.g. --listen 127.0.0.1:8080")
    return host.strip("[]"), int(port)


def _loopback_host(header: str) -> bool:
    """Whether a Host header names this machine's loopback: localhost, 127.0.0.0/8, [::1]."""
    name = header.strip().lower()
    if name.startswith("["):
        name = name[1 : name.find("]")] if "]" in name else ""
    else:
        name = name.rpartition(":")[0] if ":" in name else name
    return is_loopback(name)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(
    root: Path,
    *,
    listen: str,
    interval: float,
    github: bool,
    branch: str | None,
    log: Callable[[str], None],
) -> int:
    """Run until SIGTERM/SIGINT; 0 after the pass in flight has finished."""
    from trainops.workspace import Workspace

    host, port = parse_listen(listen)
    token = os.environ.get(TOKEN_ENV) or None
    if not is_loopback(host) and token is None:
        raise UsageError(
            f"--listen {listen} is off loopback: the status page and API need {TOKEN_ENV}",
            f"export {TOKEN_ENV} (clients send 'Authorization: Bearer <it>'), or listen on "
            "127.0.0.1 behind a reverse proxy",
        )
    public = os.environ.get("TRAINOPS_PUBLIC_URL", "")
    if public and not public.startswith(("http://", "https://")):
        raise UsageError(
            f"TRAINOPS_PUBLIC_URL {public!r} is not an http(s) URL",
            "set it to where Replicate can reach this server, e.g. https://trainops.example.com",
        )
    from trainops.serve.controller import fetch
    from trainops.workspace import find_root

    controller = Controller(
        find_root(root), interval=interval, github=github, branch=branch, log=log
    )
    # The configuration (which variable holds the Replicate token) of the commit served, never
    # of the working tree.
    fetch(controller.root, controller.remote, controller.branch)
    ws = Workspace.open(controller.root, ref=controller.ref)
    from trainops.serve.replay import memory_of

    memory = memory_of(controller.root)  # both kinds, kept with the clone across restarts
    replicate = _replicate_verifier(ws.config.providers.replicate.token_env, log, memory)
    gh_secret = os.environ.get(GITHUB_SECRET_ENV, "")
    gh = GitHubVerifier(gh_secret, memory) if gh_secret else None
    if gh is None:
        log(f"GitHub webhooks are off ({GITHUB_SECRET_ENV} is not set)")
    # The token, when set, is asked for from every address (DESIGN §13b).
    app = create_app(controller, replicate=replicate, github=gh, token=token)
    from trainops.serve.http import BACKLOG, KEEP_ALIVE, GuardedH11

    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="off",
        http=GuardedH11,  # header/body deadlines and the connection cap (serve/http.py)
        ws="none",  # no route upgrades; an upgrade must not leave the guarded protocol
        timeout_keep_alive=KEEP_ALIVE,
        backlog=BACKLOG,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="trainops-http", daemon=True)
    thread.start()  # not the main thread: uvicorn leaves the signals to us
    while not server.started and thread.is_alive():
        time.sleep(0.05)
    if not server.started:
        raise UsageError(f"could not listen on {listen}", "is the port already in use?")
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: _stop(controller, log))
    log(f"serving {controller.ref} on http://{host}:{port} every {interval:g}s")
    controller.run()
    server.should_exit = True
    thread.join(10)
    log("stopped")
    return 0


def _stop(controller: Controller, log: Callable[[str], None]) -> None:
    if not controller.stopping:
        log("stopping after the pass in flight")
    controller.stop()


def _replicate_verifier(
    token_env: str, log: Callable[[str], None], memory: ReplayMemory
) -> ReplicateVerifier | None:
    from trainops.serve.webhooks import replicate_secret

    if not (os.environ.get("TRAINOPS_REPLICATE_WEBHOOK_SECRET") or os.environ.get(token_env)):
        log("Replicate webhooks are off (no signing secret and no token to ask for it)")
        return None
    return ReplicateVerifier(replicate_secret(os.environ, token_env), memory=memory)
