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
    assert module.main(["--runs", "250", "--finished", "3", "--burst", "120"]) == 0
    out = capsys.readouterr().out.splitlines()
    # 3 finished: 3 pages of the active, 1 of the finished (a single one would be an inspect)
    assert "  observe (active list, finished list, inspects): 4 calls" in out[1]
    assert "  inspect-per-job (inspect_job each):             250 calls" in out[2]
    # 120 finished at once: 2 pages of the 130 still active, 2 of the 120 finished, no inspect
    assert "  observe (active list, finished list, inspects): 4 calls" in out[5]
    assert "target <= 5: met" in out[7]
