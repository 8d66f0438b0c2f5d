"""The HTTP connection limits of `trainops serve` (DESIGN §13b): its webhook paths are public, so
a connection that never finishes its request must not hold a descriptor for long.

uvicorn's h11 protocol (the one installed without httptools; pinned here either way) arms a
timer only once a response has been sent (`timeout_keep_alive`), and `limit_concurrency` is
consulted only when a request's headers are complete: a client that sends half a request line,
half its headers or half its body is held for good, and any number of them can be. This subclass,
given to uvicorn through its `http=` protocol-class setting, adds what the server lacks:

- a header deadline: the request line and headers must arrive within `HEADER_TIMEOUT` of the
  connection being opened (or of the previous response): trickling bytes does not extend it;
- a body deadline: the body must be complete within `BODY_TIMEOUT` of its headers; a peer that
  half-closes before its body is complete gets a 400 (a cut-off body is not a large one);
- a cap of `MAX_CONNECTIONS` open connections: past it, the connection that has waited longest
  for its request is dropped first (a fresh client sending a whole request at once is never the
  one refused while slow ones hold the cap); only when every connection is a request being
  answered is the newcomer dropped.

A dropped connection is aborted (RST, no lingering), so its descriptor is released at once. The
listen `BACKLOG` (uvicorn's `backlog` setting) bounds how many are accepted before the cap sees
them.
"""

from __future__ import annotations

import asyncio
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

HEADER_TIMEOUT = 5.0  # seconds for the request line and headers (a webhook's fit in one packet)
BODY_TIMEOUT = 10.0  # seconds for a body of at most 1 MiB (app.MAX_BODY): >= 100 KiB/s
KEEP_ALIVE = 5  # seconds an idle keep-alive connection is kept (uvicorn's own timer)
MAX_CONNECTIONS = 64  # open connections; a burst of Replicate webhooks is answered in ms each
# The listen queue, and with it how many connections asyncio accepts in one go before any of them
# is seen by the protocol (uvicorn's default of 2,048 let a sweep hold ~2,900 descriptors at
# once, past systemd's 1,024): the peak stays near MAX_CONNECTIONS + 2 * BACKLOG.
BACKLOG = 128


class GuardedH11(H11Protocol):
    """uvicorn's h11 protocol with header and body read deadlines and a connection cap."""

    _phase: str | None = None  # "headers" or "body" while the peer owes us part of a request
    _since: float = 0.0
    _deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        self._watch()
        if len(self.connections) > MAX_CONNECTIONS:
            self._make_room()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._watch()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._watch()

    def eof_received(self) -> None:
        """The peer half-closed. If it still owes part of a request body, none is coming: answer
        400 now, while the answer can still reach it (uvicorn would close without a word and
        the app would see only a disconnect, answered to nobody). Returns nothing, as uvicorn's
        does: the transport closes (after writing what is buffered)."""
        if self.conn.their_state is h11.SEND_BODY and self.conn.our_state is h11.SEND_RESPONSE:
            self._cancel()
            self._phase = None
            self.send_400_response("request body cut off before its Content-Length")

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel()
        super().connection_lost(exc)

    # ---- deadlines ---------------------------------------------------------------------------

    def _watch(self) -> None:
        """Arm the deadline of what the peer owes now; a phase keeps its first deadline."""
        state = self.conn.their_state
        phase = "headers" if state is h11.IDLE else "body" if state is h11.SEND_BODY else None
        if phase == self._phase:
            return
        self._cancel()
        self._phase = phase
        if phase is not None:
            self._since = self.loop.time()
            timeout = HEADER_TIMEOUT if phase == "headers" else BODY_TIMEOUT
            self._deadline = self.loop.call_later(timeout, self._drop)

    def _cancel(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _drop(self) -> None:
        self._cancel()
        self._phase = None
        self.connections.discard(self)
        if not self.transport.is_closing():
            self.transport.abort()  # connection_lost follows: the app sees a disconnect

    # ---- the cap -----------------------------------------------------------------------------

    def _make_room(self) -> None:
        waiting = [
            c for c in self.connections if isinstance(c, GuardedH11) and c._phase is not None
        ]
        if waiting:
            min(waiting, key=lambda c: c._since)._drop()
        else:
            self._drop()
