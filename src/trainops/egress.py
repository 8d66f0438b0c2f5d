"""What trainops itself may request (DESIGN §13a): the one egress policy for every URL it
fetches on the word of something it does not trust — an input URL of a manifest
(fingerprints), an output URL a provider answered or a state file recorded (delivery,
`checkout`).

The rule, in order:

- http(s) only, and no userinfo (`http://user@host/`): a credential in a URL is never sent.
- The host is normalised before it is judged: a trailing dot, case, IPv6 zone; every IPv4 form
  `inet_aton` reads (decimal `1684301000`, hex `0x646464c8`, octal `0177.0.0.1`, short `127.1`);
  IPv6 that embeds IPv4 (mapped `::ffff:a.b.c.d`, compatible `::a.b.c.d`, 6to4 `2002::/16`,
  Teredo `2001::/32`, NAT64 `64:ff9b::/96`) is judged by the IPv4 it carries as well.
- A host the environment names may be asked, whatever its address: an endpoint variable
  trainops' own clients already trust (`ENDPOINT_ENVS`) or `TRAINOPS_EGRESS_HOSTS` (older name:
  `TRAINOPS_INPUT_HOSTS`), comma-separated `host` or `host:port`. `trainops.yaml` cannot name
  one: a pull request could change it.
- Any other host must be a public address, every address it resolves to included: loopback,
  private, link-local, carrier-grade NAT (100.64.0.0/10), unspecified, multicast, reserved and
  any non-global range are refused, and so are cloud metadata names and addresses. This is how
  Replicate's output URLs (`replicate.delivery`, `pbxt.replicate.delivery`, public CDN
  addresses) are admitted without naming them.
- The address judged is the address connected to: the client's network backend resolves, judges
  and connects itself, so a name that answers a public address to the check and a private one
  to the fetch (DNS rebinding) reaches nothing.
- Redirects are followed by hand, at most `MAX_REDIRECTS`, each hop judged again.
- Nothing of this machine travels: no auth header, no cookie, no netrc, no proxy from the
  environment (`trust_env=False`). Credentials go only through the official clients, to the
  endpoints their own variables name.

A refusal is `Refused` (its `host` and `reason`), raised before any byte is sent to that host.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any
from urllib.parse import urljoin, urlsplit

HOSTS_ENV = "TRAINOPS_EGRESS_HOSTS"
OLD_HOSTS_ENV = "TRAINOPS_INPUT_HOSTS"  # the fingerprints' name for it, still read
# Endpoints trainops' own clients already send requests (and credentials) to.
ENDPOINT_ENVS = (
    "REPLICATE_BASE_URL",
    "HF_ENDPOINT",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "GITHUB_API_URL",
    "RAY_ADDRESS",
)
# Names of cloud metadata services (GCP, AWS, Azure, Alibaba, OpenStack, Oracle); refused by
# name, before any resolution, unless the environment names them.
METADATA_NAMES = frozenset(
    {
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "instance-data",
        "instance-data.ec2.internal",
        "metadata.azure.com",
        "metadata.platformequinix.com",
        "metadata.tencentyun.com",
    }
)
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, Oracle
        "169.254.170.2",  # AWS ECS task credentials
        "169.254.169.253",  # AWS DNS
        "fd00:ec2::254",  # AWS over IPv6
        "fd00:ec2::23",
        "100.100.100.200",  # Alibaba
        "192.0.0.192",  # Oracle
    )
)
MAX_REDIRECTS = 3
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_COMPATIBLE = ipaddress.ip_network("::/96")

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[str]]


class Refused(Exception):
    """A request the policy does not make; nothing was sent to `host`."""

    def __init__(self, host: str, reason: str) -> None:
        super().__init__(reason)
        self.host, self.reason = host, reason


class Unresolved(OSError):
    """A host that resolves to no address now: nothing was sent, and nothing was judged (a
    failure of the network, retried like one, not a refusal)."""


# ---- normalising ---------------------------------------------------------------------------


def canonical_host(host: str) -> str:
    """`host` as it is judged and matched against the named hosts: lower case, no brackets,
    no zone, no trailing dot, and an IP address in its one canonical text (`0x7f.1` ->
    `127.0.0.1`, `::ffff:7f00:1` -> `::ffff:7f00:1` compressed)."""
    ip = parse_address(host)
    if ip is not None:
        return str(ip)
    return host.strip().lower().strip("[]").rstrip(".")


def parse_address(host: str) -> Address | None:
    """The IP address `host` spells in any form a resolver reads, or None for a name."""
    text = host.strip().lower()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    text = text.split("%", 1)[0]  # an IPv6 zone names an interface, not another address
    if ":" in text:
        try:
            return ipaddress.IPv6Address(text)
        except ValueError:
            return None
    return _inet_aton(text.rstrip(".") if text.count(".") > 0 else text)


def _inet_aton(text: str) -> ipaddress.IPv4Address | None:
    """IPv4 as `inet_aton` (and so getaddrinfo) reads it: 1 to 4 parts, each decimal, octal
    (leading 0) or hex (0x); the last part fills the remaining bytes."""
    parts = text.split(".")
    if not 1 <= len(parts) <= 4:
        return None
    values = []
    for part in parts:
        try:
            if part[:2] in ("0x", "0X"):
                value = int(part[2:], 16) if part[2:] else 0
            elif len(part) > 1 and part.startswith("0"):
                value = int(part[1:], 8)
            else:
                value = int(part, 10) if part.isdigit() else -1
        except ValueError:
            return None
        if value < 0:
            return None
        values.append(value)
    *head, last = values
    if any(v > 255 for v in head) or last >= 256 ** (4 - len(head)):
        return None
    number = 0
    for v in head:
        number = number * 256 + v
    number = number * 256 ** (4 - len(head)) + last
    return ipaddress.IPv4Address(number)


def embedded(ip: Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries (mapped, compatible, 6to4, Teredo, NAT64): a
    packet to it may end at them."""
    if isinstance(ip, ipaddress.IPv4Address):
        return []
    found: list[ipaddress.IPv4Address] = []
    if ip.ipv4_mapped is not None:
        found.append(ip.ipv4_mapped)
    if ip.sixtofour is not None:
        found.append(ip.sixtofour)
    if ip.teredo is not None:
        found += list(ip.teredo)
    if ip in _NAT64 or (ip in _COMPATIBLE and int(ip) > 1):
        found.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return found


def address_refusal(ip: Address) -> str:
    """Why an address is not one trainops asks unless named ("" for a public address)."""
    for one in embedded(ip):  # the IPv4 inside first: it says where the packet ends
        why = _one_refusal(one)
        if why:
            return f"{why} ({one}, inside {ip})"
    return _one_refusal(ip)


def _one_refusal(ip: Address) -> str:
    if ip in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_unspecified:
        return "the unspecified address"
    if ip.is_link_local:
        return "a link-local address"
    if isinstance(ip, ipaddress.IPv4Address) and ip in _CGNAT:
        return "a carrier-grade NAT address (100.64.0.0/10)"
    if ip.is_multicast:
        return "a multicast address"
    if ip.is_private:
        return "a private address"
    if ip.is_reserved or not ip.is_global:
        return "a reserved address"
    return ""


def _resolve(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


# ---- the policy ----------------------------------------------------------------------------


class Policy:
    """The egress rule for one environment. `only_named`: ask the named hosts alone (the
    fingerprints' `named` mode). `resolve` answers (host, port) -> addresses (tests)."""

    def __init__(
        self,
        environ: Mapping[str, str] | None = None,
        *,
        only_named: bool = False,
        resolve: Resolver | None = None,
        only_named_why: str = "",
    ) -> None:
        self.environ = os.environ if environ is None else environ
        self.only_named = only_named
        self.only_named_why = only_named_why
        self._resolve = resolve or _resolve
        self._named = named_hosts(self.environ)

    def named(self, host: str, port: int) -> bool:
        key = canonical_host(host)
        return (key, port) in self._named or (key, 0) in self._named

    def judge_url(self, url: str) -> tuple[str, str]:
        """(host, reason) for a URL refused by its text alone (reason "" when its text may be
        asked; its addresses are judged when connecting)."""
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            return "", "the URL cannot be read"
        host = parts.hostname or ""
        if parts.scheme not in ("http", "https"):
            return host, f"{parts.scheme or 'a URL without a scheme'} is not http(s)"
        if not host:
            return host, "the URL names no host"
        if "@" in parts.netloc:
            return host, "the URL carries credentials (user@host); they are never sent"
        return host, self.judge_host(host, port or (443 if parts.scheme == "https" else 80))

    def judge_host(self, host: str, port: int) -> str:
        """Why host:port is refused before resolving it ("" when it may be resolved)."""
        if self.named(host, port):
            return ""
        key = canonical_host(host)
        shown = key[:100]
        if self.only_named:
            return f"{shown} is not named in the environment{self.only_named_why}"
        ip = parse_address(key)
        if ip is None:
            if key in METADATA_NAMES or key.endswith(".internal"):
                why = "a cloud metadata or internal name"
                return f"{shown} is {why}; name it in {HOSTS_ENV} to allow it"
            return ""
        why = address_refusal(ip)
        return f"{shown} is {why}; name it in {HOSTS_ENV} to allow it" if why else ""

    def addresses(self, host: str, port: int) -> list[str]:
        """The addresses host:port may be connected to; `Refused` when any it resolves to is
        not public (unless the host is named)."""
        why = self.judge_host(host, port)
        if why:
            raise Refused(host, why)
        literal = parse_address(host)
        if literal is not None:
            return [str(literal)]
        try:
            found = self._resolve(canonical_host(host), port)
        except OSError:
            found = []
        if not found:  # not a refusal: nothing to judge, nothing to connect to (maybe later)
            raise Unresolved(f"{canonical_host(host)[:100]} does not resolve")
        if self.named(host, port):
            return found
        for text in found:
            ip = parse_address(text)
            why = address_refusal(ip) if ip is not None else "not an IP address"
            if why:
                raise Refused(
                    host,
                    f"{canonical_host(host)[:100]} resolves to {why} ({text}); name it in "
                    f"{HOSTS_ENV} to allow it",
                )
        return found

    def check(self, url: str) -> tuple[str, str]:
        """(host, reason) for `url` judged by its text and, for a name, its addresses now."""
        host, why = self.judge_url(url)
        if why:
            return host, why
        parts = urlsplit(url)
        try:
            self.addresses(host, parts.port or (443 if parts.scheme == "https" else 80))
        except Refused as exc:
            return host, exc.reason
        except Unresolved:
            pass  # judged again when connecting, where it fails as a connection does
        return host, ""

    def client(self, timeout: float) -> Any:
        """An httpx client that connects only where this policy allows (judged at connect),
        follows no redirect by itself, and sends nothing from this machine's environment."""
        import httpx

        return httpx.Client(
            transport=_transport(self),
            timeout=httpx.Timeout(timeout),
            follow_redirects=False,
            trust_env=False,
        )

    @contextmanager
    def stream(self, client: Any, method: str, url: str) -> Iterator[Any]:
        """The final response to `method url` after at most `MAX_REDIRECTS` redirects, each hop
        judged; `Refused` for a hop that is not asked, or one redirect too many."""
        at = url
        for _ in range(MAX_REDIRECTS + 1):
            host, why = self.judge_url(at)
            if why:
                shown = host[:100] or f"a {urlsplit(at).scheme or 'schemeless'} URL"
                raise Refused(host, why if at == url else f"redirected to {shown}: {why}")
            request = client.build_request(method, at)
            try:
                response = client.send(request, stream=True)
            except Refused as exc:
                if at == url:
                    raise
                raise Refused(exc.host, f"redirected to {exc.host[:100]}: {exc.reason}") from None
            try:
                if response.is_redirect and "location" in response.headers:
                    at = urljoin(at, response.headers["location"])
                    continue
                yield response
                return
            finally:
                response.close()
        raise Refused(urlsplit(at).hostname or "", f"more than {MAX_REDIRECTS} redirects")


def named_hosts(environ: Mapping[str, str]) -> set[tuple[str, int]]:
    """(canonical host, port) of every host the environment names; port 0: any port."""
    named: set[tuple[str, int]] = set()
    for var in ENDPOINT_ENVS:
        value = environ.get(var, "").strip()
        if not value:
            continue
        try:
            parts = urlsplit(value if "://" in value else f"http://{value}")
            if parts.hostname:
                default = 443 if parts.scheme == "https" else 80
                named.add((canonical_host(parts.hostname), parts.port or default))
        except ValueError:
            continue
    for item in ",".join(environ.get(v, "") for v in (HOSTS_ENV, OLD_HOSTS_ENV)).split(","):
        item = item.strip().lower()
        if not item:
            continue
        if item.startswith("["):
            host, sep, port = item[1:].partition("]:")
            host = host.rstrip("]")
        elif item.count(":") == 1:
            host, sep, port = item.partition(":")
        else:  # a name, an IPv4, or a bare IPv6 (no port)
            host, sep, port = item, "", ""
        if sep and port.isdigit():
            named.add((canonical_host(host), int(port)))
        elif not sep:
            named.add((canonical_host(host), 0))
    return named


# ---- connecting only where judged ----------------------------------------------------------


def _transport(policy: Policy) -> Any:
    """httpx's own transport whose connection pool connects through `_JudgingBackend`. httpx
    has no parameter for the pool's network backend: it is set on the pool, and a pool without
    one (another httpcore) is refused loudly rather than left unjudged."""
    import httpx

    transport = httpx.HTTPTransport(trust_env=False)
    pool = getattr(transport, "_pool", None)
    if pool is None or not hasattr(pool, "_network_backend"):
        raise RuntimeError("this httpx/httpcore has no pool backend to judge connections with")
    pool._network_backend = _JudgingBackend(policy)
    return transport


class _JudgingBackend:
    """httpcore's network backend, asking the policy for the addresses of each connection and
    connecting to those alone (TLS still verifies the URL's host name: httpcore starts TLS
    with the origin's name, not the address)."""

    def __init__(self, policy: Policy) -> None:
        import httpcore

        self.policy = policy
        self._sync = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> Any:
        import httpcore

        try:
            addresses = self.policy.addresses(host, port)  # Refused: nothing is sent
        except Unresolved as exc:
            raise httpcore.ConnectError(str(exc)) from None
        failure: Exception | None = None
        for address in addresses:
            try:
                return self._sync.connect_tcp(address, port, timeout, local_address, socket_options)
            except httpcore.ConnectError as exc:
                failure = exc
        raise failure or httpcore.ConnectError("no address to connect to")

    def connect_unix_socket(self, *args: Any, **kwargs: Any) -> Any:
        raise Refused("", "a unix socket is not a URL trainops fetches")

    def sleep(self, seconds: float) -> None:
        self._sync.sleep(seconds)
