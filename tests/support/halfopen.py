"""Half-open connections, as anyone on the internet can open them against `trainops serve`'s
public webhook paths (issue 26, finding 5): connect, send part of a request, then hang up or
hang. Used by tests/security/test_serve_internet.py (a modest count) and
benchmarks/serve_connections.py (the figures)."""

from __future__ import annotations

import contextlib
import os
import selectors
import socket
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

PATH = b"/webhooks/replicate"
# What each connection sends before it hangs up or hangs, cycling through these.
PARTIALS: tuple[tuple[str, bytes], ...] = (
    ("request-line", b"POS"),
    ("headers", b"POST " + PATH + b" HTTP/1.1\r\nHost: serve\r\nwebhook-id: msg_"),
    (
        "body",
        b"POST " + PATH + b" HTTP/1.1\r\nHost: serve\r\nContent-Type: application/json\r\n"
        b"Content-Length: 65536\r\n\r\n" + b'{"id": "' + b"x" * 200,
    ),
)


@dataclass
class Sweep:
    """What a sweep did: connections opened by kind, those refused at connect, and the sockets
    still held open by this side (the hanging ones) to be checked and closed by the caller."""

    opened: Counter[str] = field(default_factory=Counter)
    refused: int = 0
    hanging: list[socket.socket] = field(default_factory=list)

    def dropped_by_server(self, within: float) -> int:
        """How many hanging sockets the server has closed, waiting at most `within` seconds
        (a bound on this loop, not a timing assertion)."""
        closed, waiting = 0, len(self.hanging)
        deadline = time.monotonic() + within
        with selectors.DefaultSelector() as sel:
            for sock in self.hanging:
                sel.register(sock, selectors.EVENT_READ)
            while waiting and time.monotonic() < deadline:
                for key, _ in sel.select(0.5):
                    sock = key.fileobj
                    assert isinstance(sock, socket.socket)
                    try:
                        data = sock.recv(65536)
                    except OSError:
                        data = b""
                    if not data:  # EOF or reset: whatever the server sent came before it
                        closed += 1
                        waiting -= 1
                        sel.unregister(sock)
        return closed

    def close(self) -> None:
        for sock in self.hanging:
            sock.close()
        self.hanging.clear()


def sweep(
    port: int,
    count: int,
    *,
    batch: int = 200,
    hang_every: int = 5,
    on_batch: Callable[[], None] | None = None,
) -> Sweep:
    """Open `count` connections to 127.0.0.1:port in batches of `batch`; every `hang_every`-th
    one is kept open (hangs), the others are closed after their partial request, some with a
    reset (SO_LINGER 0), some after a half-close (shutdown of the write side)."""
    done = Sweep()
    n = 0
    while n < count:
        closing: list[socket.socket] = []
        for _ in range(min(batch, count - n)):
            kind, data = PARTIALS[n % len(PARTIALS)]
            try:
                sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            except OSError:
                done.refused += 1
                n += 1
                continue
            try:
                sock.sendall(data)
            except OSError:  # dropped already (the cap): counted as refused
                sock.close()
                done.refused += 1
                n += 1
                continue
            if n % hang_every == 0:
                done.hanging.append(sock)
                done.opened[f"{kind}/hang"] += 1
            else:
                closing.append(sock)
                done.opened[f"{kind}/close"] += 1
            n += 1
        for i, sock in enumerate(closing):
            if i % 3 == 1:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_WR)  # half-close: the server sees EOF first
            sock.close()
        if on_batch is not None:
            on_batch()
    return done


def descriptors(pid: int) -> int:
    """Open file descriptors of process `pid` (Linux /proc)."""
    return len(os.listdir(f"/proc/{pid}/fd"))


def close_wait(port: int) -> int:
    """Sockets of the server's port left in CLOSE-WAIT (the peer hung up, the server did not)."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            local, state = parts[1], parts[3]
            if state == "08" and int(local.rsplit(":", 1)[1], 16) == port:
                count += 1
    return count
