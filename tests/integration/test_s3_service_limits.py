"""S3 as the real service behaves where moto does not (shared/ref/README.md, "Checked against
the real clients", S3): `CopyObject` refuses a source over 5 GiB, so promotion copies large
objects in parts (UploadPartCopy) and keeps their sha256 metadata; and a caller without
`s3:ListBucket` (the minimal policy in docs/security.md) gets 403, not 404, for a missing key and
cannot list, yet delivery and promotion work. The emulator's limits are lowered, never a 5 GiB
file.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from tests.emulators.s3 import MotoS3
from tests.integration.test_delivery import FILES, PREFIX, S3_TARGET, local_run, s3_objects
from trainops.delivery import deliver
from trainops.manifest import S3Alias
from trainops.promotion import s3 as promotion

MIB = 1024**2
ALIAS = S3Alias.model_validate({"uri": "s3://models/aliases/prod"})
SOURCE = f"s3://models/{PREFIX}/"


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoS3]:
    with MotoS3() as server:
        yield server


@pytest.fixture
def s3(moto: MotoS3, monkeypatch: pytest.MonkeyPatch) -> MotoS3:
    moto.reset()
    for key, value in moto.env().items():
        monkeypatch.setenv(key, value)
    moto.client().create_bucket(Bucket="models")
    moto.requests.clear()
    return moto


def test_the_emulator_refuses_copy_object_above_its_limit_as_s3_does(s3: MotoS3) -> None:
    client = s3.client()
    client.put_object(Bucket="models", Key="big", Body=b"x" * 2048)
    s3.copy_limit = 1024
    with pytest.raises(ClientError) as refused:
        client.copy_object(
            Bucket="models", Key="copy", CopySource={"Bucket": "models", "Key": "big"}
        )
    error = refused.value.response["Error"]
    assert error["Code"] == "InvalidRequest"
    assert error["Message"] == (
        "The specified copy source is larger than the maximum allowable size for a copy source: "
        "1024"
    )
    s3.copy_limit = 4096
    client.copy_object(Bucket="models", Key="copy", CopySource={"Bucket": "models", "Key": "big"})


def test_promotion_copies_an_object_above_the_copy_limit_in_parts_keeping_its_sha256(
    s3: MotoS3, tmp_path: Path
) -> None:
    big = bytes(range(256)) * (6 * MIB // 256 + 1)  # just over 6 MiB: two parts of 5 MiB at most
    run = local_run(tmp_path, {**FILES, "weights.bin": big})
    deliver(S3_TARGET, "job-a", run, tmp_path / "outputs")
    s3.copy_limit = 5 * MIB  # as CopyObject's 5 GiB, scaled down
    s3.requests.clear()

    summary = promotion.move(ALIAS, SOURCE, run, copy_threshold=5 * MIB)

    assert summary == f"{ALIAS.uri} now holds run {run.run_id} (3 copied, 0 removed)"
    objects = s3_objects(s3)
    assert objects["aliases/prod/weights.bin"] == big
    client = s3.client()
    for name in ("weights.bin", "config.json", "trainops.json"):
        source = client.head_object(Bucket="models", Key=f"{PREFIX}/{name}")
        alias = client.head_object(Bucket="models", Key=f"aliases/prod/{name}")
        assert alias["Metadata"] == source["Metadata"] and alias["Metadata"]["sha256"]
    parts = [r for r in s3.writes() if r.path.endswith("/weights.bin") and "partNumber" in r.query]
    assert len(parts) == 2  # UploadPartCopy, not one CopyObject
    assert promotion.move(ALIAS, SOURCE, run, copy_threshold=5 * MIB) == (
        f"{ALIAS.uri} already holds run {run.run_id}"
    )


# ---- least privilege: no s3:ListBucket -----------------------------------------------------


def test_the_least_privilege_emulator_answers_403_for_a_missing_key_and_a_listing(
    s3: MotoS3,
) -> None:
    client = s3.client()
    client.put_object(Bucket="models", Key="here", Body=b"x")
    s3.least_privilege = True
    for call in (
        lambda: client.head_object(Bucket="models", Key="absent"),
        lambda: client.get_object(Bucket="models", Key="absent"),
        lambda: client.list_objects_v2(Bucket="models"),
        lambda: client.list_objects(Bucket="models"),
    ):
        with pytest.raises(ClientError) as refused:
            call()
        assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert client.head_object(Bucket="models", Key="here")["ContentLength"] == 1
    assert client.get_object(Bucket="models", Key="here")["Body"].read() == b"x"


def test_delivery_needs_no_list_bucket_and_a_rerun_writes_nothing(
    s3: MotoS3, tmp_path: Path
) -> None:
    run = local_run(tmp_path, FILES)
    s3.least_privilege = True

    assert (
        deliver(S3_TARGET, "job-a", run, tmp_path / "outputs")
        == "3 files: 3 written, 0 already present"
    )
    assert [r.status for r in s3.calls() if r.method == "HEAD"][:1] == [403]  # unknown: written
    s3.requests.clear()
    assert (
        deliver(S3_TARGET, "job-a", run, tmp_path / "outputs")
        == "3 files: 0 written, 3 already present"
    )
    assert s3.writes() == []  # idempotent: HEAD of a key that exists is allowed


def test_promotion_takes_the_file_names_from_the_manifest_not_a_listing(
    s3: MotoS3, tmp_path: Path
) -> None:
    run = local_run(tmp_path, FILES)
    deliver(S3_TARGET, "job-a", run, tmp_path / "outputs")
    s3.least_privilege = True

    assert promotion.move(ALIAS, SOURCE, run) == (
        f"{ALIAS.uri} now holds run {run.run_id} (3 copied, 0 removed)"
    )
    assert promotion.move(ALIAS, SOURCE, run) == f"{ALIAS.uri} already holds run {run.run_id}"
    assert not [r for r in s3.calls() if r.status == 403 and r.write]
    s3.least_privilege = False
    objects = s3_objects(s3)
    assert objects["aliases/prod/weights.bin"] == FILES["weights.bin"]
    assert json.loads(objects["aliases/prod/trainops.json"])["run_id"] == run.run_id
