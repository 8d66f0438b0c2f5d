"""`status --all` on Replicate (DESIGN §20, issue 29): with OURS trainings carrying this
repository's marks and FOREIGN ones to its destination, listing them costs at most
ceil(N/100) list calls (N = all trainings of the account; 100 a page). Prints the count and
the bound; exits 1 when the bound is broken. Runs the provider's `list_runs` against the
emulator on 127.0.0.1.

    PYTHONPATH=src:. python benchmarks/status_all_replicate.py --ours 1000 --foreign 1000
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.emulators.replicate import (
    FLUX_LORA_VERSION,
    LIST_PATH,
    ReplicateEmulator,
)

from trainops.providers.base import Intent, input_hash
from trainops.providers.replicate import ReplicateProvider
from trainops.reconcile.orphans import list_bound

TOKEN = "r8_" + "BenchStatusAll" * 3
TRAINER = f"ostris/flux-dev-lora-trainer:{FLUX_LORA_VERSION}"


def main() -> int:
    args = argparse.ArgumentParser()
    args.add_argument("--ours", type=int, default=1000)
    args.add_argument("--foreign", type=int, default=1000)
    opts = args.parse_args()
    with ReplicateEmulator(token=TOKEN) as emu:
        emu.add_model("acme", "portraits", visibility="private")
        probes = []
        for i in range(opts.ours):  # one job each, as trainops would have submitted it
            given = {"steps": 1000, "seed": i}
            emu.create_training(TRAINER, "acme/portraits", given, source="api")
            probes.append(
                Intent(
                    f"job-{i}",
                    "r",
                    0,
                    input_hash(given),
                    0.0,
                    "replicate",
                    TRAINER,
                    "acme/portraits",
                )
            )
        for i in range(opts.foreign):  # to our destination, with inputs no job has
            emu.create_training(TRAINER, "acme/portraits", {"steps": 7, "seed": i}, source="api")
        emu.advance(3600)  # all finished: foreign ones name our destination in their output
        emu.reset_requests()
        provider = ReplicateProvider(
            environ={"REPLICATE_API_TOKEN": TOKEN, "REPLICATE_BASE_URL": emu.base_url}
        )
        with provider:
            listing = provider.list_runs(probes, max_calls=1000)
        calls = emu.count("GET", LIST_PATH)
    total = opts.ours + opts.foreign
    bound = list_bound(total)
    ours = sum(1 for r in listing.runs if not r.foreign)
    foreign = sum(1 for r in listing.runs if r.foreign)
    print(f"trainings: {total} ({opts.ours} ours, {opts.foreign} foreign)")
    print(f"found: {ours} ours, {foreign} foreign")
    print(
        f"list calls: {calls} (bound ceil({total}/100) = {bound}); provider counted {listing.calls}"
    )
    return 0 if calls <= bound and ours == opts.ours and foreign == opts.foreign else 1


if __name__ == "__main__":
    raise SystemExit(main())
