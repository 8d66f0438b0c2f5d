"""A user's repository as the commands see it: root, source of desired state, config, lock.

Validation needs the lock to check training inputs offline (DESIGN §5), and revisions need it to
resolve trainer versions (§3); this module wires them so that `validate`, `plan` and `apply` see
exactly the same problems and revisions.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from trainops.errors import UsageError
from trainops.manifest import Config, ReplicateSpec, revision
from trainops.plan import Desired, Limits, Target
from trainops.repo import CONFIG_FILE, LOCK_FILE, Commit, Source, WorkingTree, select
from trainops.validate import Validation, validate_source


def find_root(root: Path) -> Path:
    root = root.resolve()
    if not root.is_dir():
        raise UsageError(f"{root}: no such directory")
    return root


@dataclass
class Workspace:
    root: Path
    source: Source
    validation: Validation

    @property
    def config(self) -> Config:
        return self.validation.config

    @classmethod
    def open(cls, root: Path, *, ref: str | None = None) -> Workspace:
        """The working tree (`ref=None`), or the manifests of commit `ref`."""
        root = find_root(root)
        source: Source = WorkingTree(root) if ref is None else Commit.resolve(root, ref)
        return cls(root, source, validate_source(source))

    @property
    def commit(self) -> str:
        return self.source.sha if isinstance(self.source, Commit) else ""

    def desired(self) -> Desired:
        v = self.validation
        targets = {name: Target(job, revision(job.spec, self.trainer(job.spec)))
                   for name, job in v.jobs.items()}
        return Desired(targets, frozenset(v.invalid), v.complete)

    def trainer(self, spec: object) -> str | None:
        """The trainer as `owner/name:version`, its version resolved through the lock."""
        if isinstance(spec, ReplicateSpec):
            return spec.trainer
        return None

    def limits(self) -> Limits:
        return Limits(self.config.policy, dict(self.config.prices_usd_per_second))

    def dirty_manifests(self) -> list[str]:
        """Manifest, config and lock files whose working-tree content differs from HEAD."""
        paths = [CONFIG_FILE, LOCK_FILE, *select(WorkingTree(self.root), self.config.jobs)]
        prefixes = {p.split("*")[0].rsplit("/", 1)[0] for p in self.config.jobs}
        proc = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=all", "--", *paths,
             *sorted(p for p in prefixes if p)],
            cwd=self.root, capture_output=True, text=True, check=False)
        return sorted({line[3:] for line in proc.stdout.splitlines() if line.strip()})


def validate_workspace(root: Path, source: Source | None = None) -> Validation:
    root = find_root(root)
    return validate_source(source or WorkingTree(root))
