"""A counting HTTP proxy on 127.0.0.1 in front of a real service (the Ray head's job API).

Tests and benchmarks point the official client at it (`RAY_ADDRESS`), so calls are counted on
the wire — what the cluster was asked — not by patching the client. It can also lose the answer
of the next matching request: the request reaches the service and takes effect, then the
connection is dropped before the client reads a byte (a crash or a network cut after sending).
"""

from __future__ import annotations

import http.client
import threading
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import ClassVar
from urllib.parse import urlsplit

from tests.emulators._loopback import LoopbackEmulator

_HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "upgrade"}


class _Handler(BaseHTTPRequestHandler):
    emu: CountingProxy
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def _forward(self) -> None:
        proxy = self.emu
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        path = urlsplit(self.path).path
        proxy.record(self.command, path)
        upstream = http.client.HTTPConnection(proxy.upstream_host, proxy.upstream_port, timeout=120)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP | {"host"}}
        try:
            upstream.request(self.command, self.path, body=body, headers=headers)
            resp = upstream.getresponse()
            data = resp.read()
        finally:
            upstream.close()
        if proxy.take_loss(self.command, path):
            self.close_connection = True
            return  # the service acted; the client never hears of it
        self.send_response(resp.status)
        for key, value in resp.getheaders():
            if key.lower() not in _HOP | {"content-length"}:
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _forward


@dataclass
class CountingProxy(LoopbackEmulator):
    upstream: str  # http://host:port
    host: str = "127.0.0.1"
    port: int = 0
    calls: Counter[tuple[str, str]] = field(default_factory=Counter)
    _losses: list[tuple[str, str]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    handler: ClassVar[type[BaseHTTPRequestHandler]] = _Handler
    thread_name: ClassVar[str] = "counting-proxy"

    def __post_init__(self) -> None:
        parts = urlsplit(self.upstream)
        self.upstream_host = parts.hostname or "127.0.0.1"
        self.upstream_port = parts.port or 80

    def record(self, method: str, path: str) -> None:
        with self._lock:
            self.calls[(method, path)] += 1

    def total(self) -> int:
        with self._lock:
            return sum(self.calls.values())

    def reset(self) -> None:
        with self._lock:
            self.calls.clear()

    def lose_next(self, method: str, path: str) -> None:
        """Drop the answer of the next `method` request to exactly `path`."""
        with self._lock:
            self._losses.append((method, path))

    def take_loss(self, method: str, path: str) -> bool:
        with self._lock:
            if (method, path) in self._losses:
                self._losses.remove((method, path))
                return True
            return False
