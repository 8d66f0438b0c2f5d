"""What a URL can make trainops request (DESIGN §13a): one egress policy for input fingerprints,
provider outputs read for delivery, and `checkout`.

Everything runs on 127.0.0.1, so the emulators trainops may talk to are named in the
environment, and a refused host is another loopback port nobody named, or a spelling that
normalises to a refused address. Each test proves the refusal where it matters: the server that
would have answered received no request (not a connection error), and nothing was uploaded.
Where an address cannot be served on loopback (100.64.0.0/10, 6to4 of 169.254.169.254), a name
the system resolves to the loopback emulator is given a resolver answering that address, as DNS
would on the network where it lives: a request let through would reach the emulator.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_replicate_cli import R8_TOKEN, Replicated, job
from tests.emulators.huggingface import HubEmulator
from tests.emulators.replicate import ReplicateEmulator, SimClock
from tests.emulators.web import WebServer
from tests.security.test_state_branch import forge, run_record, state_text
from tests.support.workspace import UserRepo, explain
from trainops.delivery import DeliveryError, deliver
from trainops.fingerprints import Observer, check_inputs
from trainops.manifest import DeliverTarget
from trainops.state.model import Health, Run

MAX_REDIRECTS = 3  # egress.MAX_REDIRECTS, as the fingerprints had it before
TOKEN_PATH = "/computeMetadata/v1/token"
METADATA_ANSWER = b'{"access_token":"ya29.metadata-secret","expires_in":3599}'


@pytest.fixture
def web() -> Iterator[WebServer]:
    """The refused host: a loopback server nobody named, answering like a metadata service."""
    with WebServer() as server:
        server.put(TOKEN_PATH, METADATA_ANSWER)
        yield server


def port_of(server: WebServer) -> int:
    return int(server.url.rsplit(":", 1)[1])


def numeric_or_public(host: str, port: int) -> list[str]:
    """A resolver without the network: numeric spellings read as the system reads them, any
    name answered with a public address (what DNS would say of a name a pull request chose)."""
    try:
        infos = socket.getaddrinfo(host, port, flags=socket.AI_NUMERICHOST)
    except socket.gaierror:
        return ["93.184.215.14"]
    return sorted({str(i[4][0]) for i in infos})


# ---- the normaliser, form by form ----------------------------------------------------------

FORMS = {
    # spelling -> the address it normalises to
    "1684301000": "100.100.100.200",  # Alibaba's metadata service, decimal
    "0x646464c8": "100.100.100.200",  # ... hex
    "0144.0144.0144.0310": "100.100.100.200",  # ... octal
    "2130706433": "127.0.0.1",
    "0x7f000001": "127.0.0.1",
    "0177.0.0.1": "127.0.0.1",
    "0x7f.1": "127.0.0.1",
    "127.1": "127.0.0.1",
    "127.0.0.1.": "127.0.0.1",  # trailing dot
    "017700000001": "127.0.0.1",
    "0": "0.0.0.0",
    "169.254.43518": "169.254.169.254",  # short form, last part two bytes
    "[::ffff:127.0.0.1]": "::ffff:7f00:1",
    "[::ffff:a9fe:a9fe]": "::ffff:a9fe:a9fe",
    "[::127.0.0.1]": "::7f00:1",  # IPv4-compatible (deprecated, still routed by some stacks)
    "[::ffff:0:127.0.0.1]": "::ffff:0:7f00:1",  # IPv4-translated (SIIT)
    "[2002:a9fe:a9fe::1]": "2002:a9fe:a9fe::1",  # 6to4 of 169.254.169.254
    "[2001:0:4136:e378:8000:63bf:56ff:5601]": "2001:0:4136:e378:8000:63bf:56ff:5601",  # Teredo
    "[64:ff9b::a9fe:a9fe]": "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
    "[fd00:ec2::254]": "fd00:ec2::254",  # AWS metadata over IPv6
    "[fe80::1%25eth0]": "fe80::1",  # link-local with a zone
    "100.64.0.1": "100.64.0.1",  # carrier-grade NAT
    "100.127.255.254": "100.127.255.254",
    "10.0.0.1": "10.0.0.1",
    "192.168.1.1": "192.168.1.1",
    "224.0.0.251": "224.0.0.251",  # multicast
    "240.0.0.1": "240.0.0.1",  # reserved
    "[::]": "::",
    "[::1]": "::1",
    "Metadata.Google.Internal.": "metadata.google.internal",
    "metadata": "metadata",
    "instance-data": "instance-data",
    "metadata.goog": "metadata.goog",
}
PUBLIC = ["replicate.delivery", "pbxt.replicate.delivery", "8.8.8.8", "[2606:4700::1111]"]


@pytest.mark.parametrize("host", FORMS, ids=FORMS)
def test_every_spelling_of_an_internal_address_is_normalised_and_refused(host: str) -> None:
    # Through the fingerprints' guard (on the original code too: it is its own API), with a
    # resolver that sends nothing to the network.
    refused = Observer({}, resolve=numeric_or_public).allowed(host, 80)
    assert refused, f"{host} was allowed"
    from trainops.egress import canonical_host

    canonical = FORMS[host]
    assert canonical_host(host.replace("%25", "%")) == canonical
    assert canonical in refused and "TRAINOPS_EGRESS_HOSTS" in refused


@pytest.mark.parametrize("host", PUBLIC)
def test_public_hosts_are_allowed_and_a_named_internal_one_is_too(host: str) -> None:
    assert Observer({}, resolve=numeric_or_public).allowed(host, 443) == ""
    named = Observer({"TRAINOPS_EGRESS_HOSTS": "0x7f.1:8080"}, resolve=numeric_or_public)
    assert named.allowed("127.0.0.1", 8080) == "" and named.allowed("2130706433", 8080) == ""
    assert named.allowed("127.0.0.1", 8081) != ""  # a name is for its port


# ---- fingerprints end to end ---------------------------------------------------------------

ANSWERS = ["100.100.100.200", "100.64.0.1", "2002:a9fe:a9fe::1", "64:ff9b::a9fe:a9fe"]


@pytest.mark.parametrize("address", ANSWERS)
def test_a_name_resolving_to_an_internal_address_is_never_asked(
    web: WebServer, address: str
) -> None:
    url = f"http://localhost:{port_of(web)}{TOKEN_PATH}"
    observer = Observer({}, resolve=lambda host, port: [address])
    seen = observer.observe([url], hashed={url})[url]
    assert web.count() == 0, web.requests
    assert seen.sha256 == "" and address in seen.note


def test_the_address_judged_is_the_address_connected_to(web: WebServer) -> None:
    """No second resolution between the check and the connection (DNS rebinding): a name only
    the policy's resolver knows is reached at the address it answered, and only because the
    environment names it; the same answer for an unnamed name is refused."""
    port = port_of(web)
    answers = {"weights.invalid": ["127.0.0.1"], "rebind.invalid": ["127.0.0.1"]}
    observer = Observer(
        {"TRAINOPS_INPUT_HOSTS": f"weights.invalid:{port}"},  # the older name, still read
        resolve=lambda host, p: answers[host],
    )
    good = f"http://weights.invalid:{port}{TOKEN_PATH}"
    bad = f"http://rebind.invalid:{port}{TOKEN_PATH}"
    seen = observer.observe([good, bad])
    assert seen[good].fingerprint and not seen[good].note, seen[good]
    assert "rebind.invalid resolves to a loopback address" in seen[bad].note
    assert web.count() == 1  # the named one's HEAD, nothing else


def test_odd_spellings_of_the_emulators_address_reach_nothing_through_fingerprints(
    web: WebServer,
) -> None:
    port = port_of(web)
    urls = [
        f"http://{host}:{port}{TOKEN_PATH}"
        for host in ("2130706433", "0x7f000001", "0177.0.0.1", "127.1", "127.0.0.1.")
    ] + [
        f"http://[::ffff:127.0.0.1]:{port}{TOKEN_PATH}",
        f"http://good@127.0.0.1:{port}{TOKEN_PATH}",
    ]
    seen = Observer({}).observe(urls, hashed=set(urls))
    assert web.count() == 0, web.requests
    assert all(s.note.startswith("not asked: ") and not s.sha256 for s in seen.values())


def test_a_pin_of_a_metadata_answer_prints_no_digest_of_it(web: WebServer) -> None:
    url = f"http://localhost:{port_of(web)}{TOKEN_PATH}"
    observer = Observer({}, resolve=lambda host, port: ["100.100.100.200"])
    checked = check_inputs(
        observer, {"a": {"images": url}}, {"a": {"images": "sha256:" + "0" * 64}}, {}
    )
    import hashlib

    leaked = hashlib.sha256(METADATA_ANSWER).hexdigest()
    assert checked["a"].refused and leaked not in checked["a"].refused
    assert web.count() == 0


def test_a_redirect_to_a_refused_host_is_refused_at_the_hop(web: WebServer) -> None:
    with WebServer() as named:
        port = port_of(named)
        named.redirect("/a.zip", f"http://localhost:{port_of(web)}{TOKEN_PATH}")
        named.redirect("/b.zip", f"http://0x7f000001:{port_of(web)}{TOKEN_PATH}")
        for i in range(MAX_REDIRECTS + 1):
            named.redirect(f"/r{i}", f"/r{i + 1}")
        environ = {"TRAINOPS_EGRESS_HOSTS": f"127.0.0.1:{port},localhost:{port}"}
        observer = Observer(environ, resolve=lambda host, p: ["100.64.0.1"])
        urls = [f"{named.url}/a.zip", f"{named.url}/b.zip", f"{named.url}/r0"]
        seen = observer.observe(urls, hashed=set(urls))
        assert web.count() == 0, web.requests
        assert "redirected to localhost" in seen[urls[0]].note
        assert "redirected to 0x7f000001: 127.0.0.1 is a loopback" in seen[urls[1]].note
        assert f"more than {MAX_REDIRECTS} redirects" in seen[urls[2]].note
        assert named.count() == 2 + MAX_REDIRECTS + 1  # one per hop judged, then no more


# ---- provider outputs: delivery and checkout -----------------------------------------------

HUB_REPO = "acme/portraits-weights"


def replicate_run(weights: str) -> Run:
    return Run(
        revision="3f2c0a9b8d7e",
        attempt=1,
        provider="replicate",
        input_hash="h",
        created_at=0.0,
        source_commit="ab" * 20,
        run_id="rep123",
        health=Health.SUCCEEDED,
        outputs={"weights": weights, "version": "acme/portraits:9f8e7d"},
    )


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[HubEmulator]:
    with HubEmulator(namespaces={"acme"}) as emulator:
        for key, value in emulator.env().items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
        yield emulator


def test_forged_outputs_on_refused_hosts_are_not_downloaded_nor_uploaded(
    web: WebServer, hub: HubEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = DeliverTarget.model_validate({"huggingface": {"repo": HUB_REPO}})
    with WebServer() as named:
        monkeypatch.setenv("TRAINOPS_EGRESS_HOSTS", f"127.0.0.1:{port_of(named)}")
        named.redirect("/weights.tar", f"{web.url}{TOKEN_PATH}")
        refused = {
            "unnamed-port": f"{web.url}{TOKEN_PATH}",
            "decimal": f"http://2130706433:{port_of(web)}{TOKEN_PATH}",
            "mapped": f"http://[::ffff:127.0.0.1]:{port_of(web)}{TOKEN_PATH}",
            "userinfo-on-named": f"http://good@127.0.0.1:{port_of(named)}/weights.tar",
            "redirect": f"{named.url}/weights.tar",
            "metadata-name": "http://metadata.google.internal/computeMetadata/v1/token",
        }
        for name, url in refused.items():
            with pytest.raises(DeliveryError) as failed:
                deliver(target, "pub", replicate_run(url))
            message = failed.value.message
            assert "which trainops does not fetch from" in message, (name, message)
            assert "nothing delivered" in message and "ya29" not in message
        assert named.count() == 1  # the redirect's first hop, judged; its target never asked
    assert web.count() == 0, web.requests
    assert hub.writes() == []


def test_a_forged_state_output_is_not_fetched_by_checkout(tmp_path: Path, web: WebServer) -> None:
    repo = UserRepo.create(tmp_path, {"portraits": job("portraits")})
    repo.env["REPLICATE_API_TOKEN"] = R8_TOKEN
    forged = run_record(
        "3f2c0a9b8d7e",
        "forgedtraining1",
        provider="replicate",
        health="Succeeded",
        outputs={"weights": f"{web.url}{TOKEN_PATH}"},
    )
    forge(repo, {"state/portraits.json": state_text("portraits", forged)})
    result = repo.trainops("checkout", "forgedtraining1", "-o", str(tmp_path / "out"))
    repo.cleanup()
    assert result.returncode != 0, explain(result)
    assert "output 'weights' of run forgedtraining1 is on 127.0.0.1" in result.stderr, explain(
        result
    )
    assert web.count() == 0, web.requests
    assert not (tmp_path / "out").exists()


def test_a_replicate_output_on_an_unnamed_host_is_neither_downloaded_nor_published(
    tmp_path: Path, web: WebServer
) -> None:
    """The provider's answer is hostile: a training whose weights URL is a metadata endpoint
    fails its delivery naming the host; nothing reaches that host or the Hub."""
    deliver_to = [{"huggingface": {"repo": HUB_REPO}}]
    with (
        ReplicateEmulator(token=R8_TOKEN, run_seconds=10, clock=SimClock(time.time())) as emu,
        HubEmulator(namespaces={"acme"}) as hub,
    ):
        emu.weights_url = lambda training: f"{web.url}{TOKEN_PATH}"
        doc = json.loads(json.dumps(_yaml(job("portraits"))))
        doc["spec"]["deliver"] = deliver_to
        repo = UserRepo.create(tmp_path, {"portraits": _dump(doc)})
        repo.env.update({**hub.env(), "HF_HOME": str(tmp_path / "hf")})
        repo.env["REPLICATE_BASE_URL"] = emu.base_url
        user = Replicated(repo, emu)
        user.ok("lock")
        repo.commit("trainops lock")
        user.ok("apply")
        emu.advance(300)
        result = user.run("apply")
        again = user.run("apply")
        rows: dict[str, Any] = user.status_json()
        repo.cleanup()
        assert hub.writes() == []
    assert web.count() == 0, web.requests
    assert result.returncode != 0, explain(result)
    text = result.stdout + result.stderr
    assert "output 'weights' of run " in text and "is on 127.0.0.1" in text, explain(result)
    assert "ya29" not in text + again.stdout + again.stderr
    status = rows["portraits"]["deliveries"][f"huggingface:{HUB_REPO}"]
    assert status.startswith("failed: ") and "127.0.0.1" in status


def _yaml(text: str) -> Any:
    import yaml

    return yaml.safe_load(text)


def _dump(doc: Any) -> str:
    import yaml

    return yaml.safe_dump(doc, sort_keys=False)


def test_the_download_policy_sends_nothing_of_this_machine(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A named host gets no proxy, netrc or auth header from the environment."""
    with WebServer() as named:
        named.put("/w.tar", b"weights")
        netrc = tmp_path / "netrc"
        netrc.write_text("machine 127.0.0.1 login u password netrc-secret\n")
        environ = {
            "TRAINOPS_EGRESS_HOSTS": f"127.0.0.1:{port_of(named)}",
            "NETRC": str(netrc),
            "HTTP_PROXY": "http://10.9.9.9:3128",
            "ALL_PROXY": "http://10.9.9.9:3128",
        }
        from trainops.egress import Policy

        policy = Policy(environ)
        with (
            policy.client(5.0) as client,
            policy.stream(client, "GET", f"{named.url}/w.tar") as response,
        ):
            assert response.read() == b"weights"
        [request] = named.requests
        assert "authorization" not in request.headers and "proxy-authorization" not in (
            request.headers
        )
