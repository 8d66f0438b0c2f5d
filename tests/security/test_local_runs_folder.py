"""A runs folder trainops cannot write (read-only, full, or a file in its place): the submit fails
with a clear error and exit 3, never a traceback, and the next apply does not claim work it did
not do ("1 action(s) done" having started nothing).
"""

from __future__ import annotations

from pathlib import Path

from tests.support.workspace import UserRepo, explain, manifest


def test_an_unwritable_runs_folder_is_a_clear_error_every_time(tmp_path: Path) -> None:
    # Tests may run as root, for whom a chmod changes nothing: a file where the folder must be
    # is unwritable for everyone.
    repo = UserRepo.create(tmp_path, {"a": manifest("a")})
    (repo.root / ".trainops").write_text("not a folder\n")

    for attempt in (1, 2):
        result = repo.trainops("apply")
        assert result.returncode == 3, explain(result)
        assert "Traceback" not in result.stderr and "internal error" not in result.stderr
        assert "cannot set up local run a-" in result.stderr, explain(result)
        assert "must be writable" in result.stderr
        assert f"-{attempt}: .trainops" in result.stderr, explain(result)
        assert "0 action(s) done, 1 failed" in result.stdout, explain(result)
    assert repo.ledger() == []


def test_a_runs_folder_leading_outside_the_repository_is_refused(tmp_path: Path) -> None:
    """A symlink committed on the runs folder's path must not make runs write elsewhere."""
    outside = tmp_path / "outside"
    outside.mkdir()
    repo = UserRepo.create(tmp_path, {"a": manifest("a")})
    (repo.root / ".trainops").symlink_to(outside)

    result = repo.trainops("apply")
    assert result.returncode == 3, explain(result)
    assert "leads outside the repository" in result.stderr, explain(result)
    assert list(outside.iterdir()) == []
    assert repo.ledger() == []
