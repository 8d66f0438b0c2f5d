"""The scrubber's shortcuts (trainops.scrub): a pattern is only scanned for where its literal part
occurs, so each token shape must have its prefix listed, or tokens of that shape would pass."""

from __future__ import annotations

import re

import pytest

from trainops.scrub import _TOKEN_PREFIXES, REDACTED, TOKEN_SHAPE, Scrubber

# One token of each shape TOKEN_SHAPE knows, in the order of its alternatives.
SAMPLES = [
    "r8_" + "a" * 24,
    "hf_" + "b" * 24,
    "AKIA" + "C" * 16,
    "ASIA" + "D" * 16,
    *(f"gh{k}_" + "e" * 36 for k in "opsur"),
    "github_pat_" + "f" * 40,
    "whsec_" + "g" * 24,
]


def test_every_alternative_of_the_token_shape_has_a_sample() -> None:
    # top-level alternatives of the pattern, with gh[opsur]_ counted once per letter
    alternatives = TOKEN_SHAPE.pattern.count("|") + 1 + len("opsur") - 1
    assert len(SAMPLES) == alternatives


@pytest.mark.parametrize("token", SAMPLES)
def test_each_shape_has_its_prefix_listed_and_is_masked(token: str) -> None:
    assert TOKEN_SHAPE.fullmatch(token)
    assert any(prefix in token for prefix in _TOKEN_PREFIXES)
    text = f"started with {token} in the log"
    assert Scrubber()(text) == f"started with {REDACTED} in the log"


def test_userinfo_in_a_url_is_masked_and_text_without_one_is_unchanged() -> None:
    scrub = Scrubber()
    assert scrub("push to https://bot:s3cret@git.example.com/r.git") == (
        f"push to https://{REDACTED}@git.example.com/r.git"
    )
    plain = "no url here, just a@b and a://b " * 1000
    assert scrub(plain) == plain
    assert re.search("s3cret", scrub("x https://u:s3cret@h y")) is None
