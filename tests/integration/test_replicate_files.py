"""spec.data on Replicate (DESIGN §18): ReplicateProvider.stage against the emulator's files API,
through the official client. Counted at the emulator: one upload per digest, whatever the pass,
a lost answer or a forged file says; a training's input holds the file's URL, and adoption
recognises that training from the intent's digest placeholder."""

from __future__ import annotations

import io
import random
from collections.abc import Iterator
from typing import Any

import pytest

from tests.emulators.replicate import (
    FILE_LIMIT,
    FILES_PATH,
    FLUX_LORA_VERSION,
    OpenAPIResponses,
    ReplicateEmulator,
    SimClock,
)
from tests.integration.test_replicate_provider import ENV, FakeTime, intent_for, job
from trainops.data import Package, placeholder
from trainops.errors import ProviderError
from trainops.providers.base import DataInputs, Intent, Submission, input_hash
from trainops.providers.limits import DATA_LIMITS
from trainops.providers.replicate import ReplicateProvider

TRAINER = f"ostris/flux-dev-lora-trainer:{FLUX_LORA_VERSION}"


def package(content: bytes = b"PK\x03\x04 portraits", key: str = "input_images") -> Package:
    return Package(key, "data/portraits", True, ("a.jpg",), (), content)


@pytest.fixture
def fake() -> FakeTime:
    return FakeTime()


@pytest.fixture
def emu(fake: FakeTime) -> Iterator[ReplicateEmulator]:
    import time

    clock = SimClock(time.time())  # files expire on wall-clock time: start the emulator at it
    with ReplicateEmulator(rate_clock=fake.monotonic, clock=clock) as e:
        yield e
        assert e.server_errors == []
        assert OpenAPIResponses().errors(e.requests) == []


def make(emu: ReplicateEmulator, fake: FakeTime, **kw: Any) -> ReplicateProvider:
    return ReplicateProvider(
        token_env=ENV,
        environ={ENV: emu.token, "REPLICATE_BASE_URL": emu.base_url},
        sleep=fake.sleep,
        clock=fake.monotonic,
        rng=random.Random(0),
        timeout=5.0,
        **kw,
    )


def uploads(emu: ReplicateEmulator) -> int:
    return emu.count("POST", FILES_PATH)


def test_a_package_is_uploaded_once_and_found_again_by_its_digest(emu, fake) -> None:
    pkg = package()
    with make(emu, fake) as first:
        assert isinstance(first, DataInputs)
        url = first.stage(pkg)
        assert first.stage(pkg) == url  # same process: not even a list
    [f] = emu.files
    assert url == f"{emu.base_url}/v1/files/{f.id}"
    assert (f.sha256, f.size, f.metadata["trainops_digest"]) == (pkg.sha256, pkg.size, pkg.digest)
    assert emu.file_content(f.id) == pkg.content
    with make(emu, fake) as second:  # another apply: found by metadata, nothing sent
        assert second.stage(pkg) == url
    assert uploads(emu) == 1
    with make(emu, fake) as third:
        other = third.stage(package(b"PK\x03\x04 edited"))
    assert other != url and uploads(emu) == 2


def test_an_expired_or_expiring_file_is_uploaded_again(emu, fake) -> None:
    pkg = package()
    with make(emu, fake) as p:
        p.stage(pkg)
    emu.expire_file(emu.files[0].id)
    with make(emu, fake) as p:
        p.stage(pkg)
    assert uploads(emu) == 2
    emu.file_ttl = 600.0  # expires within the reuse margin: a queued training may miss it
    with make(emu, fake) as p:
        p.stage(package(b"short-lived"))
    with make(emu, fake) as p:
        p.stage(package(b"short-lived"))
    assert uploads(emu) == 4


def test_a_file_whose_metadata_lies_about_its_digest_is_not_reused(emu, fake) -> None:
    pkg = package()
    with make(emu, fake) as p:
        p.stage(package(b"something else"))  # a file of the account, and one whose metadata
        p.api.client().files.create(  # names this digest over other bytes of the same size
            io.BytesIO(b"x" * pkg.size),
            filename="forged.zip",
            metadata={"trainops_digest": pkg.digest},
        )
    with make(emu, fake) as p:
        url = p.stage(pkg)
    assert uploads(emu) == 3
    assert emu.file_content(url.rsplit("/", 1)[1]) == pkg.content


def test_an_upload_whose_answer_was_lost_is_found_not_sent_again(emu, fake) -> None:
    emu.inject("lost_response", method="POST", path=FILES_PATH)
    with make(emu, fake) as p:
        url = p.stage(package())
    assert uploads(emu) == 1 and url.endswith(emu.files[0].id)


def test_a_throttled_upload_is_retried_and_a_too_large_one_refused(emu, fake) -> None:
    emu.inject("rate_limit", method="POST", path=FILES_PATH, retry_after=3)
    with make(emu, fake) as p:
        p.stage(package())
    assert [r.status for r in emu.requests if r.method == "POST"] == [429, 201]
    assert len(emu.files) == 1 and 3 in fake.sleeps
    emu.inject("error", method="POST", path=FILES_PATH, status=413, count=None)
    with make(emu, fake) as p, pytest.raises(ProviderError) as err:
        p.stage(package(b"big"))
    assert getattr(err.value, "retryable", True) is False
    assert uploads(emu) == 3  # refused once: never retried


def test_the_emulator_refuses_a_file_of_100_mb_as_replicate_counts_them(emu, fake) -> None:
    # "Files must be less than 100MB": 100,000,000 bytes, not 100 MiB (shared/ref/README.md
    # "Checked against the real clients"): one byte less is taken, exactly 100 MB is not.
    with make(emu, fake) as p:
        p.stage(package(bytes(99_999_999)))
        with pytest.raises(ProviderError):
            p.stage(package(bytes(100_000_000)))
    assert [r.status for r in emu.requests if r.method == "POST"] == [201, 413]
    assert [f.size for f in emu.files] == [99_999_999]
    # and `validate` refuses, offline, what the service would: a package of FILE_LIMIT or more
    assert DATA_LIMITS["replicate"] == FILE_LIMIT - 1 == 99_999_999


def test_adoption_recognises_a_training_whose_input_holds_the_uploaded_url(emu, fake) -> None:
    pkg = package()
    j = job(input={"steps": 1000})
    recorded = {"steps": 1000, "input_images": placeholder(pkg)}  # what the intent hashed
    with make(emu, fake) as p:
        url = p.stage(pkg)
        p.submit(
            Submission(
                j,
                "0123456789ab",
                1,
                {**recorded, "input_images": url},
                input_hash(recorded),
                "snapshots/portraits/0123456789ab.yaml",
                {"input_images": pkg},
            )
        )
    [training] = emu.trainings
    assert training.input["input_images"] == url
    base = intent_for(j, emu.now() - 5)
    intent = Intent(**{**base.__dict__, "input_hash": input_hash(recorded)})
    with make(emu, fake) as p:
        found = p.find(intent)
        assert found is not None and found.run_id == training.id
        other = Intent(**{**intent.__dict__, "input_hash": input_hash({**recorded, "steps": 2})})
        assert p.find(other) is None
