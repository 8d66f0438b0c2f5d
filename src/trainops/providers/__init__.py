"""Providers: one adapter per training service, listed in a literal registry.

Each factory imports its provider module when called, so a provider's client library (the
`replicate` package, ...) loads only when a job of that provider needs it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from trainops.lockfile import Lock
    from trainops.manifest import Config
    from trainops.providers.base import Provider


def _local(root: Path, config: Config, lock: Lock | None) -> Provider:
    from trainops.providers.local import LocalProvider

    return LocalProvider(root, config.providers.local.runs_dir)


def _replicate(root: Path, config: Config, lock: Lock | None) -> Provider:
    from trainops.providers.replicate import ReplicateProvider

    return ReplicateProvider.from_config(config.providers.replicate, lock=lock)


REGISTRY: dict[str, Callable[[Path, Config, Lock | None], Provider]] = {
    "local": _local,
    "replicate": _replicate,
}


class Providers:
    """The providers one command uses, each built on first use."""

    def __init__(self, root: Path, config: Config, lock: Lock | None = None) -> None:
        self._root, self._config, self._lock = root, config, lock
        self._made: dict[str, Provider] = {}

    def __getitem__(self, name: str) -> Provider:
        if name not in self._made:
            self._made[name] = REGISTRY[name](self._root, self._config, self._lock)
        return self._made[name]

    def inject(self, name: str, provider: Provider) -> None:
        """Use `provider` for `name` (tests and embedders)."""
        self._made[name] = provider
