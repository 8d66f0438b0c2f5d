"""The entrypoint of every Ray job trainops submits: `python -m trainops_rayjob -- COMMAND...`.

It travels to the cluster as a `py_modules` entry of the job's runtime_env, so the cluster needs
nothing of trainops installed: this package uses only the standard library (and boto3 when the
outputs go to s3://). It gives the command what the `local` provider gives it — the input as a
JSON file named by `TRAINOPS_INPUT`, an empty folder named by `TRAINOPS_OUTPUT_DIR` — runs it,
then copies every file the command wrote there to `TRAINOPS_OUTPUT_URI/outputs/` (an s3:// prefix
or a folder the cluster shares), and exits with the command's exit code (1 when the copy failed).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

OUTPUTS = "outputs"


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
        code = proc.wait()
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
