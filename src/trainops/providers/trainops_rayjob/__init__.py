"""The entrypoint of every Ray job trainops submits: `python -m trainops_rayjob -- COMMAND...`.

It travels to the cluster as a `py_modules` entry of the job's runtime_env, so the cluster needs
nothing of trainops installed: this package uses only the standard library (and boto3 when the
outputs go to s3://). It gives the command what the `local` provider gives it — the input as a
JSON file named by `TRAINOPS_INPUT`, an empty folder named by `TRAINOPS_OUTPUT_DIR` — runs it,
then copies every file the command wrote there to `TRAINOPS_OUTPUT_URI/outputs/` (an s3:// prefix
or a folder the cluster shares), and exits with the command's exit code (1 when the copy failed).

While the command runs, a `metrics.json` it writes is copied to a shared folder whenever it
changes (every `MIRROR_EVERY` seconds at most), so trainops reads a running run's metrics so far
as a local run's (a sweep's `stop_when`, DESIGN §21). Not to S3: reading each running run's
object on every pass would be a request per run per pass, so validate refuses `stop_when` there.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

OUTPUTS = "outputs"
METRICS = "metrics.json"  # trainops.metrics.FILE (this package imports nothing of trainops)
METRICS_MAX_BYTES = 64 << 10  # trainops.metrics.MAX_BYTES: a larger file is not read anyway
MIRROR_EVERY = 1.0  # seconds


def main(argv: list[str]) -> int:
    command = argv[1:]
    if command[:1] == ["--"]:
        command = command[1:]
    if not command:
        print("trainops_rayjob: no command given", file=sys.stderr)
        return 2
    uri = os.environ.get("TRAINOPS_OUTPUT_URI", "").rstrip("/")
    with tempfile.TemporaryDirectory(prefix="trainops-run-") as tmp:
        work = Path(tmp)
        (work / OUTPUTS).mkdir()
        (work / "input.json").write_text(os.environ.get("TRAINOPS_INPUT_JSON", "{}") + "\n")
        env = {k: v for k, v in os.environ.items() if k != "TRAINOPS_INPUT_JSON"}
        env["TRAINOPS_INPUT"] = str(work / "input.json")
        env["TRAINOPS_OUTPUT_DIR"] = str(work / OUTPUTS)
        proc = subprocess.Popen(command, env=env)
        # stop_job signals the entrypoint; pass it on so the command can stop cleanly.
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda s, _f: proc.send_signal(s))
        done = threading.Event()
        mirror = None
        source, target = work / OUTPUTS / METRICS, Path(f"{uri}/{OUTPUTS}") / METRICS
        if uri and not uri.startswith("s3://"):
            mirror = threading.Thread(target=_mirror, args=(source, target, done), daemon=True)
            mirror.start()
        code = proc.wait()
        done.set()
        if mirror is not None:
            mirror.join()
            if source.is_symlink() or not source.is_file():
                # the outputs are what the command left: not a copy it took back
                with contextlib.suppress(OSError):
                    target.unlink()
        if not uri:
            return code
        try:
            copied = _copy_outputs(work / OUTPUTS, f"{uri}/{OUTPUTS}")
        except Exception as exc:  # the cluster's own storage trouble: say so, fail the run
            print(f"trainops: copying the outputs to {uri} failed: {exc}", file=sys.stderr)
            return code or 1
        print(f"trainops: {copied} output file(s) copied to {uri}/{OUTPUTS}/", flush=True)
        return code


def _files(folder: Path) -> list[tuple[str, Path]]:
    """Regular files under `folder` (links are not followed), by relative path."""
    found = []
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not path.is_symlink():
            found.append((path.relative_to(folder).as_posix(), path))
    return found


def _mirror(source: Path, target: Path, done: threading.Event) -> None:
    """Copy `source` to `target` whenever it changed, until `done` (the command ended). A link,
    a file over METRICS_MAX_BYTES or one that cannot be read this time is skipped; nothing
    here fails the run (the final copy of the outputs is what counts)."""
    seen: tuple[int, int] | None = None
    while not done.wait(MIRROR_EVERY):
        try:
            stat = source.lstat()
            if not source.is_file() or source.is_symlink() or stat.st_size > METRICS_MAX_BYTES:
                continue
            if (stat.st_mtime_ns, stat.st_size) == seen:
                continue
            fd = os.open(source, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
            with os.fdopen(fd, "rb") as f:
                data = f.read(METRICS_MAX_BYTES + 1)
            if len(data) > METRICS_MAX_BYTES:
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_name(f".{target.name}.partial")
            partial.write_bytes(data)
            os.replace(partial, target)  # a reader never sees half a file
            seen = (stat.st_mtime_ns, stat.st_size)
        except OSError:
            continue


def _copy_outputs(folder: Path, dest: str) -> int:
    files = _files(folder)
    if dest.startswith("s3://"):
        import boto3

        bucket, _, prefix = dest.removeprefix("s3://").partition("/")
        client = boto3.session.Session().client("s3")
        for rel, path in files:
            client.upload_file(str(path), bucket, f"{prefix}/{rel}")
        return len(files)
    target = Path(dest)
    for rel, path in files:
        out = target / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        partial = out.with_name(f".{out.name}.partial")
        shutil.copyfile(path, partial)
        os.replace(partial, out)  # a reader never sees half a file
    return len(files)
