"""The import contracts of pyproject.toml `[tool.importlinter]` (layers, the pure planner, providers
independent of each other, click and the CLI, the lower layers, light validation, the foundation,
private modules, no circles inside a package or between the top-level ones), run in-process
through import-linter's API; and what import-linter cannot say: no import circle between any two
modules of `src/` (grimp), and no module importing another module's private name
(`from x import _y`).

Each contract is shown to fail: the contracts are run on a copy of the package, renamed, with one
violating import added.
"""

from __future__ import annotations

import ast
import re
import shutil
import sys
from pathlib import Path

import grimp
import importlinter.api  # noqa: F401  (configures import-linter: its readers, its contract types)
import pytest
from importlinter.application import output, use_cases
from importlinter.application.user_options import UserOptions
from importlinter.contracts.acyclic_siblings import AcyclicSiblingsContract
from importlinter.contracts.forbidden import ForbiddenContract
from importlinter.contracts.independence import IndependenceContract
from importlinter.contracts.layers import LayersContract
from importlinter.contracts.private_modules import PrivateModulesContract
from importlinter.domain.contract import registry

import trainops

PACKAGE = Path(trainops.__file__).resolve().parent  # the package under test, wherever it lives
PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"
# The contract types pyproject.toml uses (`lint-imports` registers the built-in ones itself).
for _type, _class in {
    "layers": LayersContract,
    "forbidden": ForbiddenContract,
    "independence": IndependenceContract,
    "private_modules": PrivateModulesContract,
    "acyclic_siblings": AcyclicSiblingsContract,
}.items():
    registry.register(_class, _type)


def options(root: str = "trainops") -> UserOptions:
    """The contracts of pyproject.toml, for the package `root` (a renamed copy in the tests that
    break them)."""
    read = use_cases.read_user_options(str(PYPROJECT))
    if root == "trainops":
        return read
    rename = re.compile(r"\btrainops\b")

    def moved(value: object) -> object:
        if isinstance(value, str):
            return rename.sub(root, value)
        if isinstance(value, list):
            return [moved(v) for v in value]
        return value

    return UserOptions(
        session_options={k: moved(v) for k, v in read.session_options.items()},
        contracts_options=[{k: moved(v) for k, v in c.items()} for c in read.contracts_options],
    )


def broken(opts: UserOptions) -> dict[str, str]:
    """The id of each broken contract -> import-linter's report of it."""
    ids = {c["name"]: c["id"] for c in opts.contracts_options}
    report = use_cases.create_report(opts, cache_dir=None)
    assert not report.could_not_run, report.invalid_contract_options
    found = {}
    for contract, check in report.get_contracts_and_checks():
        if not check.kept:
            with output.console.capture() as text:
                contract.render_broken_contract(check)
            found[ids[contract.name]] = text.get()
    return found


def test_the_contracts_hold() -> None:
    opts = options()
    assert [c["id"] for c in opts.contracts_options] == [
        "layers",
        "pure",
        "providers",
        "cli",
        "lower",
        "reconciler",
        "light",
        "foundation",
        "private",
        "acyclic",
    ]
    assert broken(opts) == {}


@pytest.fixture(scope="module")
def copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The package copied as `trainops_copy` (every `trainops` name renamed), on sys.path."""
    root = tmp_path_factory.mktemp("contracts")
    dest = root / "trainops_copy"
    shutil.copytree(PACKAGE, dest, ignore=shutil.ignore_patterns("__pycache__", "templates"))
    rename = re.compile(r"\btrainops(?=[._ ])")
    for path in dest.rglob("*.py"):
        path.write_text(rename.sub("trainops_copy", path.read_text()))
    sys.path.insert(0, str(root))
    yield dest
    sys.path.remove(str(root))


VIOLATIONS = {
    # contract id: (module of the copy, the import added to it, what the report names)
    "layers": ("plan/actions.py", "import trainops_copy.commands", "trainops_copy.commands"),
    "pure": ("cost.py", "import subprocess", "subprocess"),
    "providers": (
        "providers/sagemaker/provider.py",
        "from trainops_copy.providers import local",
        "trainops_copy.providers.local",
    ),
    "cli": ("render/plan.py", "import click", "click"),
    "lower": ("github/client.py", "import trainops_copy.reconcile.act", "trainops_copy.reconcile"),
    "reconciler": (
        "reconcile/drift.py",
        "def f():\n    from trainops_copy.providers.replicate import timestamps",
        "trainops_copy.providers.replicate",
    ),
    "light": ("validate/jobs.py", "import httpx", "httpx"),
    "foundation": ("manifest/spec.py", "import trainops_copy.cost", "trainops_copy.cost"),
    "private": (
        "init.py",
        "from trainops_copy.providers import _supervisor",
        "trainops_copy.providers._supervisor",
    ),
    "acyclic": ("delivery/base.py", "from trainops_copy.delivery import s3", "delivery"),
    # A circle between two top-level packages that no two modules make: state.layout -> cost ->
    # state.model (the contract once covered only the modules inside each package)
    "acyclic, top level": (
        "state/layout.py",
        "import trainops_copy.cost",
        "allowed in trainops_copy.\n",
    ),
}


@pytest.mark.parametrize("contract", sorted(VIOLATIONS))
def test_each_contract_can_fail(copy: Path, contract: str) -> None:
    module, line, named = VIOLATIONS[contract]
    contract = contract.split(",")[0]
    path = copy / module
    before = path.read_text()
    path.write_text(f"{before}\n{line}\n")
    try:
        found = broken(options("trainops_copy"))
    finally:
        path.write_text(before)
    assert contract in found and named in found[contract], found


# --- what import-linter cannot express -------------------------------------------------------


def circles(package: str) -> list[list[str]]:
    """Every import circle between modules of `package` (strongly connected components of more
    than one module of grimp's graph; every import counts, lazy and TYPE_CHECKING ones too)."""
    graph = grimp.build_graph(package, cache_dir=None)
    edges = {m: graph.find_modules_directly_imported_by(m) for m in graph.modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in edges[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            part = []
            while (top := stack.pop()) != node:
                part.append(top)
            if part:
                found.append(sorted([node, *part]))

    for module in sorted(edges):
        if module not in index:
            visit(module)
    return sorted(found)


def test_no_import_circle_between_modules() -> None:
    assert circles("trainops") == []


def test_the_circle_finder_finds_one(copy: Path) -> None:
    path = copy / "providers" / "limits.py"
    before = path.read_text()
    path.write_text(f"{before}\nfrom trainops_copy.providers import REGISTRY\n")
    try:
        found = circles("trainops_copy")
    finally:
        path.write_text(before)
    # limits -> providers -> ray (REGISTRY) -> ray.provider -> ray.submit -> ray.package -> limits
    assert found == [
        [
            "trainops_copy.providers",
            "trainops_copy.providers.limits",
            "trainops_copy.providers.ray",
            "trainops_copy.providers.ray.package",
            "trainops_copy.providers.ray.provider",
            "trainops_copy.providers.ray.submit",
        ]
    ]


def private_imports(package: Path) -> list[str]:
    """`file:line: from X import _name` for each private name one module imports from another
    (private modules, `_supervisor`-style, are the `private` contract's business)."""
    base = package.parent
    found = []
    for path in sorted(package.rglob("*.py")):
        parts = list(path.relative_to(base).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        module = ".".join(parts[:-1] if is_package else parts)
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.ImportFrom):
                continue
            source = node.module or ""
            if node.level:
                keep = module.split(".")[: len(module.split(".")) - node.level + is_package]
                source = ".".join([*keep, *([source] if source else [])])
            if source.split(".")[0] != package.name or source == module:
                continue
            for alias in node.names:
                name = alias.name
                target = base.joinpath(*source.split("."), name)
                if target.with_suffix(".py").is_file() or (target / "__init__.py").is_file():
                    continue  # a module, not a name
                if name.startswith("_") and not name.endswith("__"):
                    found.append(
                        f"{path.relative_to(base)}:{node.lineno}: from {source} import {name}"
                    )
    return found


def test_no_module_imports_another_modules_private_name() -> None:
    assert private_imports(PACKAGE) == []


def test_the_private_name_finder_finds_one(copy: Path) -> None:
    path = copy / "promotion" / "hub.py"
    before = path.read_text()
    path.write_text(f"{before}\nfrom .base import _hidden\nfrom ..scrub import _TOKEN_PREFIXES\n")
    try:
        found = private_imports(copy)
    finally:
        path.write_text(before)
    n = before.count("\n") + 2
    assert found == [
        f"trainops_copy/promotion/hub.py:{n}: from trainops_copy.promotion.base import _hidden",
        f"trainops_copy/promotion/hub.py:{n + 1}: from trainops_copy.scrub import _TOKEN_PREFIXES",
    ]
