"""`trainops.blobs`: one `git cat-file --batch` answering blob after blob, in chunks."""

from __future__ import annotations

from pathlib import Path

from tests.support.gitrepo import git, make_repo
from trainops import blobs


def test_blobs_in_turn_a_missing_one_and_a_tree_are_none_an_unread_rest_is_skipped(
    tmp_path: Path,
) -> None:
    big = "x" * (blobs.CHUNK + 10)
    root = make_repo(tmp_path / "r", {"big.txt": big, "d/small.txt": "small"})
    big_sha, small_sha = (git(root, "rev-parse", f"HEAD:{p}") for p in ("big.txt", "d/small.txt"))
    tree = git(root, "rev-parse", "HEAD:d")
    with blobs.batch(root) as reader:
        chunks = reader.chunks(big_sha)
        assert chunks is not None
        assert len(next(chunks)) == blobs.CHUNK  # its last 10 bytes are never read
        assert reader.chunks("0" * 40) is None
        assert reader.chunks(tree) is None
        whole = reader.chunks(small_sha)
        assert whole is not None and b"".join(whole) == b"small"
        again = reader.chunks(big_sha)
        assert again is not None and b"".join(again) == big.encode()
