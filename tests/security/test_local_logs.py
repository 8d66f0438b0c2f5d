"""Bounded logs (DESIGN §13): a job that writes without end cannot make trainops read, hold or
print its whole log. Tails are read from the end, the bytes returned are capped, and log.txt
itself stops growing past its cap (keeping the start and the end of the output).
"""

from __future__ import annotations

import io
from pathlib import Path

from tests.support.gitrepo import git
from tests.support.workspace import UserRepo, explain, manifest
from trainops.providers._runlog import TAIL_BYTES
from trainops.providers._supervisor import CappedLog
from trainops.providers.local import LocalProvider

HUGE = 4 << 30  # a 4 GiB log without a newline (sparse: nothing is really written)


def huge_log(run_dir: Path, ending: bytes) -> None:
    with open(run_dir / "log.txt", "wb") as f:
        f.truncate(HUGE)
        f.seek(HUGE)
        f.write(ending)


def test_a_tail_of_a_line_less_log_reads_and_returns_a_bounded_amount(tmp_path: Path) -> None:
    git(tmp_path, "init", "--quiet")
    provider = LocalProvider(tmp_path)
    run_dir = provider.runs_dir / "big-0123456789ab-1"
    run_dir.mkdir(parents=True)
    assert provider.records_dir is not None
    (provider.records_dir / run_dir.name).mkdir(parents=True)  # the run's claim
    huge_log(run_dir, b"no newline at all")

    tail = provider.logs(run_dir.name, 20)
    assert 0 < len(tail.encode()) <= TAIL_BYTES
    assert tail.endswith("no newline at all")
    text, end = provider.log_tail(run_dir.name, 3)
    assert end == HUGE + len("no newline at all") and len(text.encode()) <= TAIL_BYTES


def test_logs_tail_on_the_cli_reads_only_the_end(tmp_path: Path) -> None:
    """`trainops logs --tail 5` on a run whose log is 4 GiB: the last five lines, at once."""
    repo = UserRepo.create(tmp_path, {"a": manifest("a")})
    try:
        repo.apply_ok("--wait", "--timeout", "30")
        (run_id,) = repo.run_ids()
        lines = b"".join(b"line %d\n" % i for i in range(1, 11))
        huge_log(repo.run_dir(run_id), b"\n" + lines)

        result = repo.trainops("logs", "a", "--tail", "5", timeout=30)
        assert result.returncode == 0, explain(result)
        assert result.stdout.splitlines() == [f"line {i}" for i in range(6, 11)]
    finally:
        repo.cleanup()


def test_log_txt_keeps_its_start_and_its_end_past_the_cap() -> None:
    out = io.BytesIO()
    log = CappedLog(out, cap=100, keep=10)
    log.write(b"a" * 60)
    log.write(b"b" * 60)  # crosses the cap
    for _ in range(1000):
        log.write(b"c" * 100)
    log.write(b"the end\n")
    log.close()

    text = out.getvalue()
    assert text.startswith(b"a" * 60 + b"b" * 40)
    assert b"log.txt reached 100 bytes" in text
    assert text.endswith(b"\n" + (b"c" * 100 + b"the end\n")[-10:])
    assert len(text) < 100 + 400


def test_a_run_writing_forever_has_a_capped_log(tmp_path: Path) -> None:
    """The supervisor really caps: a job writing 3x the cap leaves a log about the cap's size."""
    from trainops.providers import _supervisor as sv

    cap = sv.LOG_CAP
    script = (
        "import sys\n"
        "chunk = b'x' * (1 << 20)\n"
        f"for _ in range({3 * cap >> 20}): sys.stdout.buffer.write(chunk)\n"
        "sys.stdout.buffer.write(b'\\nbye\\n')\n"
    )
    repo = UserRepo.create(tmp_path, {})
    try:
        repo.write("spam.py", script)
        repo.write_job("spam", manifest("spam", command=["python", "spam.py"]))
        repo.commit()
        repo.apply_ok("--wait", "--timeout", "60")
        (run_id,) = repo.run_ids()
        size = (repo.run_dir(run_id) / "log.txt").stat().st_size
        assert cap < size <= cap + sv.LOG_KEEP + 4096
        assert repo.trainops("logs", "spam", "--tail", "1").stdout.strip() == "bye"
    finally:
        repo.cleanup()
