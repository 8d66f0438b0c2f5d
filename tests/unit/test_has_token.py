"""`has_token` (yamlsource/marks.py) answers as TOKEN does: its substring test before the
regex never lets a token-looking value through."""

from __future__ import annotations

import random
import string

import pytest

from trainops.yamlsource.marks import TOKEN, has_token

TOKENS = [
    "r8_" + "a" * 20,
    "hf_" + "B" * 20,
    "AKIA" + "A" * 16,
    "ASIA" + "Z9" * 8,
    "ghp_" + "x" * 30,
    "gho_" + "x" * 30,
    "ghs_" + "x" * 30,
    "github_pat_" + "x_" * 15,
]


@pytest.mark.parametrize("token", TOKENS)
def test_every_kind_of_token_is_found_inside_text(token: str) -> None:
    for text in (token, f"key: {token}", f"https://example.com/?t={token}&x=1"):
        assert has_token(text) and TOKEN.search(text)


def test_has_token_agrees_with_the_regex() -> None:
    rng = random.Random(13)
    alphabet = string.ascii_letters + string.digits + "_-/:. "
    pieces = ["r8_", "hf_", "AKIA", "ASIA", "ghp_", "github_pat_", "_", ""]
    found = 0
    for _ in range(20_000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
        text += rng.choice(pieces) + "".join(
            rng.choice(string.ascii_uppercase + string.digits) for _ in range(rng.randint(0, 34))
        )
        assert has_token(text) == (TOKEN.search(text) is not None), text
        found += has_token(text)
    assert found > 500  # the cases did hold tokens
