"""trainops' copy of the Hugging Face flavors is huggingface_hub's `JobHardware` (`_jobs_api.py`),
which the client's maintainers keep in sync with the service. It is copied so that `validate`
does not import the client (~0.3 s); this test fails when an upgraded client lists others."""

from __future__ import annotations

from huggingface_hub._jobs_api import JobHardware

from trainops.manifest import DEFAULT_PRICES
from trainops.manifest import HF_FLAVORS as FLAVORS


def test_flavors_are_the_clients_job_hardware() -> None:
    assert list(FLAVORS) == [h.value for h in JobHardware]


def test_every_priced_flavor_is_a_flavor() -> None:
    from trainops.manifest import HF_FLAVOR_PRICES_PER_MINUTE

    assert set(HF_FLAVOR_PRICES_PER_MINUTE) <= set(FLAVORS)
    assert all(name in DEFAULT_PRICES for name in HF_FLAVOR_PRICES_PER_MINUTE)
