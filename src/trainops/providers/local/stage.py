"""`spec.data` on this machine (DESIGN §18, the `DataInputs` capability): a package is unpacked
(a folder) or copied (a file) under `.trainops/data/<sha256>/`, once per digest, and renamed
into place whole, so a crash leaves either nothing or all of it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from trainops.errors import ProviderError


def stage(home: Path, package: Any) -> str:
    """The package under `home/<sha256>/`; returns the absolute path the run's input holds."""
    import zipfile

    final = home / package.sha256
    where = final if package.folder else final / package.filename
    if final.is_dir():
        return str(where)
    home.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".staging-", dir=home))
    try:
        # Streamed from the package, built again from the applied commit: memory stays
        # bounded whatever the data's size.
        with package.open() as src:
            if package.folder:
                with zipfile.ZipFile(src) as zf:
                    for name in package.files:  # our own archive: names checked when packed
                        out = tmp / name
                        out.parent.mkdir(parents=True, exist_ok=True)
                        with zf.open(name) as one, open(out, "wb") as dst:
                            shutil.copyfileobj(one, dst, 1 << 20)
            else:
                with open(tmp / package.filename, "wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
        try:
            os.rename(tmp, final)
        except OSError:
            if not final.is_dir():  # not a racing stager that won: a real failure
                raise
    except OSError as exc:
        raise ProviderError(f"cannot stage {package.path} under {home}: {exc}") from exc
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return str(where)
