"""Fault injection for the crash-safety tests: `TRAINOPS_CRASHPOINT=<name>` (or `<name>#<n>`, the
n-th time) kills the process by SIGKILL at that point, as a power cut would. Unset, it costs one
environment lookup."""

from __future__ import annotations

import os
import signal

_hits: dict[str, int] = {}


def crashpoint(name: str) -> None:
    """Points, in the order one apply meets them: after-observe, before-push#1 (intents built,
    not yet published), after-intents, after-cancel, after-stage (spec.data uploaded, not yet
    submitted), after-submit, after-deliver, promote-moving (inside an alias move: a Hub ref
    deleted and not yet created, an S3 alias copied but its manifest not), after-promote,
    before-push#2 (run ids recorded, not yet published), after-save."""
    wanted = os.environ.get("TRAINOPS_CRASHPOINT")
    if not wanted:
        return
    _hits[name] = _hits.get(name, 0) + 1
    point, _, nth = wanted.partition("#")
    if point == name and (not nth or int(nth) == _hits[name]):
        os.kill(os.getpid(), signal.SIGKILL)
