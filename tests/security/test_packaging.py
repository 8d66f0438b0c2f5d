"""What leaves the machine, and what runs (DESIGN §13b; issue 26, findings 3 and 4).

One packaging rule for `spec.data` and the Ray workdir zip: only what git holds (the applied
commit; the index's files for `plan`), never an untracked file a CI step wrote, minus
credential-shaped names and contents, each exclusion listed. And a run executes the commit it
was planned from: a private checkout of its tree, whatever the clone's working tree holds.
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
import shutil
import subprocess
import sys
import textwrap
import time
import zipfile
from io import BytesIO
from pathlib import Path

from pytest import MonkeyPatch

from tests.support.gitrepo import git, make_repo
from tests.support.rayhead import RayHead, ray_head
from tests.support.workspace import UserRepo, explain, manifest
from trainops.data import package
from trainops.repo import Commit, WorkingTree
from trainops.workdir import files, pack

__all__ = ["ray_head"]  # the session's Ray head (tests/support/rayhead.py), as a fixture here

PEM = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7\n-----END RSA PRIVATE KEY-----\n"
SA_JSON = json.dumps(
    {"type": "service_account", "project_id": "p", "private_key_id": "1", "private_key": PEM}
)


def _zip_names(content: bytes) -> list[str]:
    return zipfile.ZipFile(BytesIO(content)).namelist()


# ---- finding 3: credential files are packaged ---------------------------------------------


def test_data_packages_leave_out_pgpass_netrc_env_files_and_terraform_state(
    tmp_path: Path,
) -> None:
    root = make_repo(
        tmp_path / "r",
        {
            "data/p/img.txt": "pixels",
            "data/p/.pgpass": "db:5432:*:admin:hunter2\n",
            "data/p/_netrc": "machine api.example.com login me password hunter2\n",
            "data/p/prod.env": "DB_PASSWORD=hunter2\n",
            "data/p/terraform.tfstate": '{"outputs": {"db_password": "hunter2"}}\n',
            "data/p/terraform.tfstate.backup": "{}\n",
            "data/p/.ENV": "K=1\n",  # case does not hide it
        },
    )
    for source in (WorkingTree(root), Commit.resolve(root)):
        pkg = package(source, "imgs", "data/p")
        assert _zip_names(pkg.content) == ["img.txt"]
        assert pkg.files == ("img.txt",)
        left = dict(pkg.left_out)
        assert set(left) == {
            ".pgpass",
            "_netrc",
            "prod.env",
            "terraform.tfstate",
            "terraform.tfstate.backup",
            ".ENV",
        }
        assert b"hunter2" not in pkg.content


def test_the_ray_workdir_zip_leaves_out_keys_service_accounts_and_untracked_ci_files(
    tmp_path: Path,
) -> None:
    root = make_repo(
        tmp_path / "r",
        {
            "train/train.py": "print(1)\n",
            "train/deploy_key": "ssh key material\n",
            "train/sa.json": SA_JSON,  # a service-account key under a harmless name
            "train/config.json": '{"lr": 0.1}\n',
        },
    )
    # What google-github-actions/auth and a careless step write into the workspace: untracked.
    (root / "train" / "gha-creds-abc.json").write_text(SA_JSON)
    (root / "train" / "x-key.json").write_text('{"k": 1}\n')
    (root / "train" / "notes.txt").write_text("untracked scratch\n")
    for source in (Commit.resolve(root), WorkingTree(root)):
        content = pack(source, "train", 10**6)
        assert _zip_names(content) == ["config.json", "train.py"]
        assert b"PRIVATE KEY" not in content and b"private_key" not in content
    left = dict(files(WorkingTree(root), "train", scan=True).left_out)
    assert left["deploy_key"] == "private key"
    assert left["sa.json"] == "service account key (content)"
    assert left["gha-creds-abc.json"] == "cloud credentials"
    assert left["x-key.json"] == "cloud credentials"
    assert left["notes.txt"] == "untracked (not in git)"


def test_a_tracked_credential_name_is_left_out_even_when_committed(tmp_path: Path) -> None:
    root = make_repo(
        tmp_path / "r",
        {
            "train/train.py": "print(1)\n",
            "train/gha-creds-1234.json": SA_JSON,
            "train/svc-key.json": "{}\n",
            "train/.kube/config": "token: x\n",
            "train/.docker/config.json": "{}\n",
            "train/id_work": "key\n",
            "train/aws_credentials": "x\n",
        },
    )
    content = pack(Commit.resolve(root), "train", 10**6)
    assert _zip_names(content) == ["train.py"]


def test_a_pem_private_key_under_any_name_is_refused_and_the_plan_says_why(
    tmp_path: Path,
) -> None:
    job = manifest("portraits", {}, command=["python", "train.py"], data={"d": "data/p/"})
    ray_job = textwrap.dedent(
        """\
        apiVersion: trainops/v1
        kind: TrainingJob
        metadata: {name: raytrain}
        spec:
          provider: ray
          command: [python, train.py]
          workdir: raytrain
        """
    )
    repo = UserRepo.create(tmp_path, {"portraits": job, "raytrain": ray_job})
    try:
        repo.write("data/p/a.txt", "one")
        repo.write("data/p/notes.txt", "keep this safe\n" + PEM)
        # A key cut across the streaming chunk boundary is still seen.
        repo.write("data/p/big.txt", "x" * ((1 << 20) - 10) + PEM)
        repo.write("raytrain/train.py", "print(1)\n")
        repo.write("raytrain/backup.txt", PEM)
        repo.commit("data")
        result = repo.trainops("plan")
        assert result.returncode == 0, explain(result)
        line = next(x for x in result.stdout.splitlines() if "d: data/p/" in x)
        assert "-> 1 file" in line, line
        assert "notes.txt (private key (content))" in line
        assert "big.txt (private key (content))" in line
        shown = next(x for x in result.stdout.splitlines() if "raytrain: workdir" in x)
        assert "backup.txt (private key (content))" in shown
        markdown = repo.trainops("plan", "--output", "markdown").stdout
        assert "#### Workdir packages" in markdown and "backup.txt" in markdown
    finally:
        repo.cleanup()


def test_packaging_a_large_file_streams_it_memory_stays_bounded(tmp_path: Path) -> None:
    """Peak RSS of packaging a sparse 400 MiB file (in the index, read from disk): a count, not
    a time. Reading every file whole, as before, needs more than the file's size."""
    root = make_repo(tmp_path / "r", {"data/p/a.txt": "one"})
    with (root / "data" / "p" / "big.bin").open("wb") as f:
        f.truncate(400 << 20)
    git(root, "add", "--intent-to-add", "data/p/big.bin")
    script = textwrap.dedent(
        f"""\
        import resource, sys
        from pathlib import Path
        from trainops.data import package
        from trainops.repo import WorkingTree
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        pkg = package(WorkingTree(Path({str(root)!r})), "d", "data/p")
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(pkg.files, pkg.size, (after - before) // 1024)
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    names, _, grown = proc.stdout.strip().rpartition(" ")
    assert "big.bin" in names
    assert int(grown) < 64, f"peak RSS grew by {grown} MiB packaging a 400 MiB file"


# ---- finding 4: serve runs code nobody reviewed for that revision -------------------------

RESULT_SCRIPT = """\
import json, os, time
VERSION = "v1"
params = json.load(open(os.environ["TRAINOPS_INPUT"]))
hold = params.get("hold")
deadline = time.time() + 60
while hold and not os.path.exists(hold) and time.time() < deadline:
    time.sleep(0.05)
payload = open("payload.txt").read().strip()
with open(os.path.join(os.environ["TRAINOPS_OUTPUT_DIR"], "result.txt"), "w") as out:
    out.write(VERSION + " " + payload)
"""


def _result(repo: UserRepo, run_id: str) -> str:
    return (repo.run_dir(run_id) / "outputs" / "result.txt").read_text()


def test_a_merged_change_applied_from_the_fetched_commit_runs_the_new_code(
    tmp_path: Path,
) -> None:
    """serve's shape: another clone pushes train.py v2 with a rerun bump; this clone fetches
    and applies `origin/main` while its own working tree still holds v1."""
    repo = UserRepo.create(tmp_path, {"t": manifest("t", {})})
    other = None
    try:
        repo.write("train.py", RESULT_SCRIPT)
        repo.write("payload.txt", "reviewed-1")
        repo.commit("v1")
        repo.apply_ok()
        repo.wait_all_terminal()
        (first,) = repo.run_ids()
        assert _result(repo, first) == "v1 reviewed-1"

        other = UserRepo.clone_of(repo, tmp_path / "other")
        other.write("train.py", RESULT_SCRIPT.replace('"v1"', '"v2"'))
        other.write("payload.txt", "reviewed-2")
        other.write_job("t", manifest("t", {}, rerun=1))
        other.commit("v2 and a rerun")

        git(repo.root, "fetch", "--quiet", "origin")
        result = repo.trainops("apply", "--ref", "origin/main", "--allow-dirty")
        assert result.returncode == 0, explain(result)
        repo.wait_all_terminal()
        (second,) = [r for r in repo.run_ids() if r != first]
        assert _result(repo, second) == "v2 reviewed-2"  # the new code, as the revision says
        assert (repo.root / "train.py").read_text() == RESULT_SCRIPT  # the clone untouched
        meta = repo.meta(second)
        tree = git(repo.root, "rev-parse", "origin/main^{tree}")
        assert meta["tree"] == tree
        snapshot = git(repo.remote or repo.root, "show", f"trainops/state:{_snapshot(repo)}")
        assert f"# source tree: {tree}" in snapshot
    finally:
        repo.cleanup()
        if other is not None:
            other.cleanup()


def _snapshot(repo: UserRepo) -> str:
    state = repo.state()["t"]
    return str(state.runs[-1].snapshot)


def test_editing_the_working_tree_during_a_local_run_changes_nothing_it_runs(
    tmp_path: Path,
) -> None:
    repo = UserRepo.create(tmp_path, {"t": manifest("t", {})})
    try:
        hold = repo.hold_path("t")
        repo.write("train.py", RESULT_SCRIPT)
        repo.write("payload.txt", "committed")
        repo.write_job("t", manifest("t", {"hold": hold}))
        repo.commit("v1")
        repo.apply_ok()
        (run_id,) = repo.run_ids()
        repo.wait_status(run_id, {"running"})
        # Someone edits the clone and checks out other files while the run waits.
        repo.write("train.py", RESULT_SCRIPT.replace('"v1"', '"edited"'))
        repo.write("payload.txt", "edited")
        git(repo.root, "clean", "-xfdq", "-e", ".trainops")
        repo.release("t")
        repo.wait_status(run_id, {"succeeded", "failed"})
        assert repo.status(run_id)["status"] == "succeeded", repo.status(run_id)
        assert _result(repo, run_id) == "v1 committed"
    finally:
        repo.cleanup()


def test_a_ray_run_ships_the_applied_commit_not_the_checked_out_working_tree(
    tmp_path: Path, ray_head: RayHead, monkeypatch: MonkeyPatch
) -> None:
    """The zip a Ray run gets is the submitted commit's workdir (serve's case: the clone is at
    an older commit, with an untracked credential file lying around)."""
    from trainops.manifest import Job, RayConfig, TrainingJob
    from trainops.providers.base import Submission, input_hash
    from trainops.providers.ray import RayProvider
    from trainops.state.model import Health
    from trainops.yamlsource import Document

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    show = "import os; print('version', open('version.txt').read().strip(), os.listdir('.'))"
    root = make_repo(tmp_path / "r", {"w/version.txt": "v1\n", "w/show.py": show})
    old = git(root, "rev-parse", "HEAD")
    (root / "w" / "version.txt").write_text("v2\n")
    git(root, "commit", "-qam", "v2")
    new = git(root, "rev-parse", "HEAD")
    git(root, "checkout", "-q", old)  # the clone's files stay at v1
    (root / "w" / "gha-creds-abc.json").write_text(SA_JSON)
    data = {
        "apiVersion": "trainops/v1",
        "kind": "TrainingJob",
        "metadata": {"name": "shows"},
        "spec": {"provider": "ray", "command": ["python", "show.py"], "workdir": "w"},
    }
    job = Job(TrainingJob.model_validate(data), Document("jobs/shows.yaml", 0, data))
    revision = secrets.token_hex(6)
    sub = Submission(job, revision, 1, {}, input_hash({}), "s.yaml", source_commit=new)
    provider = RayProvider(
        root, RayConfig(output_uri=str(tmp_path / "out")), environ={"RAY_ADDRESS": ray_head.address}
    )
    ref = provider.submit(sub)
    deadline = time.monotonic() + 120
    while not (seen := provider.observe([ref.run_id])[ref.run_id]).health.terminal:
        assert time.monotonic() < deadline, seen
        time.sleep(0.2)
    assert seen.health is Health.SUCCEEDED, provider.logs(ref.run_id, 50)
    printed = provider.logs(ref.run_id, 100)
    assert "version v2" in printed
    assert "gha-creds-abc.json" not in printed


# ---- once more, as an attacker: links, submodules ------------------------------------------


def test_a_committed_link_out_of_the_tree_and_a_submodule_are_left_out_never_read(
    tmp_path: Path,
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("db password hunter2\n")
    root = make_repo(tmp_path / "r", {"d/a.txt": "one", "w/train.py": "print(1)\n"})
    for folder in ("d", "w"):
        (root / folder / "leak").symlink_to(secret)
        (root / folder / "up").symlink_to("../../secret.txt")
        head = git(root, "rev-parse", "HEAD")
        git(root, "update-index", "--add", "--cacheinfo", f"160000,{head},{folder}/sub")
        git(root, "add", f"{folder}/leak", f"{folder}/up")
    git(root, "commit", "-qm", "links and a submodule")
    commit = Commit.resolve(root)
    pkg = package(commit, "d", "d")
    assert pkg.files == ("a.txt",) and b"hunter2" not in pkg.content
    left = dict(pkg.left_out)
    assert left == {
        "leak": "symlink (not followed)",
        "up": "symlink (not followed)",
        "sub": "submodule (not packaged)",
    }
    content = pack(commit, "w", 10**6)
    assert _zip_names(content) == ["train.py"] and b"hunter2" not in content


def test_a_local_workdir_that_is_a_committed_link_out_of_the_tree_is_refused_before_a_claim(
    tmp_path: Path,
) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "train.py").write_text("open('/dev/null')\n")
    repo = UserRepo.create(tmp_path, {"t": manifest("t", {}, workdir="w")})
    try:
        (repo.root / "w").symlink_to(outside)
        repo.commit("workdir is a link")
        (repo.root / "w").unlink()  # the working tree no longer shows it: the commit does
        (repo.root / "w").mkdir()
        (repo.root / "w" / "train.py").write_text("print(1)\n")
        result = repo.trainops("apply", "--allow-dirty")
        assert repo.run_ids() == [], explain(result)
        assert result.returncode != 0  # validate refuses the commit's link; the provider too
    finally:
        repo.cleanup()


# ---- the `.gitignore` rules come from what is packaged, not from the disk ------------------


def test_a_working_tree_gitignore_edit_changes_nothing_in_a_package_of_the_commit(
    tmp_path: Path,
) -> None:
    root = make_repo(tmp_path / "r", {"data/p/a.txt": "a", "data/p/b.txt": "b"})
    (root / "data/p/.gitignore").write_text("a.txt\n")  # a.txt stays tracked: the rule holds
    git(root, "add", "data/p/.gitignore")
    git(root, "commit", "-qm", "ignore a")
    commit = Commit.resolve(root)
    assert package(commit, "imgs", "data/p").files == (".gitignore", "b.txt")
    # A pull request's checkout (or a CI step) rewrites .gitignore on disk, staged or not.
    (root / "data/p/.gitignore").write_text("b.txt\n")
    (root / ".gitignore").write_text("*.txt\n")
    pkg = package(commit, "imgs", "data/p")
    assert pkg.files == (".gitignore", "b.txt")
    assert ("a.txt", ".gitignore") in pkg.left_out
    # plan's view is the index's: an unstaged edit does not change it either, a staged one does
    assert package(WorkingTree(root), "imgs", "data/p").files == (".gitignore", "b.txt")
    git(root, "add", "data/p/.gitignore")
    assert package(WorkingTree(root), "imgs", "data/p").files == (".gitignore", "a.txt")
    assert package(commit, "imgs", "data/p").files == (".gitignore", "b.txt")


def test_a_gitignore_only_in_the_commit_applies_though_the_working_tree_lost_it(
    tmp_path: Path,
) -> None:
    root = make_repo(tmp_path / "r", {"data/p/a.txt": "a", "data/p/b.txt": "b"})
    (root / ".gitignore").write_text("data/p/a.txt\n")
    git(root, "add", ".gitignore")
    git(root, "add", "-f", "data/p/a.txt")
    git(root, "commit", "-qm", "ignore a")
    (root / ".gitignore").unlink()
    git(root, "rm", "-q", "--cached", ".gitignore")
    commit = Commit.resolve(root)
    assert package(commit, "imgs", "data/p").files == ("b.txt",)
    assert package(WorkingTree(root), "imgs", "data/p").files == ("a.txt", "b.txt")


def test_many_gitignore_files_are_read_through_one_git_process(
    tmp_path: Path, monkeypatch: MonkeyPatch
) -> None:
    """Each `.gitignore` blob was one `git cat-file blob` process: a tree of 40 started 40. A
    `git` earlier on PATH logs every call and runs the real one."""
    n = 40
    root = make_repo(
        tmp_path / "r",
        {f"data/p/d{i}/{name}": name for i in range(n) for name in ("a.txt", "b.txt")},
    )
    for i in range(n):
        (root / f"data/p/d{i}/.gitignore").write_text("a.txt\n")
    git(root, "add", "data")
    git(root, "commit", "-qm", "ignore every a.txt")
    log, bin_dir = tmp_path / "git.log", tmp_path / "bin"
    bin_dir.mkdir()
    wrapper = bin_dir / "git"
    real = shutil.which("git")
    assert real is not None
    wrapper.write_text(
        f'#!/bin/sh\necho "$1 $2" >> {shlex.quote(str(log))}\nexec {shlex.quote(real)} "$@"\n'
    )
    wrapper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    for source, cat_files in ((Commit.resolve(root), 2), (WorkingTree(root), 1)):
        log.write_text("")
        pkg = package(source, "imgs", "data/p")
        assert pkg.files == tuple(
            sorted(f"d{i}/{name}" for i in range(n) for name in (".gitignore", "b.txt"))
        )
        assert len(pkg.left_out) == n
        calls = log.read_text().splitlines()
        # the .gitignore blobs, and (a commit's) the packaged files: one process each
        assert [c for c in calls if c.startswith("cat-file")] == ["cat-file --batch"] * cat_files, (
            calls
        )


def test_a_committed_path_too_long_to_unpack_is_left_out_not_a_crash(tmp_path: Path) -> None:
    """git's trees hold names of any length; a zip header holds at most 65,535 bytes (struct
    error, a traceback) and no machine unpacks a path over PATH_MAX. Built with `git mktree`,
    as a pushed commit can be: no file system is involved."""
    root = make_repo(tmp_path / "r", {"data/p/ok.txt": "ok"})
    blob = git(root, "hash-object", "-w", "--stdin", input="deep")
    tree = git(root, "mktree", input=f"100644 blob {blob}\tf.txt\n")
    for i in range(300):
        tree = git(root, "mktree", input=f"040000 tree {tree}\td{i:03d}{'x' * 246}\n")
    ok = git(root, "rev-parse", "HEAD:data/p/ok.txt")
    p = git(root, "mktree", input=f"100644 blob {ok}\tok.txt\n040000 tree {tree}\tdeep\n")
    data = git(root, "mktree", input=f"040000 tree {p}\tp\n")
    top = git(root, "mktree", input=f"040000 tree {data}\tdata\n")
    commit = git(root, "commit-tree", top, "-p", "HEAD", "-m", "long", input="")
    pkg = package(Commit(root, commit), "imgs", "data/p")
    assert _zip_names(pkg.content) == ["ok.txt"]
    assert [why for _, why in pkg.left_out] == [
        "name too long to unpack (a path over 4,096 bytes or a part over 255)"
    ]
    assert all(len(path) < 200 for path, _ in pkg.left_out)
