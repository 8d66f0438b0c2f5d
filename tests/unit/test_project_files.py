"""The project's own packaging: what a user of the wheel gets (README as long description,
LICENSE, project URLs) must stand on its own, without files outside the repository."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]


def _prose(markdown: str) -> str:
    """The README without its code blocks (a manifest's `$schema=../schemas/...` is relative to
    the manifest's own folder, not to the README)."""
    return re.sub(r"```.*?```", "", markdown, flags=re.S)


def test_license_is_the_apache_2_text_pyproject_names() -> None:
    meta = tomllib.loads((PROJECT / "pyproject.toml").read_text())["project"]
    assert meta["license"] == {"text": "Apache-2.0"}
    text = (PROJECT / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text


def test_pyproject_names_the_project_urls() -> None:
    urls = tomllib.loads((PROJECT / "pyproject.toml").read_text())["project"]["urls"]
    assert {"Homepage", "Repository", "Issues", "Documentation"} <= set(urls)
    assert all(u.startswith("https://") for u in urls.values())


def test_readme_points_only_inside_the_repository() -> None:
    prose = _prose((PROJECT / "README.md").read_text())
    assert "../" not in prose
    for target in re.findall(r"\]\(([^)#]+)\)", prose):
        if not re.match(r"https?://", target):
            assert (PROJECT / target).exists(), target
    for path in re.findall(r"`((?:docs|jobs|schemas|src|tests|benchmarks)/[^`\s]*)`", prose):
        assert any(PROJECT.glob(re.sub(r"<[^>]*>", "*", path))), path
