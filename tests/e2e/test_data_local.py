"""spec.data with the local provider (DESIGN §18), as a user runs it: `plan` lists each package
(file count, size, what was left out), `apply` hands the run a path to exactly the packaged files,
and the package's digest is part of the revision.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.workspace import UserRepo, explain, manifest

LIST_SCRIPT = """\
import json, os
params = json.load(open(os.environ["TRAINOPS_INPUT"]))
root = params["input_images"]
found = sorted(
    os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(root) for f in fs
)
with open(params["report"], "a") as out:
    out.write(json.dumps({"path": root, "files": found}) + "\\n")
"""


def _repo(tmp_path: Path) -> tuple[UserRepo, Path]:
    report = tmp_path / "report.jsonl"
    job = manifest(
        "portraits",
        {"report": str(report)},
        command=["python", "list_data.py"],
        data={"input_images": "data/portraits/"},
    )
    repo = UserRepo.create(tmp_path, {"portraits": job})
    repo.write("list_data.py", LIST_SCRIPT)
    repo.write("data/portraits/a.txt", "one")
    repo.write("data/portraits/sub/b.txt", "two")
    repo.write("data/portraits/.env", "SECRET=1")
    repo.write("data/portraits/id_rsa", "-----BEGIN OPENSSH PRIVATE KEY-----\n")
    repo.commit("data")
    return repo, report


def _reports(report: Path) -> list[dict[str, object]]:
    if not report.exists():
        return []
    return [json.loads(line) for line in report.read_text().splitlines()]


def test_plan_lists_the_package_and_what_was_left_out(tmp_path: Path) -> None:
    repo, _ = _repo(tmp_path)
    try:
        repo.write("data/portraits/scratch.tmp", "x")
        repo.write(".gitignore", ".trainops/\n__pycache__/\n*.tmp\n")
        result = repo.trainops("plan")
        assert result.returncode == 0, explain(result)
        line = next(x for x in result.stdout.splitlines() if "input_images:" in x)
        assert "portraits: input_images: data/portraits/ -> 2 files" in line
        for left in (".env (environment file)", "id_rsa (private key)", "scratch.tmp (.gitignore)"):
            assert left in line
        markdown = repo.trainops("plan", "--output", "markdown")
        assert "#### Data packages" in markdown.stdout
    finally:
        repo.cleanup()


def test_apply_hands_the_run_the_packaged_files_and_an_edit_is_a_new_revision(
    tmp_path: Path,
) -> None:
    repo, report = _repo(tmp_path)
    try:
        repo.apply_ok()
        repo.wait_all_terminal()
        first = _reports(report)
        assert [r["files"] for r in first] == [["a.txt", "sub/b.txt"]]
        assert ".trainops/data/" in str(first[0]["path"])
        rev = repo.revisions()["portraits"]
        repo.apply_ok()  # unchanged data: nothing new
        repo.wait_all_terminal()
        assert len(_reports(report)) == 1
        repo.write("data/portraits/a.txt", "one, edited")
        repo.commit("edit one file")
        repo.apply_ok()
        repo.wait_all_terminal()
        assert repo.revisions()["portraits"] != rev
        runs = _reports(report)
        assert len(runs) == 2 and runs[1]["path"] != runs[0]["path"]
    finally:
        repo.cleanup()


def test_missing_and_outside_data_paths_are_invalid_before_anything_runs(tmp_path: Path) -> None:
    repo, _report = _repo(tmp_path)
    try:
        repo.write_job(
            "portraits",
            manifest("portraits", command=["python", "x.py"], data={"input_images": "data/none/"}),
        )
        result = repo.trainops("validate")
        assert result.returncode == 1, explain(result)
        assert "jobs/portraits.yaml:" in result.stderr + result.stdout
        assert (
            "data/none is not a file or folder of the repository" in result.stderr + result.stdout
        )
        assert "Traceback" not in result.stderr
        repo.write_job(
            "portraits",
            manifest("portraits", command=["python", "x.py"], data={"input_images": "../etc/"}),
        )
        result = repo.trainops("validate")
        assert result.returncode == 1 and "inside the repository" in result.stderr + result.stdout
    finally:
        repo.cleanup()
