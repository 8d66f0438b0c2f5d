"""A user's repository as the commands see it: root, source of desired state, config, lock.

Validation needs the lock to check training inputs offline (DESIGN §5); this module wires the two
so that `validate`, `plan` and `apply` see exactly the same problems.
"""

from __future__ import annotations

from pathlib import Path

from trainops.errors import UsageError
from trainops.repo import Source, WorkingTree
from trainops.validate import Validation, validate_source


def find_root(root: Path) -> Path:
    root = root.resolve()
    if not root.is_dir():
        raise UsageError(f"{root}: no such directory")
    return root


def validate_workspace(root: Path, source: Source | None = None) -> Validation:
    root = find_root(root)
    source = source or WorkingTree(root)
    return validate_source(source)
