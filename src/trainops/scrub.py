"""The one scrubber of DESIGN §13: no credential leaves trainops in anything it writes.

Every boundary passes its text through `scrub()`: the state store's save (files and commit
message), the CLI's stdout/stderr, the job summary and every request body sent to GitHub. It masks
the value of every credential variable trainops reads (`CREDENTIAL_ENV`, the configured Replicate
`token_env`, the names manifests pass in `spec.env`: `watch()` adds those), of any variable named
like a secret, token-shaped text (`r8_…`, `hf_…`, `AKIA…`, `ghp_…`, `github_pat_…`, and the
`whsec_…` webhook signing secret `serve` may fetch from Replicate, which no variable holds) and the
userinfo of URLs. Values shorter than `MIN_SECRET_CHARS` are not masked: a 3-character "token"
would otherwise shred every line it happens to occur in, and is no secret worth the name.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

__all__ = [
    "CREDENTIAL_ENV",
    "MIN_SECRET_CHARS",
    "REDACTED",
    "Scrubber",
    "is_credential_name",
    "scrub",
    "scrub_json",
    "scrubber",
    "watch",
    "watched",
]

# Every credential variable trainops (or a client library it drives) reads; `serve`'s own
# (trainops.serve.app, trainops.serve.webhooks) are named here too, not left to the name rule.
CREDENTIAL_ENV = (
    "REPLICATE_API_TOKEN",
    "GITHUB_TOKEN",
    "GH_TOKEN",
    "HF_TOKEN",
    "HUGGING_FACE_HUB_TOKEN",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "RAY_AUTH_TOKEN",  # Ray's client sends it to a token-auth cluster (RAY_AUTH_MODE=token)
    "TRAINOPS_SERVE_TOKEN",
    "TRAINOPS_GITHUB_WEBHOOK_SECRET",
    "TRAINOPS_REPLICATE_WEBHOOK_SECRET",
)
MIN_SECRET_CHARS = 8
REDACTED = "***"

_SECRET_NAME = re.compile(r"TOKEN|SECRET|KEY|PASSWORD|CREDENTIAL", re.IGNORECASE)
# Shapes of well-known credentials (DESIGN §13), masked even when no variable holds them.
TOKEN_SHAPE = re.compile(
    r"\b(?:r8_[A-Za-z0-9]{20,}|hf_[A-Za-z0-9]{20,}|(?:AKIA|ASIA)[0-9A-Z]{16}"
    r"|gh[opsur]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{30,}|whsec_[A-Za-z0-9+/=]{20,})"
)
# What every match of TOKEN_SHAPE contains (kept beside it: a new shape needs its prefix here).
_TOKEN_PREFIXES: tuple[str, ...] = ("r8_", "hf_", "AKIA", "ASIA", "github_pat_", "whsec_")
_TOKEN_PREFIXES += tuple(f"gh{kind}_" for kind in "opsur")
# https://user:token@host: git remotes and signed URLs carry credentials there.
_URL_USERINFO = re.compile(r"\b([a-zA-Z][a-zA-Z0-9+.-]*://)[^/\s@]+@")


def is_credential_name(name: str, also: Iterable[str] = ()) -> bool:
    """Whether a variable of this name holds a credential as the scrubber sees it: one of
    `CREDENTIAL_ENV` or `also` (a configured `token_env`), or named like a secret. The plan marks
    such names when a manifest passes them to a job (`spec.env`), for the reviewer."""
    return name in CREDENTIAL_ENV or name in set(also) or bool(_SECRET_NAME.search(name))


class Scrubber:
    """Masks the given secret values, token-shaped text and URL userinfo with `***`."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        values: set[str] = set()
        for secret in secrets:
            if len(secret) < MIN_SECRET_CHARS:
                continue
            values.add(secret)
            # The same value as it appears inside JSON text (a state file): quotes and
            # backslashes escaped, non-ASCII as \u escapes.
            values.add(json.dumps(secret)[1:-1])
            values.add(json.dumps(secret, ensure_ascii=False)[1:-1])
        self._secrets = sorted(values, key=len, reverse=True)  # a longer one may contain another

    @property
    def secrets(self) -> tuple[str, ...]:
        return tuple(self._secrets)

    @classmethod
    def from_env(cls, env: Mapping[str, str], names: Iterable[str] = ()) -> Scrubber:
        """The values of `CREDENTIAL_ENV`, of `names`, and of every variable named like a
        secret (*TOKEN*, *SECRET*, *KEY*, *PASSWORD*, *CREDENTIAL*)."""
        wanted = set(names) | set(CREDENTIAL_ENV)
        return cls(v for k, v in env.items() if k in wanted or _SECRET_NAME.search(k))

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        # Each pattern can only match where its literal part is: the plain substring tests
        # skip a scan of the whole text (megabytes, for a plan of thousands of jobs).
        if any(prefix in text for prefix in _TOKEN_PREFIXES):
            text = TOKEN_SHAPE.sub(REDACTED, text)
        if "://" in text and "@" in text:
            text = _URL_USERINFO.sub(rf"\1{REDACTED}@", text)
        return text


# Replaced, never changed in place: a thread reading the state branch ahead may build a
# scrubber while the main thread adds names.
_watched: frozenset[str] = frozenset()
# A job's base environment (DESIGN §13) names no secret: masking HOME or PATH would shred every
# path trainops prints or stores, so `watch` skips them even when a manifest lists them.
_NOT_SECRET = frozenset(
    {"HOME", "LANG", "LANGUAGE", "LOGNAME", "PATH", "PWD", "SHELL", "TERM", "TMPDIR", "TZ", "USER"}
)


def watch(names: Iterable[str]) -> None:
    """Also mask the values of these variables from now on: the Replicate `token_env` a config
    names, the variables manifests pass to jobs (`spec.env`). A value passed to jobs is treated
    as a secret wherever it appears, so it should not equal a job name or a path."""
    global _watched
    _watched = _watched | {
        n for n in names if n and n not in _NOT_SECRET and not n.startswith("LC_")
    }


def watched() -> frozenset[str]:
    """The names `watch()` added (handed to a local run's supervisor, a process of its own)."""
    return _watched


def scrubber(env: Mapping[str, str] | None = None, extra: Iterable[str] = ()) -> Scrubber:
    """The scrubber for `env` (default: this process's environment) and the watched names,
    also masking the values in `extra` (a token a client was handed directly)."""
    env = os.environ if env is None else env
    values = Scrubber.from_env(env, _watched)
    return Scrubber([*values.secrets, *extra]) if extra else values


def scrub(text: str, env: Mapping[str, str] | None = None) -> str:
    """`text` with every credential of `env` (default: this process's environment) masked."""
    return scrubber(env)(text)


def scrub_json(value: Any, scrub: Callable[[str], str]) -> Any:
    """Every string of a JSON value (keys too) scrubbed: a request body, before it is sent."""
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return {scrub_json(k, scrub): scrub_json(v, scrub) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrub_json(v, scrub) for v in value]
    return value
