"""The credential grep runs after every end-to-end test (tests/support/credentials.py)."""

from __future__ import annotations

from tests.support.credentials import credential_grep
from tests.support.rayhead import ray_head

__all__ = ["credential_grep", "ray_head"]
