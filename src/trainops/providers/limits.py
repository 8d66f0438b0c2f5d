"""The largest package each provider accepts: `spec.data` (DATA_LIMITS, DESIGN §18) and the
workdir a provider ships to where the job runs (WORKDIR_LIMITS). `validate` and `plan` check them
offline, before anything is recorded or sent; a provider reads its own limit here, never from the
registry (`trainops.providers`), which imports the providers.
"""

from __future__ import annotations

MIB = 1024 * 1024
# The providers that take `spec.data` (DESIGN §18), with the largest package each accepts (None:
# no limit). Checked offline by `validate`/`plan`, before anything is uploaded; a provider that
# is not listed cannot take data. A provider joins by implementing `DataInputs` (base.py).
DATA_LIMITS: dict[str, int | None] = {
    "local": None,
    # Its files API (DESIGN §18), where a package is one file: "Files must be less than 100MB",
    # 100 MB as the service counts, 100,000,000 bytes (shared/ref/README.md): at most one less.
    "replicate": 100_000_000 - 1,
}


# The providers that ship a job's workdir to where it runs, with the largest package each takes:
# `validate` refuses a larger workdir before anything is recorded or sent.
WORKDIR_LIMITS: dict[str, int] = {"ray": 100 * MIB}
