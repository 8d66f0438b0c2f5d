"""Fixtures shared by the integration tests: the session's Ray head (tests/support/rayhead.py)."""

from __future__ import annotations

from tests.support.rayhead import ray_head

__all__ = ["ray_head"]
