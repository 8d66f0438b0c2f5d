"""benchmarks/input_fingerprints.py keeps meeting its request-count target on a small count."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest


def test_one_head_per_distinct_url_whatever_the_number_of_jobs(
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "input_fingerprints.py"
    spec = importlib.util.spec_from_file_location("input_fingerprints", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--jobs", "200", "--urls", "10", "--delay", "0", "--counts-only"]) == 0
    out = capsys.readouterr().out
    assert "batch (check_inputs):        10 HEAD requests" in out
    assert "runs with a fingerprint:     200 of 200" in out
