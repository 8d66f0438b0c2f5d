"""S3 for tests: moto's server application on 127.0.0.1, behind a thin WSGI layer of our own
that records every request (method, bucket/key path, query) and injects faults, since moto's
server counts nothing. The same app `moto.server.ThreadedMotoServer` runs; boto3 (in the test or in
a trainops subprocess) reaches it through `AWS_ENDPOINT_URL`.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote

__all__ = ["MotoS3", "S3Fault", "S3Request"]

_WRITE_METHODS = frozenset({"PUT", "POST", "DELETE"})


@dataclass(frozen=True)
class S3Request:
    method: str
    path: str  # /bucket/key, decoded
    query: dict[str, str]
    status: int

    @property
    def write(self) -> bool:
        return self.method in _WRITE_METHODS


@dataclass
class S3Fault:
    """Answer `times` requests matching `method` and the `path` regex with an S3 error."""

    method: str
    path: str
    status: int = 500
    code: str = "InternalError"
    times: int | None = 1
    hits: int = 0

    def take(self, method: str, path: str) -> bool:
        if self.times is not None and self.hits >= self.times:
            return False
        if self.method not in ("*", method) or re.search(self.path, path) is None:
            return False
        self.hits += 1
        return True


class MotoS3:
    """moto's S3 on loopback. `env()` gives the variables a trainops process needs."""

    def __init__(
        self, access_key: str = "AKIDTESTMOTO", secret_key: str = "moto-secret-x9"
    ) -> None:
        self.access_key, self.secret_key = access_key, secret_key
        self.requests: list[S3Request] = []
        self._faults: list[S3Fault] = []
        self._lock = threading.Lock()
        self._server: Any = None
        self._thread: threading.Thread | None = None

    def start(self) -> MotoS3:
        from moto.server import DomainDispatcherApplication, create_backend_app
        from werkzeug.serving import WSGIRequestHandler, make_server

        class Quiet(WSGIRequestHandler):
            def log_request(self, *args: Any, **kwargs: Any) -> None:
                pass

        app = DomainDispatcherApplication(create_backend_app)
        self._server = make_server(
            "127.0.0.1", 0, self._wrap(app), threaded=True, request_handler=Quiet
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="moto-s3", daemon=True
        )
        self._thread.start()
        self.reset()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def __enter__(self) -> MotoS3:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def env(self) -> dict[str, str]:
        return {
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": self.url,
            "AWS_CONFIG_FILE": "/dev/null",
            "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def client(self) -> Any:
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.url,
            region_name="us-east-1",
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
        )

    def reset(self) -> None:
        """Forget every bucket (moto's state is per process) and every recorded request."""
        import httpx

        httpx.post(f"{self.url}/moto-api/reset").raise_for_status()
        with self._lock:
            self.requests.clear()
            self._faults.clear()

    # -- faults and inspection ----------------------------------------------------------------

    def fail(
        self,
        method: str,
        path: str = "",
        status: int = 500,
        code: str = "InternalError",
        times: int | None = 1,
    ) -> S3Fault:
        fault = S3Fault(method, path, status, code, times)
        with self._lock:
            self._faults.append(fault)
        return fault

    def calls(self, bucket: str | None = None) -> list[S3Request]:
        with self._lock:
            return [
                r for r in self.requests if bucket is None or r.path.split("/")[1:2] == [bucket]
            ]

    def writes(self, bucket: str | None = None) -> list[S3Request]:
        return [r for r in self.calls(bucket) if r.write]

    # -- the WSGI layer -----------------------------------------------------------------------

    def _wrap(self, app: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
        def recorded(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
            method, path = environ["REQUEST_METHOD"], unquote(environ.get("PATH_INFO", ""))
            query = dict(parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True))
            if path.startswith("/moto-api"):
                return app(environ, start_response)
            with self._lock:
                fault = next((f for f in self._faults if f.take(method, path)), None)
            if fault is not None:
                _drain(environ)
                body = (
                    f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{fault.code}</Code>'
                    f"<Message>injected fault</Message></Error>"
                ).encode()
                start_response(
                    f"{fault.status} Injected",
                    [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))],
                )
                self._record(method, path, query, fault.status)
                return [body]
            status: list[int] = []

            def start(line: str, headers: Any, exc_info: Any = None) -> Any:
                status.append(int(line.split()[0]))
                return (
                    start_response(line, headers, exc_info)
                    if exc_info
                    else start_response(line, headers)
                )

            body_iter = app(environ, start)
            self._record(method, path, query, status[0] if status else 0)
            return body_iter

        return recorded

    def _record(self, method: str, path: str, query: dict[str, str], status: int) -> None:
        with self._lock:
            self.requests.append(S3Request(method, path, query, status))


def _drain(environ: dict[str, Any]) -> None:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    if length:
        environ["wsgi.input"].read(length)
