"""The environment a job's command runs in (DESIGN §13: jobs get no credentials by default).

One builder for every provider that runs a command on a machine trainops controls (local; ray
later): a minimal base that any program needs to run, the `TRAINOPS_*` variables trainops sets
for the run, and exactly the variables the manifest names in `spec.env`. Nothing else of
trainops' own environment is inherited: not HF_TOKEN, AWS_*, GITHUB_TOKEN, the Replicate token,
nor anything a CI runner happens to export.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

# What a program needs to run as the user would run it, and nothing that grants access:
# - PATH, HOME, USER, LOGNAME, SHELL: find programs, the user's files, who runs it;
# - LANG, LANGUAGE, LC_*, TZ, TERM: text encoding, time zone, terminal (logs stay readable);
# - TMPDIR, TMP, TEMP: where temporary files go (a full /tmp is a classic training failure);
# - VIRTUAL_ENV, CONDA_PREFIX, PYTHONHOME, PYTHONPATH: so `python` in a command (run with
#   trainops' own interpreter) finds the same packages it would find in the user's shell.
# Everything else (CUDA_VISIBLE_DEVICES, LD_LIBRARY_PATH, HF_HOME, a token) is named in spec.env.
BASE = (
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "SHELL",
    "LANG",
    "LANGUAGE",
    "TZ",
    "TERM",
    "TMPDIR",
    "TMP",
    "TEMP",
    "VIRTUAL_ENV",
    "CONDA_PREFIX",
    "PYTHONHOME",
    "PYTHONPATH",
)
BASE_PREFIXES = ("LC_",)
RESERVED_PREFIX = "TRAINOPS_"  # set by trainops for the run; a manifest cannot pass its own
NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\Z")


def job_environment(
    names: Iterable[str], source: Mapping[str, str], run: Mapping[str, str]
) -> dict[str, str]:
    """The base variables and the listed `names` that are set in `source` (a listed name that is
    not set is simply absent, as with `docker run -e NAME`), plus the run's own `TRAINOPS_*`
    variables, which always win."""
    env = {
        key: value for key, value in source.items() if key in BASE or key.startswith(BASE_PREFIXES)
    }
    for name in names:
        if name in source and not name.startswith(RESERVED_PREFIX):
            env[name] = source[name]
    env = {k: v for k, v in env.items() if not k.startswith(RESERVED_PREFIX)}
    env.update(run)
    env.setdefault("PYTHONUNBUFFERED", "1")  # so `trainops logs` follows a live run
    return env
