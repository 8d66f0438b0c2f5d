"""The credential grep runs after every end-to-end test (tests/support/credentials.py)."""

from tests.support.credentials import credential_grep

__all__ = ["credential_grep"]
