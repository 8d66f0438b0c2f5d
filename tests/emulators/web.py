"""A plain web server on 127.0.0.1 for remote inputs (DESIGN §18): objects served at paths with
ETag, Content-Length and Last-Modified, redirects, slow answers; every request recorded (method,
path, headers) so tests see what reached it and what was sent.

    with WebServer() as web:
        web.put("/portraits.zip", b"...")
        url = web.url + "/portraits.zip"
"""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler
from typing import Any, ClassVar

from tests.emulators._loopback import LoopbackEmulator


@dataclass(frozen=True)
class WebRequest:
    method: str
    path: str
    headers: dict[str, str] = field(repr=False)  # lowercased names


@dataclass
class _Object:
    content: bytes
    modified: float


class WebServer(LoopbackEmulator):
    thread_name = "web-emulator"

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host, self.port = host, port
        self.objects: dict[str, _Object] = {}
        self.redirects: dict[str, str] = {}
        self.delay = 0.0  # real seconds before each answer
        self.requests: list[WebRequest] = []
        self._lock = threading.Lock()
        self._clock = 1_767_225_600.0

    def put(self, path: str, content: bytes) -> None:
        """Serve `content` at `path`: a new object (new ETag, later Last-Modified)."""
        with self._lock:
            self._clock += 60
            self.objects[path] = _Object(content, self._clock)

    def redirect(self, path: str, location: str) -> None:
        self.redirects[path] = location

    def count(self, method: str | None = None, path: str | None = None) -> int:
        with self._lock:
            return sum(
                1
                for r in self.requests
                if (method is None or r.method == method) and (path is None or r.path == path)
            )

    def _answer(self, handler: BaseHTTPRequestHandler, body: bool) -> None:
        path = handler.path.split("?", 1)[0]
        with self._lock:
            self.requests.append(
                WebRequest(
                    handler.command, path, {k.lower(): v for k, v in handler.headers.items()}
                )
            )
            obj = self.objects.get(path)
            location = self.redirects.get(path)
        if self.delay:
            time.sleep(self.delay)
        if location is not None:
            handler.send_response(302)
            handler.send_header("Location", location)
            handler.send_header("Content-Length", "0")
            handler.end_headers()
            return
        if obj is None:
            handler.send_response(404)
            handler.send_header("Content-Length", "0")
            handler.end_headers()
            return
        handler.send_response(200)
        handler.send_header("Content-Type", "application/zip")
        handler.send_header("Content-Length", str(len(obj.content)))
        etag = hashlib.md5(obj.content, usedforsecurity=False).hexdigest()
        handler.send_header("ETag", f'"{etag}"')
        handler.send_header("Last-Modified", formatdate(obj.modified, usegmt=True))
        handler.end_headers()
        if body:
            handler.wfile.write(obj.content)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    emu: ClassVar[Any]

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_HEAD(self) -> None:
        self.emu._answer(self, body=False)

    def do_GET(self) -> None:
        self.emu._answer(self, body=True)


WebServer.handler = _Handler
