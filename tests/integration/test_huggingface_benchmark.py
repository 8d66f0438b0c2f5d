"""benchmarks/reconcile_huggingface.py keeps meeting its target on a small count."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest


def test_observe_costs_pages_not_one_call_per_job(capsys: pytest.CaptureFixture[str]) -> None:
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "reconcile_huggingface.py"
    spec = importlib.util.spec_from_file_location("reconcile_huggingface", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--runs", "250", "--finished", "3"]) == 0
    out = capsys.readouterr().out
    assert "observe (paged list + inspect of the finished): 6 calls" in out  # 3 pages + 3
    assert "get-per-job (inspect_job each):                 250 calls" in out
