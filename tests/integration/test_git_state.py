"""GitStateStore against real repositories: a working clone, a second clone, a bare remote."""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.support.gitrepo import HERMETIC_ENV, clone, git, make_repo
from trainops.errors import StateConflict, StateError
from trainops.state.base import StateSnapshot
from trainops.state.git import GitStateStore

BRANCH = "refs/heads/trainops/state"


@pytest.fixture(autouse=True)
def _hermetic_git(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in HERMETIC_ENV.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "work", {"README.md": "hello\n"})


@pytest.fixture
def remote(tmp_path: Path) -> Path:
    make_repo(tmp_path / "a", {"README.md": "hello\n"}, remote=tmp_path / "remote.git")
    clone(tmp_path / "remote.git", tmp_path / "b")
    return tmp_path / "remote.git"


def history(repo: Path, ref: str = BRANCH) -> list[list[str]]:
    """Each commit of `ref`, newest first, as [sha, *parents]."""
    return [line.split() for line in git(repo, "rev-list", "--parents", ref).splitlines()]


def fsck(repo: Path) -> None:
    """Fail unless git finds every object well formed (sorted trees, valid modes) and linked."""
    git(repo, "fsck", "--strict", "--no-dangling", "--no-progress")


def save_with_retry(store: GitStateStore, changes: dict[str, str | None], message: str) -> int:
    """Load, save, and start over on a lost swap, as apply does; return the conflicts met."""
    for conflicts in range(200):
        try:
            store.save(store.load().version, changes, message)
            return conflicts
        except StateConflict:
            continue
    raise AssertionError("never won the compare-and-swap")


def test_first_save_creates_the_branch_with_one_root_commit(repo: Path) -> None:
    store = GitStateStore(repo)
    assert store.remote is None
    assert store.load() == StateSnapshot(version="", files={})
    message = "trainops apply: 2 actions\n\n- submit a\n- cancel b"

    version = store.save("", {"state/a.json": "{}\n"}, message)

    assert history(repo) == [[version]]
    raw = git(repo, "cat-file", "commit", version)
    assert raw.split("\n\n", 1)[1] == message
    assert "\nauthor trainops <trainops@localhost> " in raw
    assert git(repo, "rev-parse", "HEAD") == git(repo, "rev-parse", "refs/heads/main")


def test_load_round_trips_nested_paths_and_text(repo: Path) -> None:
    files = {
        "state/a.json": '{"runs": []}\n',
        "state/b.json": "ünïcödé ✓\n",
        "snapshots/a/3f2c0a1b2c3d.yaml": "# header\nspec: {}\n",
        "snapshots/b/000000000000.yaml": "",
        "snapshots/a-b.yaml": "git sorts a tree 'a' as 'a/': after 'a-b' and 'a.yaml'",
        "snapshots/a.yaml": "",
    }
    version = GitStateStore(repo).save("", files, "write")

    records = {p: t for p, t in files.items() if p.startswith("state/")}
    snapshots = sorted(set(files) - set(records))
    # load() reads the run records only; snapshots are read by path when a diff needs one.
    assert GitStateStore(repo).load() == StateSnapshot(version=version, files=records)
    assert GitStateStore(repo).read(version, [*snapshots, "snapshots/nope.yaml"]) == {
        p: files[p] for p in snapshots
    }
    assert git(repo, "ls-tree", "-r", "-t", "--name-only", version).splitlines() == [
        "snapshots",
        "snapshots/a-b.yaml",
        "snapshots/a.yaml",
        "snapshots/a",
        "snapshots/a/3f2c0a1b2c3d.yaml",
        "snapshots/b",
        "snapshots/b/000000000000.yaml",
        "state",
        "state/a.json",
        "state/b.json",
    ]
    fsck(repo)


def test_delete_removes_files_and_emptied_directories(repo: Path) -> None:
    store = GitStateStore(repo)
    v1 = store.save("", {"state/a.json": "a", "state/b.json": "b", "snapshots/a/r.yaml": "r"}, "1")

    v2 = store.save(v1, {"state/a.json": None, "snapshots/a/r.yaml": None}, "2")

    assert store.load() == StateSnapshot(version=v2, files={"state/b.json": "b"})
    assert git(repo, "ls-tree", "-r", "-t", "--name-only", v2).splitlines() == [
        "state",
        "state/b.json",
    ]
    v3 = store.save(v2, {"state/b.json": None}, "3")
    assert store.load() == StateSnapshot(version=v3, files={})
    assert history(repo) == [[v3, v2], [v2, v1], [v1]]
    fsck(repo)


def test_a_bulk_save_is_written_as_one_pack(repo: Path) -> None:
    files = {f"state/job-{i:03d}.json": f'{{"n": {i}}}\n' for i in range(300)}
    files |= {f"snapshots/job-{i:03d}/abc.yaml": f"n: {i}\n" for i in range(300)}
    store = GitStateStore(repo)

    version = store.save("", files, "bulk")

    records = {p: t for p, t in files.items() if p.startswith("state/")}
    assert store.load() == StateSnapshot(version=version, files=records)
    counts = dict(line.split(": ") for line in git(repo, "count-objects", "-v").splitlines())
    assert int(counts["in-pack"]) >= 900  # 600 blobs, 302 trees, none of them loose
    assert int(counts["packs"]) == 1
    v2 = store.save(version, {"state/job-007.json": "changed"}, "small")
    assert store.load().files == records | {"state/job-007.json": "changed"}
    assert history(repo) == [[v2, version], [version]]
    fsck(repo)


def test_a_save_reuses_the_subtrees_it_does_not_change(repo: Path) -> None:
    store = GitStateStore(repo)
    v1 = store.save("", {"state/a.json": "1", "snapshots/a/r.yaml": "r"}, "1")

    v2 = store.save(v1, {"state/a.json": "2"}, "2")

    assert git(repo, "rev-parse", f"{v1}:snapshots") == git(repo, "rev-parse", f"{v2}:snapshots")
    assert git(repo, "rev-parse", f"{v1}:state") != git(repo, "rev-parse", f"{v2}:state")


def test_a_save_that_changes_nothing_makes_no_commit(repo: Path) -> None:
    store = GitStateStore(repo)
    assert store.save("", {}, "nothing") == ""
    assert store.save("", {"state/gone.json": None}, "nothing") == ""
    assert git(repo, "for-each-ref", BRANCH) == ""
    v1 = store.save("", {"state/a.json": "1"}, "1")

    assert store.save(v1, {"state/a.json": "1", "state/b.json": None, "x/y": None}, "same") == v1
    assert history(repo) == [[v1]]


@pytest.mark.parametrize("first_write", [True, False], ids=["first-write", "existing"])
def test_two_stores_on_one_clone_exactly_one_wins(repo: Path, first_write: bool) -> None:
    base = "" if first_write else GitStateStore(repo).save("", {"state/x.json": "0"}, "0")
    one, two = GitStateStore(repo), GitStateStore(repo)

    won = one.save(base, {"state/a.json": "1"}, "one")
    with pytest.raises(StateConflict):
        two.save(base, {"state/b.json": "2"}, "two")

    assert git(repo, "rev-parse", BRANCH) == won
    assert "state/b.json" not in two.load().files


@pytest.mark.parametrize("first_write", [True, False], ids=["first-write", "existing"])
def test_two_clones_of_one_remote_exactly_one_push_wins(remote: Path, first_write: bool) -> None:
    a, b = GitStateStore(remote.parent / "a"), GitStateStore(remote.parent / "b")
    if not first_write:
        a.save(a.load().version, {"state/x.json": "0"}, "0")
    base = a.load().version
    assert b.load().version == base

    won = a.save(base, {"state/a.json": "1"}, "a")
    with pytest.raises(StateConflict):
        b.save(base, {"state/b.json": "2"}, "b")
    assert git(remote, "rev-parse", BRANCH) == won

    again = b.load()
    assert again.version == won
    final = b.save(again.version, {"state/b.json": "2"}, "b again")
    assert git(remote, "rev-parse", BRANCH) == final
    assert set(a.load().files) == {"state/a.json", "state/b.json"} | (
        set() if first_write else {"state/x.json"}
    )
    assert all(len(commit) <= 2 for commit in history(remote))


def test_a_push_updates_the_local_branch_and_the_tracking_ref(remote: Path) -> None:
    work = remote.parent / "a"
    version = GitStateStore(work).save("", {"state/a.json": "1"}, "1")

    assert git(work, "rev-parse", BRANCH) == version
    assert git(work, "rev-parse", "refs/remotes/origin/trainops/state") == version
    assert GitStateStore(remote.parent / "b").load().version == version


def working_copy_fingerprint(repo: Path) -> dict[str, str]:
    files = {
        str(path.relative_to(repo)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(repo.rglob("*"))
        if path.is_file() and ".git" not in path.relative_to(repo).parts
    }
    return {
        "status": git(repo, "status", "--porcelain=v1", "--untracked-files=all", "--ignored"),
        "index": hashlib.sha256((repo / ".git" / "index").read_bytes()).hexdigest(),
        "HEAD": (repo / ".git" / "HEAD").read_text(),
        "heads": git(repo, "for-each-ref", "--format=%(refname) %(objectname)", "refs/heads/main"),
        "files": repr(files),
    }


@pytest.mark.parametrize("with_remote", [False, True], ids=["local", "remote"])
@pytest.mark.parametrize("unborn", [False, True], ids=["commits", "no-commits"])
def test_working_tree_index_and_head_are_untouched(
    tmp_path: Path, with_remote: bool, unborn: bool
) -> None:
    files = {} if unborn else {"README.md": "hello\n", "jobs/a.yaml": "a: 1\n", "train.py": ""}
    repo = make_repo(tmp_path / "work", files, remote=tmp_path / "r.git" if with_remote else None)
    (repo / ".gitignore").write_text("*.log\n")
    (repo / "run.log").write_text("ignored\n")
    (repo / "staged.yaml").write_text("staged: true\n")
    git(repo, "add", "staged.yaml")
    (repo / "untracked.txt").write_text("untracked\n")
    if not unborn:
        (repo / "README.md").write_text("edited, not staged\n")
        (repo / "jobs/a.yaml").write_text("a: 2\n")
        git(repo, "add", "jobs/a.yaml")
    before = working_copy_fingerprint(repo)

    store = GitStateStore(repo)
    assert (store.remote is not None) == with_remote
    v1 = store.save(store.load().version, {"state/a.json": "1", "README.md": "state's own"}, "1")
    store.save(v1, {"state/a.json": None, "snapshots/a/r.yaml": "r"}, "2")
    store.load()

    assert working_copy_fingerprint(repo) == before


@pytest.mark.parametrize("with_remote", [False, True], ids=["one-clone", "two-clones"])
def test_racing_threads_keep_every_change_in_a_linear_history(
    remote: Path, with_remote: bool
) -> None:
    clones = [remote.parent / "a", remote.parent / ("b" if with_remote else "a")]
    stores = [GitStateStore(path, remote="origin" if with_remote else None) for path in clones]

    def worker(n: int) -> int:
        return sum(
            save_with_retry(stores[n], {f"state/w{n}-{i}.json": f"{i}\n"}, f"w{n} save {i}")
            for i in range(10)
        )

    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(worker, [0, 1]))

    ref_holder = remote if with_remote else clones[0]
    commits = history(ref_holder)
    assert len(commits) == 20
    assert all(len(commit) <= 2 for commit in commits)  # no merges
    assert len(commits[-1]) == 1  # one root
    final = GitStateStore(clones[0], remote="origin" if with_remote else None).load()
    assert final.files == {f"state/w{n}-{i}.json": f"{i}\n" for n in (0, 1) for i in range(10)}


def test_a_branch_only_in_the_clone_is_served_and_then_published(remote: Path) -> None:
    work = remote.parent / "a"
    local_only = GitStateStore(work, remote=None).save("", {"state/a.json": "1"}, "before origin")

    store = GitStateStore(work)
    assert store.load() == StateSnapshot(version=local_only, files={"state/a.json": "1"})
    version = store.save(local_only, {"state/b.json": "2"}, "published")

    assert history(remote) == [[version, local_only], [local_only]]


def test_a_push_refused_by_the_remote_is_an_error_not_a_conflict(remote: Path) -> None:
    hook = remote / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'protected branch' >&2\nexit 1\n")
    hook.chmod(0o755)
    store = GitStateStore(remote.parent / "a")

    with pytest.raises(StateError) as raised:
        store.save(store.load().version, {"state/a.json": "1"}, "1")

    assert not isinstance(raised.value, StateConflict)
    assert "refused" in raised.value.message
    assert git(remote, "for-each-ref", BRANCH) == ""


def test_an_unreachable_remote_is_an_error_that_leaks_no_credentials(remote: Path) -> None:
    work = remote.parent / "a"
    store = GitStateStore(work)
    base = store.load().version
    git(work, "remote", "set-url", "origin", "http://trainops:s3cret-token@127.0.0.1:9/state.git")

    with pytest.raises(StateError) as on_push:
        store.save(base, {"state/a.json": "1"}, "1")
    with pytest.raises(StateError) as on_fetch:
        store.load()

    for raised in (on_push, on_fetch):
        assert not isinstance(raised.value, StateConflict)
        assert "s3cret-token" not in str(raised.value)
        assert "origin" in raised.value.message


def test_a_load_read_ahead_is_the_load_and_reads_only_once(remote: Path) -> None:
    work = remote.parent / "a"
    files = {f"state/{i:02x}/job-{i}.json": f'{{"job": "job-{i}"}}\n' for i in range(150)}
    files["state/big.json"] = "x" * 300_000
    files["state/bad.json"] = "caf\xe9"  # written as UTF-8: read back as it was
    version = GitStateStore(work).save("", files, "write")
    plain = GitStateStore(work).load()

    ahead = GitStateStore(work)
    ahead.read_ahead()
    ahead.read_ahead()  # a second call while the first is under way starts nothing more
    assert ahead.load() == plain and plain.version == version and plain.files == files
    # The next load reads again, and sees what another clone saved meanwhile.
    other = remote.parent / "b"
    theirs = GitStateStore(other)
    theirs.save(theirs.load().version, {"state/new.json": "{}\n"}, "more")
    assert "state/new.json" in ahead.load().files


def test_a_read_ahead_that_fails_raises_from_load_and_leaks_no_credentials(remote: Path) -> None:
    work = remote.parent / "a"
    git(work, "remote", "set-url", "origin", "http://trainops:s3cret-token@127.0.0.1:9/state.git")
    store = GitStateStore(work)
    store.read_ahead()
    with pytest.raises(StateError) as raised:
        store.load()
    assert "s3cret-token" not in str(raised.value) and "origin" in raised.value.message


def test_a_state_too_large_to_read_ahead_into_a_file_is_streamed(remote: Path) -> None:
    work = remote.parent / "a"
    files = {f"state/job-{i}.json": "y" * 1000 for i in range(20)}
    GitStateStore(work).save("", files, "write")
    store = GitStateStore(work, read_ahead_bytes=5000)
    store.read_ahead()
    assert store.load().files == files


@pytest.mark.parametrize(
    "path", ["", "/abs.json", "a/../b", "a//b", "./a", ".git/config", "a\nb", "a\\b"]
)
def test_invalid_paths_are_refused(repo: Path, path: str) -> None:
    with pytest.raises(StateError, match="invalid state path"):
        GitStateStore(repo).save("", {path: "x"}, "bad")


def test_a_file_and_a_directory_cannot_share_a_path(repo: Path) -> None:
    store = GitStateStore(repo)
    version = store.save("", {"state/a.json": "1"}, "1")

    with pytest.raises(StateError, match="is a directory"):
        store.save(version, {"state": "x"}, "file over dir")
    with pytest.raises(StateError, match="is a file"):
        store.save(version, {"state/a.json/x": "x"}, "dir over file")
    with pytest.raises(StateError, match="both a file and a directory"):
        store.save(version, {"new": "x", "new/x": "y"}, "both")
    assert store.save(version, {"state/a.json/x": None}, "delete below a file") == version


def test_the_store_refuses_what_it_cannot_serve(tmp_path: Path, repo: Path) -> None:
    with pytest.raises(StateError, match="not a git repository"):
        GitStateStore(tmp_path / "nowhere")
    with pytest.raises(StateError, match="not configured"):
        GitStateStore(repo, remote="upstream")
    with pytest.raises(StateError, match="invalid state branch"):
        GitStateStore(repo, branch="bad..name")
    with pytest.raises(StateError, match="does not exist"):
        GitStateStore(repo).save("0" * 40, {"a": "1"}, "unknown base")
    git(repo, "switch", "--quiet", "--create", "trainops/state")
    with pytest.raises(StateError, match="checked out"):
        GitStateStore(repo).save("", {"a": "1"}, "checked out")


def test_a_bare_repository_can_hold_the_state_itself(remote: Path) -> None:
    store = GitStateStore(remote)
    version = store.save("", {"state/a.json": "1"}, "1")
    assert store.load() == StateSnapshot(version=version, files={"state/a.json": "1"})
    assert not any(name for name in os.listdir(remote) if name == "index")
