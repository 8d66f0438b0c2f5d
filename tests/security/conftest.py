"""The credential grep runs after every attack here (tests/support/credentials.py)."""

from tests.support.credentials import credential_grep

__all__ = ["credential_grep"]
