"""The job summary of a GitHub Actions step (GITHUB_STEP_SUMMARY, DESIGN §11): where the plan
always goes, kept under GitHub's 1 MiB."""

from __future__ import annotations

import os

from trainops.github.comments import fit

__all__ = ["SUMMARY_MAX_BYTES", "append_summary"]

SUMMARY_MAX_BYTES = 1024 * 1024  # GitHub's limit for one step's job summary


def append_summary(path: str, markdown: str) -> list[str]:
    """Append to the job summary (GITHUB_STEP_SUMMARY), keeping it under GitHub's 1 MiB."""
    if not path:
        return []
    text = markdown if markdown.endswith("\n") else markdown + "\n"
    try:
        used = os.path.getsize(path) if os.path.exists(path) else 0
        room = SUMMARY_MAX_BYTES - used - 1
        if len(text.encode()) > room:
            text = fit(text, max(0, room // 4))  # 4 bytes per character at worst
        with open(path, "a", encoding="utf-8") as f:
            f.write(text)
    except OSError as exc:
        return [f"could not write the job summary {path}: {exc.strerror or exc}"]
    return []
