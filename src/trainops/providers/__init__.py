"""Providers: one adapter per training service, listed in a literal registry.

Each factory imports its provider module when called, so a provider's client library (the
`replicate` package, ...) loads only when a job of that provider needs it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from trainops.lockfile import Lock
    from trainops.manifest import Config
    from trainops.providers.base import Provider
    from trainops.state.model import Run
    from trainops.state.trust import RunCheck


def _local(root: Path, config: Config, lock: Lock | None) -> Provider:
    from trainops.providers.local import LocalProvider

    return LocalProvider(root, config.providers.local.runs_dir)


def _replicate(root: Path, config: Config, lock: Lock | None) -> Provider:
    from trainops.providers.replicate import ReplicateProvider

    return ReplicateProvider.from_config(config.providers.replicate, lock=lock)


def _huggingface(root: Path, config: Config, lock: Lock | None) -> Provider:
    from trainops.providers.huggingface import HuggingFaceProvider

    return HuggingFaceProvider.from_config(config.providers.huggingface)


def _ray(root: Path, config: Config, lock: Lock | None) -> Provider:
    from trainops.providers.ray import RayProvider

    return RayProvider(root, config.providers.ray)


def _sagemaker(root: Path, config: Config, lock: Lock | None) -> Provider:
    from trainops.providers.sagemaker import SageMakerProvider

    return SageMakerProvider.from_config(config.providers.sagemaker)


REGISTRY: dict[str, Callable[[Path, Config, Lock | None], Provider]] = {
    "local": _local,
    "replicate": _replicate,
    "huggingface": _huggingface,
    "ray": _ray,
    "sagemaker": _sagemaker,
}


# Whether a recorded run can be a job's (its id and outputs, as the provider issues them): the
# state branch is input, and a forged record must not make trainops act on another job's run.
# Each provider's check, imported when a run of that provider is first read.
def _local_run() -> RunCheck:
    from trainops.providers.local import check_run

    return check_run


def _replicate_run() -> RunCheck:
    from trainops.providers.replicate import check_run

    return check_run


def _huggingface_run() -> RunCheck:
    from trainops.providers.huggingface import check_run

    return check_run


def _ray_run() -> RunCheck:
    from trainops.providers.ray import check_run

    return check_run


def _sagemaker_run() -> RunCheck:
    from trainops.providers.sagemaker import check_run

    return check_run


RUN_CHECKS: dict[str, Callable[[], RunCheck]] = {
    "local": _local_run,
    "replicate": _replicate_run,
    "huggingface": _huggingface_run,
    "ray": _ray_run,
    "sagemaker": _sagemaker_run,
}
_RUN_CHECKED: dict[str, RunCheck] = {}  # each provider's check once imported


def check_run(job: str, run: Run) -> str:
    """Why `run` cannot be a run of `job` (empty when it can). For `parse_state`, once per run
    of every state file read."""
    check = _RUN_CHECKED.get(run.provider)
    if check is None:
        if run.provider not in RUN_CHECKS:
            return f"provider {run.provider!r} is not one trainops knows"
        check = _RUN_CHECKED[run.provider] = RUN_CHECKS[run.provider]()
    return check(job, run)


class Providers:
    """The providers one command (one pass) uses, each built on first use. They share one wait
    budget (`trainops.retry.Budget`): a pass waits at most `PASS_BUDGET` seconds in all."""

    def __init__(self, root: Path, config: Config, lock: Lock | None = None) -> None:
        from trainops.retry import Budget

        self._root, self._config, self._lock = root, config, lock
        self._made: dict[str, Provider] = {}
        self.budget = Budget()

    def __getitem__(self, name: str) -> Provider:
        if name not in self._made:
            made = REGISTRY[name](self._root, self._config, self._lock)
            policy = getattr(made, "retry", None)
            if policy is not None:
                policy.budget = self.budget  # providers built here sleep for real
            self._made[name] = made
        return self._made[name]

    def unavailable(self, names: Iterable[str]) -> dict[str, str]:
        """Why each of `names` cannot be used from here now, for those that cannot (the
        `Availability` capability; a provider without it is always available)."""
        from trainops.providers.base import Availability

        out = {}
        for name in sorted(set(names)):
            if name not in REGISTRY and name not in self._made:
                continue  # validation reports an unknown provider
            provider = self[name]
            why = provider.unavailable() if isinstance(provider, Availability) else ""
            if why:
                out[name] = why
        return out

    def inject(self, name: str, provider: Provider) -> None:
        """Use `provider` for `name` (tests and embedders)."""
        self._made[name] = provider
