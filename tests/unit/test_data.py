"""Packaging of spec.data (DESIGN §18): deterministic bytes, what is never packaged, the limit."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.gitrepo import make_repo
from trainops.data import DataError, never_packaged, package
from trainops.manifest import revision
from trainops.repo import Commit, WorkingTree

FILES = {"data/p/a.txt": "one", "data/p/sub/b.txt": "two", "data/p/.env.local": "K=1"}


def test_same_content_gives_the_same_bytes_from_the_tree_and_the_commit(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "r", FILES)
    tree = package(WorkingTree(root), "imgs", "data/p/")
    os.utime(root / "data/p/a.txt", (0, 0))  # times never reach the bytes
    again = package(WorkingTree(root), "imgs", "data/p")
    commit = package(Commit.resolve(root), "imgs", "data/p/")
    assert tree.content == again.content == commit.content
    assert tree.files == ("a.txt", "sub/b.txt")
    assert tree.left_out == ((".env.local", "environment file"),)
    (root / "data/p/a.txt").write_text("edited")
    assert package(WorkingTree(root), "imgs", "data/p/").digest != tree.digest


def test_a_package_over_the_limit_names_size_and_limit(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "r", {"data/big.bin": "x" * 2048})
    with pytest.raises(DataError) as err:
        package(WorkingTree(root), "w", "data/big.bin", limit=1024)
    assert "2.0 KiB (2048 bytes), over the provider's limit of 1.0 KiB (1024 bytes)" in (
        err.value.message
    )


def test_a_linked_data_folder_is_not_followed(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "r", {"x.txt": "x"})
    (root / "data").symlink_to(tmp_path)
    with pytest.raises(DataError, match="symlink"):
        package(WorkingTree(root), "w", "data/")


@pytest.mark.parametrize(
    ("path", "why"),
    [
        ("d/.env", "environment file"),
        ("d/id_ed25519", "private key"),
        ("d/server.pem", "private key"),
        ("d/.aws/credentials", "credentials or git metadata"),
        ("d/application_default_credentials.json", "cloud credentials"),
        ("d/.netrc", "cloud credentials"),
        ("d/img.png", ""),
        ("d/id_ed25519.pub", ""),
    ],
)
def test_never_packaged(path: str, why: str) -> None:
    assert never_packaged(path) == why


def test_data_digests_join_the_revision_only_when_present() -> None:
    from tests.support.factories import job

    spec = job("a").spec
    assert revision(spec) == revision(spec, None, {})
    assert revision(spec, None, {"k": "sha256:1"}) != revision(spec, None, {"k": "sha256:2"})
