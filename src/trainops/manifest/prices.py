"""What hardware costs and which Hugging Face flavors exist: the built-in price tables
(`DEFAULT_PRICES`, USD per second, which `prices_usd_per_second` in `trainops.yaml` overrides per
name) and `HF_FLAVORS`, with the problem a job naming another flavor gets."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from trainops.errors import Problem

if TYPE_CHECKING:
    from trainops.manifest.document import Job


# The flavors a job may name: huggingface_hub's own `JobHardware` (`_jobs_api.py`, 2.4), which
# its maintainers keep in sync with the service (`utils/check_hardware_flavors.py`). Copied, not
# imported: importing `_jobs_api` costs ~0.3 s, about what `validate` spends on a small repo;
# tests/unit/test_hf_flavors.py fails when the installed client lists other values. A flavor
# without a price in trainops.yaml's `prices_usd_per_second` runs, but has no cost estimate.
HF_FLAVORS = (
    "cpu-basic", "cpu-upgrade", "cpu-performance", "cpu-xl",
    "t4-small", "t4-medium", "l4x1", "l4x4", "l40sx1", "l40sx4", "l40sx8",
    "a10g-small", "a10g-large", "a10g-largex2", "a10g-largex4",
    "a100-large", "a100x4", "a100x8", "h200", "h200x2", "h200x4", "h200x8",
    "rtx-pro-6000", "rtx-pro-6000x2", "rtx-pro-6000x4", "rtx-pro-6000x8",
)  # fmt: skip

# Hugging Face Jobs flavors, USD per second: the per-minute prices GET /api/jobs/hardware
# answers (unitCostUSD, unitLabel "minute") divided by 60. Names do not collide with Replicate's.
HF_FLAVOR_PRICES_PER_MINUTE = {
    "cpu-basic": 0.0001, "cpu-upgrade": 0.0005, "t4-small": 0.0067, "t4-medium": 0.01,
    "l4x1": 0.0133, "l4x4": 0.0633, "l40sx1": 0.03, "l40sx4": 0.1383, "l40sx8": 0.3917,
    "a10g-small": 0.0167, "a10g-large": 0.025, "a10g-largex2": 0.05, "a10g-largex4": 0.0833,
    "a100-large": 0.0417, "h200": 0.0833,
}  # fmt: skip

# SageMaker training instances, USD per instance-hour, on-demand, us-east-1: the "Training" tab
# of aws.amazon.com/sagemaker/pricing/ as of 2025 (other regions cost more; managed spot bills
# less per second but the same BillableTimeInSeconds is what is priced). Not fetched at run time:
# `prices_usd_per_second` in trainops.yaml overrides any of them (per second = per hour / 3600).
SAGEMAKER_PRICES_PER_HOUR = {
    "ml.m5.large": 0.115, "ml.m5.xlarge": 0.23, "ml.m5.2xlarge": 0.461, "ml.m5.4xlarge": 0.922,
    "ml.c5.xlarge": 0.204, "ml.c5.2xlarge": 0.408, "ml.c5.4xlarge": 0.816,
    "ml.g4dn.xlarge": 0.736, "ml.g4dn.2xlarge": 0.94, "ml.g4dn.12xlarge": 4.89,
    "ml.g5.xlarge": 1.408, "ml.g5.2xlarge": 1.515, "ml.g5.4xlarge": 2.03,
    "ml.g5.12xlarge": 7.09, "ml.g5.48xlarge": 20.36,
    "ml.p3.2xlarge": 3.825, "ml.p3.8xlarge": 14.688, "ml.p3.16xlarge": 28.152,
    "ml.p4d.24xlarge": 37.688, "ml.p5.48xlarge": 113.068,
}  # fmt: skip

DEFAULT_PRICES = {
    "gpu-t4": 0.000225,
    "gpu-l40s": 0.000975,
    "gpu-a100-large": 0.0014,
    "gpu-h100": 0.001525,
    **{name: round(usd / 60, 9) for name, usd in HF_FLAVOR_PRICES_PER_MINUTE.items()},
    **{name: round(usd / 3600, 9) for name, usd in SAGEMAKER_PRICES_PER_HOUR.items()},
}


def flavor_problem(job: Job) -> Problem:
    """A Hugging Face job's `hardware` that is not a flavor of HF_FLAVORS, at its position."""
    problem = job.doc.problem(
        ("spec", "hardware"),
        f"{job.spec.hardware!r} is not a Hugging Face Jobs flavor",
        "one of: " + ", ".join(HF_FLAVORS),
    )
    return replace(problem, job=job.name)
