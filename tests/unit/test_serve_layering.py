"""The `trainops[serve]` stack stays behind `trainops serve`: Starlette, uvicorn,
standardwebhooks and prometheus_client are imported only by the controller's own modules, and no
other command (nor `status --html`, which renders the same page) loads them.
"""

from __future__ import annotations

import subprocess
import sys

from tests.unit.test_layering import closure, imports, sources

SERVE_STACK = {"starlette", "uvicorn", "standardwebhooks", "prometheus_client"}
SERVE_MODULES = {
    "trainops.serve.app",
    "trainops.serve.controller",
    "trainops.serve.http",
    "trainops.serve.metrics",
    "trainops.serve.webhooks",
}


def test_only_the_controller_modules_import_the_serve_stack() -> None:
    users = {m for m in sources() if any(i.root in SERVE_STACK for i in imports(m))}
    assert users <= SERVE_MODULES and "trainops.serve.app" in users


def test_no_other_module_loads_the_serve_stack_when_imported() -> None:
    for module in sorted(set(sources()) - SERVE_MODULES):
        assert closure(module) & SERVE_STACK == set(), module


def test_the_status_page_module_and_the_cli_load_none_of_it() -> None:
    code = (
        "import sys\n"
        "import trainops.cli, trainops.commands, trainops.serve.status_page\n"
        "stack = set(sys.argv[1:])\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & stack))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, *sorted(SERVE_STACK)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (proc.stdout, proc.stderr) == ("[]\n", "")


def test_without_the_extra_serve_says_what_to_install(tmp_path) -> None:  # type: ignore[no-untyped-def]
    # A missing dependency, as on an install without `trainops[serve]`: the module is blocked.
    code = (
        "import sys\n"
        "sys.modules['uvicorn'] = None\n"
        "from trainops.cli import main\n"
        "sys.exit(main(['serve', '--dir', sys.argv[1]]))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2, proc.stderr
    assert "pip install 'trainops[serve]'" in proc.stderr and "Traceback" not in proc.stderr
