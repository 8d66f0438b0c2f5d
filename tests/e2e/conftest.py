"""The credential grep runs after every end-to-end test (tests/support/credentials.py).

The README e2e test's second shell block runs this test suite, which must not run the README test
again inside itself: there `TRAINOPS_README_E2E` is set and that file is not collected."""

from __future__ import annotations

import os

from tests.support.credentials import credential_grep
from tests.support.rayhead import ray_head

__all__ = ["credential_grep", "ray_head"]

collect_ignore = ["test_readme_fresh_clone.py"] if os.environ.get("TRAINOPS_README_E2E") else []
