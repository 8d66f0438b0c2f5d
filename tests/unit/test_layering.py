"""Import layering: the `.importlinter` of this project, done with `ast` over `src/` (STYLE).

cli -> commands -> reconcile -> plan/providers/state/github -> manifest stays one-directional; the
planner (every module of `trainops.plan`) stays pure; providers stay independent of each other;
heavy libraries load only where they are used.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

import trainops

SRC = Path(trainops.__file__).resolve().parents[1]  # the package under test, wherever it lives
HEAVY = {"git", "replicate", "boto3", "botocore", "huggingface_hub", "httpx", "rich", "ray"}


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


def sources() -> dict[str, Path]:
    return {
        module_name(p): p
        for p in sorted((SRC / "trainops").rglob("*.py"))
        if "templates" not in p.parts
    }


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


def test_click_is_imported_only_by_the_cli() -> None:
    users = {m for m in sources() if any(i.root == "click" for i in imports(m))}
    assert users and all(m == "trainops.cli" or m.startswith("trainops.cli.") for m in users)


def test_only_the_entry_point_imports_the_cli() -> None:
    users = {
        m
        for m in sources()
        if any(i.module.split(".")[:2] == ["trainops", "cli"] for i in imports(m))
        and m.split(".")[:2] != ["trainops", "cli"]
    }
    assert users == {"trainops.__main__"}


IMPURE = {
    "git",
    "httpx",
    "replicate",
    "boto3",
    "botocore",
    "huggingface_hub",
    "subprocess",
    "socket",
    "requests",
    "threading",
    "random",
    "time",
    "click",
    "rich",
}
ADAPTERS = {
    "trainops.providers.local",
    "trainops.providers.replicate",
    "trainops.providers._supervisor",
    "trainops.state.git",
    "trainops.state.s3",
    "trainops.commands",
    "trainops.workspace",
    "trainops.repo",
    "trainops.github.client",
    "trainops.github.transport",
    "trainops.delivery",
    "trainops.lockfile",
    "trainops.reconcile",  # every phase of the pass: they call providers, the store, the clock
}


def within(modules: set[str] | frozenset[str], packages: set[str]) -> set[str]:
    """The modules that are one of `packages` or inside one."""
    return {m for m in modules if any(m == p or m.startswith(f"{p}.") for p in packages)}


def test_the_planner_is_pure() -> None:
    # plan() takes values and returns values: value types (providers.base, state.model) are fine,
    # provider implementations, state backends, I/O and clocks are not.
    reached = closure("trainops.plan")
    assert (reached & IMPURE, within(reached, ADAPTERS)) == (set(), set())


@pytest.mark.parametrize("module", sorted(closure("trainops.plan") & set(sources())))
def test_the_planner_reads_no_environment_or_clock(module: str) -> None:
    tree = ast.parse(sources()[module].read_text())
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


# A provider is a module or a package (`providers/replicate/`) of `trainops.providers`.
PROVIDERS = sorted(
    m
    for m in sources()
    if m.startswith("trainops.providers.")
    and m.count(".") == 2
    and m.rsplit(".", 1)[1] not in ("base", "limits")  # shared values, not providers
    and not m.rsplit(".", 1)[1].startswith("_")
)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_providers_do_not_import_each_other(provider: str) -> None:
    others = set(PROVIDERS) - {provider}
    own = within(set(sources()), {provider})  # the provider's modules, its package's too
    direct = within({i.module for m in own for i in imports(m)}, others)  # lazy ones count too
    reached = within({r for m in own for r in closure(m)}, others)
    assert (direct, reached) == (set(), set())


@pytest.mark.parametrize("module", sorted(within(set(sources()), {"trainops.reconcile"})))
def test_the_reconciler_knows_no_particular_provider(module: str) -> None:
    """The reconciler reads providers through `providers.base` and the registry only: what one
    service's records mean (a timestamp's format, say) stays in its provider (issue 29)."""
    assert within({i.module for i in imports(module)}, set(PROVIDERS)) == set()  # lazy count too


# Every module of the manifest package (trainops.manifest.*) counts, not only its face.
VALIDATION = within(set(sources()), {"trainops.manifest", "trainops.validate"})
# The YAML loader's modules (trainops.yamlsource.*), its face too.
YAMLSOURCE = within(set(sources()), {"trainops.yamlsource"})


@pytest.mark.parametrize("module", sorted(VALIDATION | YAMLSOURCE))
def test_validation_loads_no_heavy_library(module: str) -> None:
    top = {i.root for i in imports(module) if i.top}
    assert (top & HEAVY, closure(module) & HEAVY) == (set(), set())


FOUNDATION = {
    "trainops",
    "trainops.errors",
    "trainops.gcpause",
    *YAMLSOURCE,
    *VALIDATION,
    "trainops.hyperparameters",
    "trainops.wrongtype",
    "trainops.repo",
}


@pytest.mark.parametrize("module", sorted(FOUNDATION - {"trainops"}))
def test_the_foundation_imports_no_upper_layer(module: str) -> None:
    internal = {i.module for i in imports(module) if i.root == "trainops"}
    assert internal - FOUNDATION == set()


LOWER = ("plan", "providers", "state", "github", "delivery")


@pytest.mark.parametrize(
    "module", sorted(m for m in sources() if m.split(".")[1:2] and m.split(".")[1] in LOWER)
)
def test_lower_layers_never_import_the_reconciler_or_the_commands(module: str) -> None:
    upper = {"trainops.reconcile", "trainops.commands", "trainops.cli"}
    assert {".".join(i.module.split(".")[:2]) for i in imports(module)} & upper == set()


def test_the_cli_starts_without_heavy_libraries() -> None:
    # `trainops --help` must start fast: the CLI module and the help text load nothing heavy.
    code = (
        "import contextlib, io, sys\n"
        "heavy = {'pydantic', 'yaml', 'jsonschema', *sys.argv[1:]}\n"
        "loaded = lambda: sorted({m.split('.')[0] for m in sys.modules} & heavy)\n"
        "import trainops.cli\n"
        "on_import = loaded()\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    code = trainops.cli.main(['--help'])\n"
        "print(on_import, loaded(), code)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, *sorted(HEAVY)],
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    assert (proc.stdout, proc.stderr) == ("[] [] 0\n", "")
