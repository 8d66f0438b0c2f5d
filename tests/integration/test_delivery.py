"""Delivery to S3 (moto's server) and to the Hub (the loopback emulator), through the real boto3 and
huggingface_hub clients: what the first delivery writes, that a repeated one writes nothing, that a
retry after a partial failure writes only what is missing, and that errors are clear and carry no
credential. Requests are counted where they arrive.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.emulators.huggingface import HubEmulator, git_blob_id
from tests.emulators.s3 import MotoS3
from trainops.delivery import DeliveryError, deliver
from trainops.manifest import DeliverTarget
from trainops.state.model import Health, Run

REVISION = "3f2c0a9b8d7e"
S3_TARGET = DeliverTarget.model_validate({"s3": {"uri": "s3://models/team/"}})
HUB_TARGET = DeliverTarget.model_validate({"huggingface": {"repo": "acme/portraits"}})
PREFIX = f"team/job-a/{REVISION}"


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


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[HubEmulator]:
    with HubEmulator(namespaces={"acme"}) as emulator:
        for key, value in emulator.env().items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
        yield emulator
    assert emulator.errors == []


def no_xet(monkeypatch: pytest.MonkeyPatch) -> None:
    """`HF_HUB_DISABLE_XET=1` (in `HubEmulator.env()`) as the client reads it, at import: set
    after the import, so in this process the constant it fills is set too. The emulator serves
    LFS, not Xet, which `hf_xet` (installed) would take for every LFS-mode file."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)


def local_run(tmp_path: Path, files: dict[str, bytes]) -> Run:
    out = tmp_path / "outputs"
    out.mkdir(exist_ok=True)
    for name, data in files.items():
        (out / name).write_bytes(data)
    return Run(
        revision=REVISION,
        attempt=1,
        provider="local",
        input_hash="h",
        created_at=0.0,
        source_commit="c0ffee" * 6 + "c0ff",
        run_id=f"job-a-{REVISION}-1",
        health=Health.SUCCEEDED,
        outputs={Path(n).stem: str(out / n) for n in files},
    )


FILES = {"weights.bin": b"\x00weights" * 4096, "config.json": b'{"rank": 8}\n'}


def s3_objects(s3: MotoS3) -> dict[str, bytes]:
    client = s3.client()
    keys = [o["Key"] for o in client.list_objects_v2(Bucket="models").get("Contents", [])]
    return {k: client.get_object(Bucket="models", Key=k)["Body"].read() for k in keys}


# ---- S3 ---------------------------------------------------------------------------------------


def test_s3_first_delivery_writes_every_file_and_a_second_writes_nothing(
    s3: MotoS3, tmp_path: Path
) -> None:
    run = local_run(tmp_path, FILES)
    assert (
        deliver(S3_TARGET, "job-a", run, tmp_path / "outputs")
        == "3 files: 3 written, 0 already present"
    )
    objects = s3_objects(s3)
    assert sorted(objects) == [
        f"{PREFIX}/config.json",
        f"{PREFIX}/trainops.json",
        f"{PREFIX}/weights.bin",
    ]
    assert objects[f"{PREFIX}/weights.bin"] == FILES["weights.bin"]
    manifest = json.loads(objects[f"{PREFIX}/trainops.json"])
    assert manifest["run_id"] == run.run_id and manifest["source_commit"] == run.source_commit
    head = s3.client().head_object(Bucket="models", Key=f"{PREFIX}/weights.bin")
    assert head["Metadata"]["sha256"] == manifest["files"]["weights.bin"]["sha256"]
    assert [r.path.rsplit("/", 1)[1] for r in s3.writes()] == [
        "config.json",
        "weights.bin",
        "trainops.json",
    ]  # the manifest last: it marks completion

    first = len(s3.calls())
    assert (
        deliver(S3_TARGET, "job-a", run, tmp_path / "outputs")
        == "3 files: 0 written, 3 already present"
    )
    second = s3.calls()[first:]
    assert [r.method for r in second] == ["HEAD"] * 3


def test_s3_a_changed_object_is_rewritten_alone(s3: MotoS3, tmp_path: Path) -> None:
    run = local_run(tmp_path, FILES)
    deliver(S3_TARGET, "job-a", run, tmp_path / "outputs")
    s3.client().put_object(Bucket="models", Key=f"{PREFIX}/config.json", Body=b"tampered")
    s3.requests.clear()

    assert (
        deliver(S3_TARGET, "job-a", run, tmp_path / "outputs")
        == "3 files: 1 written, 2 already present"
    )
    assert [r.path for r in s3.writes()] == [f"/models/{PREFIX}/config.json"]
    assert s3_objects(s3)[f"{PREFIX}/config.json"] == FILES["config.json"]


def test_s3_a_delivery_failing_midway_is_completed_by_the_retry(s3: MotoS3, tmp_path: Path) -> None:
    run = local_run(tmp_path, FILES)
    s3.fail("PUT", r"/weights\.bin$", status=403, code="AccessDenied")
    with pytest.raises(DeliveryError) as failed:
        deliver(S3_TARGET, "job-a", run, tmp_path / "outputs")
    assert failed.value.message == (
        f"access denied writing s3://models/{PREFIX}/weights.bin (AccessDenied)"
    )
    assert sorted(s3_objects(s3)) == [f"{PREFIX}/config.json"]  # written before the failure

    s3.requests.clear()
    assert (
        deliver(S3_TARGET, "job-a", run, tmp_path / "outputs")
        == "3 files: 2 written, 1 already present"
    )
    assert [r.path.rsplit("/", 1)[1] for r in s3.writes()] == ["weights.bin", "trainops.json"]
    assert len(s3_objects(s3)) == 3


def test_s3_errors_are_clear_and_carry_no_credential(
    s3: MotoS3, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = local_run(tmp_path, FILES)
    missing = DeliverTarget.model_validate({"s3": {"uri": "s3://no-such-bucket/x"}})
    with pytest.raises(DeliveryError) as no_bucket:
        deliver(missing, "job-a", run, tmp_path / "outputs")
    assert no_bucket.value.message == "S3 bucket 'no-such-bucket' does not exist"

    # A 403 on HEAD is "unknown" (no s3:ListBucket, test_s3_service_limits); one on the PUT
    # is the refusal, and the hint names the permission.
    s3.fail("PUT", "", status=403, code="AccessDenied")
    with pytest.raises(DeliveryError) as denied:
        deliver(S3_TARGET, "job-a", run, tmp_path / "outputs")
    assert denied.value.message == (
        f"access denied writing s3://models/{PREFIX}/config.json (AccessDenied)"
    )
    assert "AWS_ACCESS_KEY_ID" in denied.value.hint
    assert f"s3:PutObject on arn:aws:s3:::models/{PREFIX}/*" in denied.value.hint

    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(DeliveryError) as anonymous:
        deliver(S3_TARGET, "job-a", run, tmp_path / "outputs")
    assert anonymous.value.message.startswith("no AWS credentials to write s3://models/")
    for error in (no_bucket, denied, anonymous):
        assert s3.secret_key not in str(error.value)
        assert s3.access_key not in str(error.value)


# ---- the Hub ----------------------------------------------------------------------------------


def test_hub_first_delivery_creates_the_repo_and_a_second_makes_no_write(
    hub: HubEmulator, tmp_path: Path
) -> None:
    run = local_run(tmp_path, FILES)

    assert (
        deliver(HUB_TARGET, "job-a", run, tmp_path / "outputs")
        == "3 files: 3 written, 0 already present"
    )
    assert [r.endpoint for r in hub.calls()] == ["paths-info", "create", "preupload", "commit"]
    assert hub.repos["acme/portraits"].private
    files = hub.files("acme/portraits")
    assert files["weights.bin"] == FILES["weights.bin"]
    assert json.loads(files["trainops.json"])["revision"] == REVISION
    assert hub.commits("acme/portraits")[-1].summary == (
        f"trainops: job-a revision {REVISION} (run {run.run_id})"
    )

    first = len(hub.calls())
    assert (
        deliver(HUB_TARGET, "job-a", run, tmp_path / "outputs")
        == "3 files: 0 written, 3 already present"
    )
    assert [r.endpoint for r in hub.calls()[first:]] == ["paths-info"]
    assert len(hub.writes()) == 3


def test_hub_a_changed_file_is_committed_alone(hub: HubEmulator, tmp_path: Path) -> None:
    run = local_run(tmp_path, FILES)
    deliver(HUB_TARGET, "job-a", run, tmp_path / "outputs")
    hub.repos["acme/portraits"].files["weights.bin"] = b"stale weights"

    assert (
        deliver(HUB_TARGET, "job-a", run, tmp_path / "outputs")
        == "3 files: 1 written, 2 already present"
    )
    assert hub.commits("acme/portraits")[-1].paths == ("weights.bin",)
    assert hub.files("acme/portraits")["weights.bin"] == FILES["weights.bin"]


def test_hub_lfs_files_are_compared_by_sha256(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with HubEmulator(lfs_from_size=1024) as emulator:
        for key, value in emulator.env().items():
            monkeypatch.setenv(key, value)
        no_xet(monkeypatch)
        run = local_run(tmp_path, FILES)
        deliver(HUB_TARGET, "job-a", run, tmp_path / "outputs")
        assert (
            deliver(HUB_TARGET, "job-a", run, tmp_path / "outputs")
            == "3 files: 0 written, 3 already present"
        )
        # create, preupload, then weights.bin through LFS (batch, upload, verify), commit
        assert [w.endpoint for w in emulator.writes()] == [
            "create",
            "preupload",
            "lfs-batch",
            "lfs-upload",
            "lfs-verify",
            "commit",
        ]

        from huggingface_hub import HfApi

        api = HfApi(endpoint=emulator.url, token=emulator.token)
        (weights,) = api.get_paths_info("acme/portraits", ["weights.bin"])
        assert weights.lfs is not None and weights.blob_id != git_blob_id(FILES["weights.bin"])


def test_a_large_hub_delivery_takes_the_lfs_path(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The Hub answers a preupload of a large file with `uploadMode: lfs` (`_commit_api.py`
    `_fetch_upload_modes`): the client asks the LFS batch endpoint, PUTs the content to the
    storage URL it gets (without the token: `lfs._upload_single_part`), verifies, and commits
    an `lfsFile`. The threshold is lowered to 1 KiB here; on the Hub it is about 10 MB."""
    with HubEmulator(namespaces={"acme"}, lfs_from_size=1024) as emulator:
        for key, value in emulator.env().items():
            monkeypatch.setenv(key, value)
        no_xet(monkeypatch)
        monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
        run = local_run(tmp_path, FILES)
        assert deliver(HUB_TARGET, "job-a", run, tmp_path / "outputs").startswith("3 files: 3")
        (upload,) = emulator.calls("lfs-upload")
        assert upload.status == 200 and "authorization" not in upload.headers
        assert upload.body == FILES["weights.bin"]
        (commit,) = [c for c in emulator.calls("commit") if c.status == 200]
        ops = [json.loads(line) for line in commit.body.decode().splitlines()]
        assert {o["value"]["path"]: o["key"] for o in ops[1:]} == {
            "weights.bin": "lfsFile",
            "config.json": "file",
            "trainops.json": "file",
        }
        assert emulator.files("acme/portraits")["weights.bin"] == FILES["weights.bin"]
        # the same content again (another job's delivery): stored already, no second upload
        other = DeliverTarget.model_validate({"huggingface": {"repo": "acme/other"}})
        deliver(other, "job-a", run, tmp_path / "outputs")
        assert len(emulator.calls("lfs-upload")) == 1
        assert emulator.files("acme/other")["weights.bin"] == FILES["weights.bin"]
    assert emulator.errors == []


@pytest.mark.parametrize("after_apply", [False, True], ids=["commit-refused", "answer-lost"])
def test_hub_a_failed_commit_is_completed_by_the_retry_without_duplicates(
    hub: HubEmulator, tmp_path: Path, after_apply: bool
) -> None:
    run = local_run(tmp_path, FILES)
    hub.fail("commit", 500, after_apply=after_apply)
    with pytest.raises(DeliveryError) as failed:
        deliver(HUB_TARGET, "job-a", run, tmp_path / "outputs")
    assert failed.value.message.startswith(
        "uploading to the Hub repo acme/portraits failed: HTTP 500"
    )

    summary = deliver(HUB_TARGET, "job-a", run, tmp_path / "outputs")
    commits = hub.commits("acme/portraits")
    assert [c.summary for c in commits][1:] == [
        f"trainops: job-a revision {REVISION} (run {run.run_id})"
    ]  # after the initial one
    assert commits[-1].paths == ("config.json", "trainops.json", "weights.bin")
    if after_apply:  # the first commit landed: the retry finds everything there
        assert summary == "3 files: 0 written, 3 already present"
        assert [r.endpoint for r in hub.calls()][-1] == "paths-info"
    else:
        assert summary == "3 files: 3 written, 0 already present"


def test_hub_errors_are_clear_and_carry_no_token(
    hub: HubEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = local_run(tmp_path, FILES)
    elsewhere = DeliverTarget.model_validate({"huggingface": {"repo": "other-org/weights"}})
    with pytest.raises(DeliveryError) as refused:
        deliver(elsewhere, "job-a", run, tmp_path / "outputs")
    assert refused.value.message == (
        "creating the Hub repo other-org/weights refused (HTTP 403): You don't have the rights "
        'to create a model under the namespace "other-org"'
    )

    monkeypatch.setenv("HF_TOKEN", "hf_wrong_token_123456")
    with pytest.raises(DeliveryError) as bad_token:
        deliver(HUB_TARGET, "job-a", run, tmp_path / "outputs")
    assert "does not accept this token (HTTP 401)" in bad_token.value.message
    assert "hf_wrong_token_123456" not in str(bad_token.value)

    monkeypatch.delenv("HF_TOKEN")
    with pytest.raises(DeliveryError) as no_token:
        deliver(HUB_TARGET, "job-a", run, tmp_path / "outputs")
    assert no_token.value.message == (
        "cannot deliver to the Hub repo acme/portraits: HF_TOKEN is not set"
    )
    assert hub.token not in str(refused.value)
    assert not hub.repos  # nothing was created by any of them


def test_an_unexpected_client_failure_becomes_a_recorded_delivery_error(
    hub: HubEmulator, tmp_path: Path
) -> None:
    hub.fail("commit", 200)  # a 200 without the commit's fields: the client trips over it
    with pytest.raises(DeliveryError) as failed:
        deliver(HUB_TARGET, "job-a", local_run(tmp_path, FILES), tmp_path / "outputs")
    assert failed.value.message == (
        "job-a: delivery to huggingface:acme/portraits failed: KeyError: 'commitUrl'"
    )


# ---- what is delivered ------------------------------------------------------------------------


@pytest.fixture
def weights_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """A loopback file server standing in for Replicate's weights URL (named in the
    environment: the egress policy asks no loopback host otherwise)."""
    served: dict[str, Any] = {"body": b"replicate-weights" * 1000, "hits": 0}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            served["hits"] += 1
            if not self.path.startswith("/files/trained_model.tar"):
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("content-length", str(len(served["body"])))
            self.end_headers()
            self.wfile.write(served["body"])

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    served["url"] = f"http://127.0.0.1:{server.server_address[1]}"
    monkeypatch.setenv("TRAINOPS_EGRESS_HOSTS", f"127.0.0.1:{server.server_address[1]}")
    yield served
    server.shutdown()
    server.server_close()


def replicate_run(url: str) -> Run:
    return Run(
        revision=REVISION,
        attempt=2,
        provider="replicate",
        input_hash="h",
        created_at=0.0,
        source_commit="ab" * 20,
        run_id="rep-123",
        health=Health.SUCCEEDED,
        trainer="ostris/trainer:26dce37a",
        destination="acme/portraits",
        outputs={"weights": url, "version": "acme/portraits:9f8e7d"},
    )


def test_replicate_weights_are_downloaded_and_the_version_recorded(
    s3: MotoS3, weights_server: dict[str, Any]
) -> None:
    run = replicate_run(f"{weights_server['url']}/files/trained_model.tar?sig=abc")
    assert deliver(S3_TARGET, "job-a", run) == "2 files: 2 written, 0 already present"

    objects = s3_objects(s3)
    assert objects[f"{PREFIX}/trained_model.tar"] == weights_server["body"]
    manifest = json.loads(objects[f"{PREFIX}/trainops.json"])
    assert manifest["outputs"] == {"version": "acme/portraits:9f8e7d"}
    assert manifest["trainer"] == "ostris/trainer:26dce37a"
    assert manifest["provider"] == "replicate" and manifest["attempt"] == 2
    assert list(manifest["files"]) == ["trained_model.tar"]
    assert "sig=abc" not in objects[f"{PREFIX}/trainops.json"].decode()


def test_a_failed_download_names_the_url_without_its_query(
    s3: MotoS3, weights_server: dict[str, Any]
) -> None:
    run = replicate_run(f"{weights_server['url']}/gone/weights.tar?token=s3cr3t")
    with pytest.raises(DeliveryError) as failed:
        deliver(S3_TARGET, "job-a", run)
    assert failed.value.message == (
        f"job-a: downloading output 'weights' from {weights_server['url']}/gone/weights.tar "
        "failed: HTTP 404"
    )
    assert s3.writes() == []


def test_outputs_that_are_gone_or_clash_with_the_manifest_are_refused(
    s3: MotoS3, tmp_path: Path
) -> None:
    run = local_run(tmp_path, {"trainops.json": b"{}"})
    with pytest.raises(DeliveryError, match=r"an output file is named trainops\.json"):
        deliver(S3_TARGET, "job-a", run, tmp_path / "outputs")
    (tmp_path / "outputs" / "trainops.json").unlink()
    with pytest.raises(DeliveryError, match=r"output 'trainops' of run .* is gone"):
        deliver(S3_TARGET, "job-a", run, tmp_path / "outputs")
    assert s3.writes() == []
