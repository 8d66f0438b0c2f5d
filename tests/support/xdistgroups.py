"""`@pytest.mark.xdist_group` as `--dist loadgroup` reads it, whatever pytest keeps a node id in.

pytest-xdist's `loadgroup` (3.8: `xdist/remote.py`, `WorkerInteractor.
pytest_collection_modifyitems`) tells the scheduler a test's group by renaming the test on the
worker: `item._nodeid = f"{item.nodeid}@{group}"`, and `LoadGroupScheduling._split_scope` reads
the group back from what follows the last `@` of the ids the worker reports. pytest 9.2 no longer
keeps the id in `_nodeid`: `Node.nodeid` is `str(self._id)`, a structured `NodeId`
(`_pytest/nodes.py`, `_pytest/nodeid.py`), so xdist's assignment lands in an attribute nobody reads,
every test stays its own scope and a group's tests are spread over every worker (each of them
starting its own Ray head).

`GroupIds` runs after xdist's hook and gives each grouped item the id xdist meant to give it,
through `_id` when pytest has one; where xdist's own renaming worked (pytest before 9.2) the id
already ends with the suffix and nothing changes.
"""

from __future__ import annotations

import pytest


def group_suffix(item: pytest.Item) -> str | None:
    """`@name` (or `@a_b` for several), exactly as xdist 3.8's worker builds it."""
    names = {
        str(mark.args[0] if mark.args else mark.kwargs.get("name", "default"))
        for mark in item.iter_markers("xdist_group")
    }
    return f"@{'_'.join(sorted(names))}" if names else None


class GroupIds:
    """A plugin for xdist workers of a `--dist loadgroup` run (xdist sets `loadgroup` there)."""

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(
        self, config: pytest.Config, items: list[pytest.Item]
    ) -> None:
        if not getattr(config.option, "loadgroup", False):  # set on workers only
            return
        for item in items:
            suffix = group_suffix(item)
            if suffix is None or item.nodeid.endswith(suffix):
                continue
            base = item.nodeid
            meant = item.__dict__.pop("_nodeid", None)  # what xdist wrote, unread by pytest 9.2
            grouped = meant if meant == base + suffix else base + suffix
            if hasattr(item, "_id"):
                from _pytest.nodeid import NodeId  # pytest >= 9.2: the id Node.nodeid reads

                item._id = NodeId.parse(grouped)  # str() of it is `grouped`, verbatim
            else:
                item._nodeid = grouped
            if item.nodeid != grouped:
                raise pytest.UsageError(
                    f"cannot put {base} in its xdist group: this pytest keeps node ids "
                    "somewhere tests/support/xdistgroups.py does not know"
                )


def register(config: pytest.Config) -> None:
    if not config.pluginmanager.has_plugin("trainops-xdist-group-ids"):
        config.pluginmanager.register(GroupIds(), "trainops-xdist-group-ids")
