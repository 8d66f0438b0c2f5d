"""The `trainops[ray]` stack stays behind the Ray provider: only the package
`trainops.providers.ray` imports `ray`, and only inside the functions that talk to a cluster, so
no command (nor a plan of a repository with Ray jobs) loads it; without the extra, the provider
says what to install.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.unit.test_layering import closure, imports, sources


def test_only_the_ray_provider_imports_ray_and_only_lazily() -> None:
    # The provider is a package (`providers/ray/`): any of its modules may import `ray`.
    package = "trainops.providers.ray"
    users = {m for m in sources() if any(i.root == "ray" for i in imports(m))}
    assert users and {m for m in users if m != package and not m.startswith(f"{package}.")} == set()
    assert [i for m in users for i in imports(m) if i.root == "ray" and i.top] == []


def test_no_module_loads_ray_when_imported() -> None:
    assert [m for m in sorted(sources()) if "ray" in closure(m)] == []


def test_the_cli_and_the_provider_module_load_none_of_it() -> None:
    code = (
        "import sys\n"
        "import trainops.cli, trainops.commands, trainops.providers.ray\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'ray'}))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert (proc.stdout, proc.stderr) == ("[]\n", "")


def test_without_the_extra_the_provider_says_what_to_install(tmp_path: Path) -> None:
    # A missing dependency, as on an install without `trainops[ray]`: the module is blocked.
    code = (
        "import sys\n"
        "sys.modules['ray'] = None\n"
        "from trainops.errors import ProviderError\n"
        "from trainops.manifest import RayConfig\n"
        "from trainops.providers.ray import RayProvider\n"
        "p = RayProvider(sys.argv[1], RayConfig(output_uri='/srv/out'),\n"
        "                environ={'RAY_ADDRESS': 'http://127.0.0.1:9'})\n"
        "try:\n"
        "    p.observe(['trainops-a-0123456789ab-1'])\n"
        "except ProviderError as exc:\n"
        "    print(exc)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "pip install 'trainops[ray]'" in proc.stdout and "Traceback" not in proc.stderr
