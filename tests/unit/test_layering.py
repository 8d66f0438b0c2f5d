"""Import layering, what the contracts of pyproject.toml `[tool.importlinter]` cannot say.

The layers, the pure planner, the independent providers, the CLI's monopoly on click, the
validation that loads no heavy library and the foundation are import-linter contracts
(tests/unit/test_import_contracts.py runs them); `trainops --help` loading none of the heavy
libraries is tests/unit/test_startup.py. import-linter counts every import alike, so when an
import runs is checked here, with an `ast` walk over `src/` (also used by test_ray_layering.py and
test_serve_layering.py): the provider libraries load only inside the functions that use them.
And what is not an import: the contracts which name modules one by one name every module they
must (a new provider or top-level module is not silently left out), and the planner reads no
environment and no clock.
"""

from __future__ import annotations

import ast
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import MappingProxyType

import grimp
import pytest

import trainops

PACKAGE = Path(trainops.__file__).resolve().parent  # the package under test, wherever it lives
SRC = PACKAGE.parent
PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"
CONTRACTS = {
    c["id"]: c for c in tomllib.loads(PYPROJECT.read_text())["tool"]["importlinter"]["contracts"]
}


@dataclass(frozen=True)
class Import:
    module: str  # absolute dotted name
    top: bool  # runs when the module is imported (not inside a function, not TYPE_CHECKING)
    line: int

    @property
    def root(self) -> str:
        return self.module.split(".")[0]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def is_module(name: str) -> bool:
    base = SRC.joinpath(*name.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def parse_imports(source: str, module: str, package: bool = False) -> list[Import]:
    found: list[Import] = []

    def visit(node: ast.AST, top: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                visit(child, False)
            elif isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                visit(ast.Module(body=child.body, type_ignores=[]), False)
                visit(ast.Module(body=child.orelse, type_ignores=[]), top)
            elif isinstance(child, ast.Import):
                found.extend(Import(a.name, top, child.lineno) for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    parent = module.split(".")[: len(module.split(".")) - child.level + package]
                    base = ".".join([*parent, *([base] if base else [])])
                found.append(Import(base, top, child.lineno))
                for alias in child.names:  # `from trainops import cost` imports a module
                    if is_module(f"{base}.{alias.name}"):
                        found.append(Import(f"{base}.{alias.name}", top, child.lineno))
            else:
                visit(child, top)

    visit(ast.parse(source), True)
    return found


@cache
def sources() -> Mapping[str, Path]:
    """Every module of the package, by dotted name: walked once (`closure` asks it for every
    module it meets, and a walk of src/ each time made test_ray_layering.py take minutes)."""
    return MappingProxyType(
        {
            module_name(p): p
            for p in sorted((SRC / "trainops").rglob("*.py"))
            if "templates" not in p.parts
        }
    )


@cache
def imports(module: str) -> tuple[Import, ...]:
    path = sources()[module]
    return tuple(parse_imports(path.read_text(), module, path.name == "__init__.py"))


@cache
def closure(module: str) -> frozenset[str]:
    """Every module that runs when `module` is imported: trainops modules (with their parent
    packages) and the top-level names of external ones."""
    seen: set[str] = set()
    todo = [module]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        if name.split(".")[0] != "trainops":
            continue
        parts = name.split(".")
        todo.extend(".".join(parts[:i]) for i in range(1, len(parts)))  # parent packages run first
        if name in sources():
            todo.extend(
                i.module if i.root == "trainops" else i.root for i in imports(name) if i.top
            )
    return frozenset(seen)


def test_the_import_parser() -> None:
    source = (
        "import git\nfrom typing import TYPE_CHECKING\nfrom . import base\n"
        "if TYPE_CHECKING:\n    import boto3\nelse:\n    import yaml\n"
        "def f():\n    import httpx\n"
    )
    found = parse_imports(source, "trainops.providers.local")
    assert [(i.module, i.top) for i in found] == [
        ("git", True),
        ("typing", True),
        ("trainops.providers", True),
        ("trainops.providers.base", True),
        ("boto3", False),
        ("yaml", True),
        ("httpx", False),
    ]


# The provider and cloud libraries: slow to import, needed only by the calls that use them
# (ray has test_ray_layering.py).
LAZY = {"replicate", "boto3", "botocore", "huggingface_hub"}


@pytest.mark.parametrize("module", sorted(sources()))
def test_provider_libraries_load_only_inside_functions(module: str) -> None:
    top = {i.root for i in imports(module) if i.top}
    assert (top & LAZY, closure(module) & LAZY) == (set(), set())


def children(package: Path) -> set[str]:
    """The names of the modules and packages directly inside `package`."""
    return {
        p.stem if p.suffix == ".py" else p.name
        for p in package.iterdir()
        if (p.suffix == ".py" and p.stem != "__init__") or (p / "__init__.py").is_file()
    }


def test_the_foundation_contract_forbids_every_other_top_level_module() -> None:
    contract = CONTRACTS["foundation"]
    names = {f"trainops.{name}" for name in children(PACKAGE)}
    assert set(contract["source_modules"]) <= names
    assert sorted(contract["forbidden_modules"]) == sorted(names - set(contract["source_modules"]))


def test_the_independence_contract_names_every_provider() -> None:
    # A provider is a module or a package of trainops.providers; base, limits and marks (the
    # ownership marks' one builder) are shared values, the _private modules the providers'
    # shared machinery.
    providers = {
        f"trainops.providers.{name}"
        for name in children(PACKAGE / "providers")
        if name not in ("base", "limits", "marks") and not name.startswith("_")
    }
    assert sorted(CONTRACTS["providers"]["modules"]) == sorted(providers)


def planner_modules() -> list[str]:
    """The modules of trainops.plan and every trainops module they import, lazily or not (but
    for the imports the `pure` contract ignores: types named under TYPE_CHECKING), with the
    packages that hold them (their `__init__` runs first)."""
    graph = grimp.build_graph("trainops", cache_dir=None)
    for ignored in CONTRACTS["pure"]["ignore_imports"]:
        importer, imported = ignored.split(" -> ")
        graph.remove_import(importer=importer, imported=imported)
    own = {m for m in graph.modules if m == "trainops.plan" or m.startswith("trainops.plan.")}
    reached = own | graph.find_upstream_modules("trainops.plan", as_package=True)
    return sorted({".".join(m.split(".")[:i]) for m in reached for i in range(1, m.count(".") + 2)})


def source(module: str) -> Path:
    base = PACKAGE.parent.joinpath(*module.split("."))
    return base / "__init__.py" if base.is_dir() else base.with_suffix(".py")


@pytest.mark.parametrize("module", planner_modules())
def test_the_planner_reads_no_environment_or_clock(module: str) -> None:
    tree = ast.parse(source(module).read_text())
    reads = [
        f"{node.value.id}.{node.attr}:{node.lineno}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and (node.value.id, node.attr)
        in {
            ("os", "environ"),
            ("os", "getenv"),
            ("datetime", "now"),
            ("datetime", "utcnow"),
            ("date", "today"),
            ("time", "time"),
        }
    ]
    assert reads == []
