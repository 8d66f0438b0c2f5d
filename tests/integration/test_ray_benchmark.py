"""benchmarks/reconcile_ray.py keeps meeting its target on a small count, on the session's head."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

from tests.support.rayhead import TIMEOUT, RayHead

pytestmark = TIMEOUT


def test_observe_is_one_call_however_many_ray_jobs_are_active(
    ray_head: RayHead, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RAY_ADDRESS", raising=False)  # the client would let it win
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "reconcile_ray.py"
    spec = importlib.util.spec_from_file_location("reconcile_ray", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--runs", "12", "--address", ray_head.address]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^ +12 active: observe 1 call\(s\) .* get-per-job 12 calls", out, re.M), out
    assert "target (1 call per observe pass): met" in out
