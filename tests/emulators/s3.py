"""S3 for tests: moto's server application on 127.0.0.1, behind a thin WSGI layer of our own
that records every request (method, bucket/key path, query) and injects faults, since moto's
server counts nothing. The same app `moto.server.ThreadedMotoServer` runs; boto3 (in the test or in
a trainops subprocess) reaches it through `AWS_ENDPOINT_URL`.

Two behaviours of the real service moto lacks are reproduced here (facts in
shared/ref/README.md, "Checked against the real clients", S3):

- `copy_limit`: `CopyObject` refuses a source larger than 5 GiB with 400 InvalidRequest "The
  specified copy source is larger than the maximum allowable size for a copy source: 5368709120"
  (AWS S3 API reference, CopyObject: "You can copy a single object up to 5 GB in size in a single
  atomic action ... larger than 5 GB, you must use the multipart upload Upload Part - Copy");
  `UploadPartCopy` (a PUT with `uploadId`) is not limited. Tests lower the limit.
- `least_privilege`: a caller without `s3:ListBucket` (AWS S3 API reference, HeadObject: "If you
  don't have the s3:ListBucket permission, Amazon S3 returns an HTTP status code 403 Forbidden
  error"; GetObject says the same for "NoSuchKey") gets 403 AccessDenied for a HEAD or GET of a
  missing key, and 403 for ListObjects / ListObjectsV2. HEAD and GET of a key that exists work.
"""

from __future__ import annotations

import io
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, quote, unquote

__all__ = ["MotoS3", "S3Fault", "S3Request"]

_WRITE_METHODS = frozenset({"PUT", "POST", "DELETE"})
COPY_LIMIT = 5 * 1024**3  # 5368709120, CopyObject's limit
# ListObjects (v1) and ListObjectsV2 parameters: a bucket GET carrying only these is a listing.
_LIST_PARAMS = frozenset(
    {
        "list-type",
        "prefix",
        "delimiter",
        "marker",
        "max-keys",
        "continuation-token",
        "start-after",
        "fetch-owner",
        "encoding-type",
    }
)


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
        self,
        access_key: str = "AKIDTESTMOTO",
        secret_key: str = "moto-secret-x9",
        *,
        copy_limit: int = COPY_LIMIT,
        least_privilege: bool = False,
    ) -> None:
        self.access_key, self.secret_key = access_key, secret_key
        self._defaults = (copy_limit, least_privilege)
        self.copy_limit, self.least_privilege = self._defaults
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
        """Forget every bucket (moto's state is per process), every recorded request and fault,
        and go back to the constructor's `copy_limit` and `least_privilege`."""
        import httpx

        httpx.post(f"{self.url}/moto-api/reset").raise_for_status()
        with self._lock:
            self.requests.clear()
            self._faults.clear()
            self.copy_limit, self.least_privilege = self._defaults

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
                self._record(method, path, query, fault.status)
                return _error(start_response, method, fault.status, fault.code, "injected fault")
            refused = self._refusal(app, environ, method, path, query)
            if refused is not None:
                _drain(environ)
                self._record(method, path, query, refused[0])
                return _error(start_response, method, *refused)
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

    def _refusal(
        self, app: Any, environ: dict[str, Any], method: str, path: str, query: dict[str, str]
    ) -> tuple[int, str, str] | None:
        """The error the real service gives where moto would answer: (status, code, message)."""
        if (
            self.least_privilege
            and method == "GET"
            and not _is_key(path)
            and path.strip("/")
            and set(query) <= _LIST_PARAMS
        ):
            return 403, "AccessDenied", "Access Denied"  # ListObjects(V2) needs s3:ListBucket
        missing_key = (
            self.least_privilege
            and method in ("GET", "HEAD")
            and _is_key(path)
            and self._inner(app, environ, "HEAD", path)[0] == 404
        )
        if missing_key and self._inner(app, environ, "HEAD", "/" + path.split("/")[1])[0] == 200:
            return 403, "AccessDenied", "Access Denied"  # a missing key, in a bucket
        copy_source = environ.get("HTTP_X_AMZ_COPY_SOURCE")
        if method == "PUT" and copy_source and "uploadId" not in query:
            source = unquote(copy_source.split("?", 1)[0]).lstrip("/")
            size = self._size(app, environ, "/" + source)
            if size is not None and size > self.copy_limit:
                return (
                    400,
                    "InvalidRequest",
                    "The specified copy source is larger than the maximum allowable size for a "
                    f"copy source: {self.copy_limit}",
                )
        return None

    def _inner(self, app: Any, environ: dict[str, Any], method: str, path: str) -> tuple[int, Any]:
        """Ask moto itself (a HEAD of `path`): (status, headers)."""
        sub = {
            k: v
            for k, v in environ.items()
            if not k.startswith("HTTP_X_AMZ_COPY") and k not in ("CONTENT_LENGTH", "CONTENT_TYPE")
        }
        raw = quote(path)
        sub.update(
            REQUEST_METHOD=method,
            PATH_INFO=path,
            QUERY_STRING="",
            CONTENT_LENGTH="0",
            RAW_URI=raw,
            REQUEST_URI=raw,
        )
        sub["wsgi.input"] = io.BytesIO(b"")
        answer: list[Any] = []

        def start(line: str, headers: Any, exc_info: Any = None) -> None:
            answer.extend((int(line.split()[0]), dict(headers)))

        _close(app(sub, start))
        return answer[0], answer[1]

    def _size(self, app: Any, environ: dict[str, Any], path: str) -> int | None:
        status, headers = self._inner(app, environ, "HEAD", path)
        length = {k.lower(): v for k, v in headers.items()}.get("content-length")
        return int(length) if status == 200 and length is not None else None

    def _record(self, method: str, path: str, query: dict[str, str], status: int) -> None:
        with self._lock:
            self.requests.append(S3Request(method, path, query, status))


def _is_key(path: str) -> bool:
    """`/bucket/key...` (an object), not `/bucket` or `/bucket/`."""
    return bool(path.lstrip("/").partition("/")[2])


def _error(start_response: Any, method: str, status: int, code: str, message: str) -> list[bytes]:
    """An S3 error answer; a HEAD's has no body (botocore then takes the status as the code)."""
    body = (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
        f"<Message>{message}</Message></Error>"
    ).encode()
    reasons = {400: "Bad Request", 403: "Forbidden", 404: "Not Found", 412: "Precondition Failed"}
    start_response(
        f"{status} {reasons.get(status, 'Error')}",
        [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))],
    )
    return [] if method == "HEAD" else [body]


def _close(body: Any) -> None:
    for _ in body:
        pass
    close = getattr(body, "close", None)
    if close is not None:
        close()


def _drain(environ: dict[str, Any]) -> None:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    if length:
        environ["wsgi.input"].read(length)
