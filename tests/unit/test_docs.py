"""The project's own docs: the manifest reference is generated from the models and cannot drift;
every field has its prose; the architecture page names modules that exist."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from trainops.reference import PAGE, manifest_reference, undocumented

PROJECT = Path(__file__).resolve().parents[2]


def test_the_committed_manifest_reference_is_the_generated_one() -> None:
    assert (PROJECT / PAGE).read_text() == manifest_reference()


def test_every_field_of_the_models_has_prose() -> None:
    assert undocumented() == []


def test_reference_check_fails_when_the_page_is_stale(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / PAGE).write_text("# old\n")
    argv = [sys.executable, "-m", "trainops.reference", "--check", str(tmp_path)]
    stale = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    assert stale.returncode == 1 and "out of date" in stale.stderr
    argv.remove("--check")
    assert subprocess.run(argv, capture_output=True, timeout=30, check=False).returncode == 0
    assert (tmp_path / PAGE).read_text() == manifest_reference()


def test_the_architecture_page_names_modules_that_exist() -> None:
    text = (PROJECT / "docs" / "architecture.md").read_text()
    src = PROJECT / "src" / "trainops"
    for name in set(re.findall(r"`([a-z_/]+(?:\.py|/))`", text)):
        found = (src / name).exists() or any(src.rglob(name.rstrip("/")))
        assert found or (PROJECT / name).exists(), name


def test_every_manifest_example_of_the_docs_validates(tmp_path: Path) -> None:
    """Each ```yaml block of docs/*.md and the README that is a TrainingJob (a sweep's too) is a
    valid manifest on its own, in a repository with `trainops init`'s trainops.yaml."""
    from trainops.repo import WorkingTree
    from trainops.validate import validate_source

    config = PROJECT / "src/trainops/templates/init/trainops.yaml"
    examples = [
        (f"{doc.name}#{i}", block)
        for doc in [*sorted((PROJECT / "docs").glob("*.md")), PROJECT / "README.md"]
        for i, block in enumerate(re.findall(r"```yaml\n(.*?)```", doc.read_text(), re.S))
        if "kind: TrainingJob" in block
    ]
    assert len(examples) >= 2  # a sweep of sweeps.md, a job of the README
    for label, block in examples:
        repo = tmp_path / label.replace("#", "-")
        (repo / "jobs").mkdir(parents=True)
        (repo / "trainops.yaml").write_bytes(config.read_bytes())
        (repo / "jobs/example.yaml").write_text(block)
        result = validate_source(WorkingTree(repo))
        assert [str(p) for p in result.problems] == [], label
        assert result.jobs, label
