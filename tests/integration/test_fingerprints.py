"""Remote input fingerprints (DESIGN §18) against real servers on loopback: a web server, moto's
S3 and the Hub emulator. What must hold: HEAD only, a changed object changes its fingerprint,
no request to a local or metadata address unless the environment names it, bounded redirects,
no credential over http(s), and an unreachable or slow host is a note, never an exception."""

from __future__ import annotations

import hashlib
import socket
from collections.abc import Iterator

import pytest

from tests.emulators.web import WebServer
from trainops.fingerprints import Observer, drifted, record, remote_inputs


@pytest.fixture
def web() -> Iterator[WebServer]:
    with WebServer() as server:
        server.put("/portraits.zip", b"portraits v1")
        yield server


def observer(web: WebServer, **kw: object) -> Observer:
    return Observer({"TRAINOPS_INPUT_HOSTS": f"127.0.0.1:{web.url.rsplit(':', 1)[1]}"}, **kw)  # type: ignore[arg-type]


def test_a_changed_object_changes_its_fingerprint_and_only_head_is_sent(web) -> None:
    url = f"{web.url}/portraits.zip"
    first = observer(web).observe([url])[url]
    again = observer(web).observe([url, url])[url]
    web.put("/portraits.zip", b"portraits v2")
    changed = observer(web).observe([url])[url]
    assert first.fingerprint and first.fingerprint == again.fingerprint
    assert changed.fingerprint != first.fingerprint and not changed.note
    assert (web.count("HEAD"), web.count("GET")) == (3, 0)
    assert not drifted(record(url, first.fingerprint), url, again.fingerprint)
    assert drifted(record(url, first.fingerprint), url, changed.fingerprint)
    assert not drifted(record(url + "?v=2", first.fingerprint), url, changed.fingerprint)


def test_a_pinned_object_is_hashed_with_one_get(web) -> None:
    url = f"{web.url}/portraits.zip"
    seen = observer(web).observe([], hashed={url})[url]
    assert seen.sha256 == hashlib.sha256(b"portraits v1").hexdigest()
    assert web.count("GET") == 1


def test_local_and_metadata_addresses_are_never_asked_unless_named(web) -> None:
    url = f"{web.url}/portraits.zip"
    seen = Observer({}).observe([url])[url]
    assert "loopback address" in seen.note and "TRAINOPS_EGRESS_HOSTS" in seen.note
    meta = "http://169.254.169.254/latest/meta-data/iam/"
    assert "metadata" in Observer({}).observe([meta])[meta].note
    # A named host that redirects to a private address: the redirect is not followed.
    web.redirect("/moved.zip", "http://10.1.2.3/secret.zip")
    moved = f"{web.url}/moved.zip"
    assert "10.1.2.3" in observer(web).observe([moved])[moved].note
    assert web.count() == 1  # only the named host's HEAD


def test_redirects_are_bounded_and_credentials_never_sent(web) -> None:
    for i in range(5):
        web.redirect(f"/r{i}", f"/r{i + 1}")
    url = f"{web.url}/r0"
    assert "redirects" in observer(web).observe([url])[url].note
    assert web.count() == 4
    secret = f"http://user:pw@127.0.0.1:{web.url.rsplit(':', 1)[1]}/portraits.zip"
    assert "credentials" in observer(web).observe([secret])[secret].note
    assert all("authorization" not in r.headers and "cookie" not in r.headers for r in web.requests)


def test_an_unreachable_or_slow_host_is_a_note(web) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    dead = f"http://127.0.0.1:{closed}/x.zip"
    seen = Observer({"TRAINOPS_INPUT_HOSTS": f"127.0.0.1:{closed}"}).observe([dead])[dead]
    assert seen.fingerprint == "" and "cannot observe" in seen.note
    web.delay = 2.0
    url = f"{web.url}/portraits.zip"
    slow = observer(web, deadline=0.2).observe([url])[url]
    assert slow.fingerprint == "" and "no answer within" in slow.note


def test_remote_inputs_are_the_top_level_urls() -> None:
    given = {"a": "https://x/y.zip", "b": "s3://bucket/k", "c": "hf://acme/m", "d": 3, "e": "x"}
    assert remote_inputs(given) == {
        "a": "https://x/y.zip",
        "b": "s3://bucket/k",
        "c": "hf://acme/m",
    }


def test_s3_objects_and_hub_revisions(monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import HfApi

    from tests.emulators.huggingface import HubEmulator
    from tests.emulators.s3 import MotoS3

    with MotoS3() as s3, HubEmulator(namespaces={"acme"}) as hub:
        for name, value in s3.env().items():
            monkeypatch.setenv(name, value)  # boto3 reads its own environment
        client = s3.client()
        client.create_bucket(Bucket="acme-data")
        client.put_object(Bucket="acme-data", Key="portraits.zip", Body=b"v1")
        api = HfApi(endpoint=hub.url, token=hub.token)
        api.create_repo("acme/base")
        api.upload_file(path_or_fileobj=b"w1", path_in_repo="w.bin", repo_id="acme/base")
        obs = Observer({**s3.env(), **hub.env()})
        urls = ["s3://acme-data/portraits.zip", "hf://acme/base", "s3://acme-data/none.zip"]
        before = obs.observe(urls)
        client.put_object(Bucket="acme-data", Key="portraits.zip", Body=b"v2")
        api.upload_file(path_or_fileobj=b"w2", path_in_repo="w.bin", repo_id="acme/base")
        after = obs.observe(urls)
        for url in urls[:2]:
            assert before[url].fingerprint and before[url].fingerprint != after[url].fingerprint
        assert "revision=" in after["hf://acme/base"].fingerprint
        assert after["s3://acme-data/none.zip"].note.startswith("S3 answered")
        pinned = obs.observe([], hashed={urls[0]})[urls[0]]
        assert pinned.sha256 == hashlib.sha256(b"v2").hexdigest()
