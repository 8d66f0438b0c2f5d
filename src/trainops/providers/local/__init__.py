"""The `local` provider (DESIGN §10), a package by noun: `provider` (`LocalProvider`, the
protocol's face), `records` (where a run lives — its record in the clone's git directory, its
work folder under `runs_dir` — and its id), `start` (the atomic claim, the private checkout,
the supervisor's launch), `observe`, `stop` (cancel, reap), `logs`, `stage` (`spec.data`).
The supervisor itself is `providers/_supervisor.py` (its module path is on every running
supervisor's command line)."""

from trainops.providers._claims import NEVER_STARTED, VANISHED
from trainops.providers.local.provider import GITHUB_HOSTED, LocalProvider
from trainops.providers.local.records import check_run, run_id_for

__all__ = ["GITHUB_HOSTED", "NEVER_STARTED", "VANISHED", "LocalProvider", "check_run", "run_id_for"]
