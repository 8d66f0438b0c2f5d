"""A Hugging Face Hub emulator: a real HTTP server on 127.0.0.1 for the calls delivery makes.

It serves exactly what `huggingface_hub` (2.x, read from its source: `hf_api.py`, `_commit_api.py`)
sends for `create_repo`, `get_paths_info`, `list_repo_tree`, `create_commit` (preupload, then an
NDJSON commit), `repo_info` and `whoami`, with the JSON shapes and `X-Error-Code` headers the client
parses. Model repositories live in memory with their commits. Preupload answers "regular", so
uploads travel inside the commit and no LFS/Xet storage is needed; files at or above
`lfs_from_size` are nevertheless *reported* as LFS files (pointer blob id plus `lfs.oid` sha256), as
the Hub reports them. Every request is recorded; faults are injected per endpoint, optionally after
the operation took effect (a lost response). Standalone: `python -m tests.emulators.huggingface`.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from tests.emulators._loopback import LoopbackEmulator

__all__ = ["Fault", "HubEmulator", "Recorded", "git_blob_id"]

WRITE_ENDPOINTS = frozenset({"create", "preupload", "commit"})
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
        ("GET", "info", _REPO + r"(?:/revision/(?P<rev>[^/]+))?"),
        ("GET", "whoami", r"/api/whoami-v2"),
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

    @property
    def head(self) -> str:
        return self.commits[-1].oid


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

    # -- lifecycle ----------------------------------------------------------------------------

    def env(self) -> dict[str, str]:
        """The environment that points a trainops process at this emulator."""
        return {"HF_ENDPOINT": self.url, "HF_TOKEN": self.token, "HF_HUB_DISABLE_TELEMETRY": "1"}

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
            with self._lock:
                fault = next((f for f in self._faults if f.take(endpoint)), None)
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
            if reply.code:
                extra["X-Error-Code"] = reply.code
        except Exception as exc:  # an emulator bug: answer 500 and keep it for the test to see
            self.errors.append(f"{method} {path}: {type(exc).__name__}: {exc}")
            status, payload = 500, {"error": "emulator error"}
        with self._lock:
            self.requests.append(Recorded(method, path, endpoint, status, body, headers))
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
                    "uploadMode": "regular",
                    "shouldIgnore": False,
                    "oid": git_blob_id(repo.files[f["path"]]) if f["path"] in repo.files else None,
                }
                for f in files
            ],
            "commitOid": repo.head,
        }

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
                raise _Reply(400, "this emulator answered 'regular': LFS files cannot be committed")
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
        repo = self._repo(args, headers, write=False)
        return 200, {
            "id": repo.repo_id,
            "_id": _oid(repo.repo_id)[:24],
            "sha": repo.head,
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
        data = b"" if payload is None else json.dumps(payload).encode()
        with contextlib.suppress(OSError):
            self.send_response(status)
            self.send_header("content-type", "application/json; charset=utf-8")
            self.send_header("content-length", str(len(data)))
            for key, value in extra.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

    do_GET = do_POST = _serve

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
