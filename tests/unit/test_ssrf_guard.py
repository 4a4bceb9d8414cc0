"""The SSRF guard (kit.ssrf): refused URLs, refused resolutions, no connection ever attempted.

No test here sends a packet outside 127.0.0.0/8: names resolve through a stub, and the network
backend under the guard records every connection attempt (and connects only to loopback).
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import AsyncIterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from threading import Thread

import httpcore
import pytest

from kit.errors import InvalidArgument
from kit.ssrf import GuardedHttp, UrlGuard, parse_networks

# What the stub resolver answers; everything else does not exist.
DNS = {
    "shop.example.com": ["93.184.215.14"],
    "rebind.example.com": ["93.184.215.14"],  # public at create time, see the rebinding test
    "ten.example.com": ["10.0.0.5"],
    "one72.example.com": ["172.16.3.4"],
    "one92.example.com": ["192.168.1.1"],
    "loop.example.com": ["127.0.0.1"],
    "meta.example.com": ["169.254.169.254"],
    "cgnat.example.com": ["100.64.0.1"],
    "zero.example.com": ["0.0.0.0"],
    "mixed.example.com": ["93.184.215.14", "10.1.2.3"],
    "v6loop.example.com": ["::1"],
    "ula.example.com": ["fd00::1"],
    "mapped.example.com": ["::ffff:10.0.0.1"],
    "linklocal6.example.com": ["fe80::1"],
    "multicast.example.com": ["224.0.0.1"],
    "public6.example.com": ["2606:4700::1111"],
}


class StubResolver:
    def __init__(self) -> None:
        self.table = dict(DNS)
        self.asked: list[str] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.asked.append(host)
        if host not in self.table:
            raise OSError(f"no such host {host}")
        return list(self.table[host])


class RecordingBackend(httpcore.AsyncNetworkBackend):
    """Records every connect; connects for real only to loopback (the test receivers)."""

    def __init__(self) -> None:
        self.attempts: list[tuple[str, int]] = []
        self.inner = httpcore.AnyIOBackend()

    async def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):  # noqa: ASYNC109
        self.attempts.append((host, port))
        if not ipaddress.ip_address(host).is_loopback:
            raise AssertionError(f"the guard let a connection to {host} through")
        return await self.inner.connect_tcp(host, port, timeout=timeout)

    async def connect_unix_socket(self, *args, **kwargs):
        raise AssertionError("unix socket")

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


@pytest.fixture
def resolver() -> StubResolver:
    return StubResolver()


@pytest.fixture
def guard(resolver: StubResolver) -> UrlGuard:
    return UrlGuard(allow_http=False, resolver=resolver)


REFUSED_URLS = [
    # scheme and shape
    "http://shop.example.com/hook",
    "ftp://shop.example.com/hook",
    "file:///etc/passwd",
    "gopher://shop.example.com/",
    "https://",
    "not a url",
    "https://shop.example.com\\@10.0.0.1/",
    # userinfo tricks
    "https://shop.example.com@10.0.0.1/",
    "https://user:pass@shop.example.com/hook",
    "https://169.254.169.254#@shop.example.com/",
    "https://shop.example.com:443@127.0.0.1/",
    # IPv4 literals, in every spelling a C resolver accepts
    "https://127.0.0.1/",
    "https://10.0.0.5/",
    "https://172.16.0.1/",
    "https://192.168.0.1/",
    "https://169.254.169.254/latest/meta-data/",
    "https://100.64.0.1/",
    "https://0.0.0.0/",
    "https://224.0.0.1/",
    "https://240.0.0.1/",
    "https://255.255.255.255/",
    "https://2130706433/",  # decimal 127.0.0.1
    "https://0177.0.0.1/",  # octal
    "https://0x7f.0.0.1/",  # hex octet
    "https://0x7f000001/",  # hex whole
    "https://127.1/",  # short form
    "https://017700000001/",  # octal whole
    "https://0xA9FEA9FE/",  # 169.254.169.254 in hex
    # IPv6 forms
    "https://[::1]/",
    "https://[::]/",
    "https://[fe80::1]/",
    "https://[fd12:3456::1]/",
    "https://[fc00::1]/",
    "https://[ff02::1]/",
    "https://[::ffff:127.0.0.1]/",
    "https://[::ffff:a9fe:a9fe]/",  # mapped 169.254.169.254
    "https://[::ffff:10.0.0.1]/",
    "https://[64:ff9b::10.0.0.1]/",  # NAT64 of a private address
    "https://[2002:0a00:0001::]/",  # 6to4 of 10.0.0.1
    "https://[::10.0.0.1]/",  # IPv4-compatible
    "https://[fec0::1]/",  # site-local
    # names
    "https://localhost/",
    "https://api.localhost/",
    "https://metadata.google.internal/computeMetadata/v1/",
    "https://metadata/",
    "https://anything.internal/",
    "https://printer.local/",
    # names that resolve to refused addresses
    "https://ten.example.com/",
    "https://one72.example.com/",
    "https://one92.example.com/",
    "https://loop.example.com/",
    "https://meta.example.com/",
    "https://cgnat.example.com/",
    "https://zero.example.com/",
    "https://mixed.example.com/",
    "https://v6loop.example.com/",
    "https://ula.example.com/",
    "https://mapped.example.com/",
    "https://linklocal6.example.com/",
    "https://multicast.example.com/",
    "https://does-not-resolve.example.com/",
]


def test_there_are_at_least_thirty_refused_cases() -> None:
    assert len(REFUSED_URLS) >= 30


@pytest.mark.parametrize("url", REFUSED_URLS)
async def test_a_refused_url_is_invalid_argument_naming_url(guard: UrlGuard, url: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        await guard.check(url)
    assert caught.value.violations[0][0] == "url"


@pytest.mark.parametrize(
    "url",
    [
        "https://shop.example.com/hook",
        "https://shop.example.com:8443/hook?x=1",
        "https://93.184.215.14/hook",
        "https://[2606:4700::1111]/hook",
        "https://public6.example.com/",
    ],
)
async def test_a_public_https_url_is_accepted(guard: UrlGuard, url: str) -> None:
    target = await guard.check(url)
    assert target.scheme == "https"


async def test_http_and_loopback_pass_only_when_configured(resolver: StubResolver) -> None:
    local = UrlGuard(
        allowed_networks=parse_networks("127.0.0.0/8"), allow_http=True, resolver=resolver
    )
    await local.check("http://127.0.0.1:8080/hook")
    await local.check("http://loop.example.com/hook")
    for url in ("http://10.0.0.5/", "http://[::1]/", "http://meta.example.com/"):
        with pytest.raises(InvalidArgument):
            await local.check(url)


async def test_the_default_guard_allows_no_private_range(resolver: StubResolver) -> None:
    default = UrlGuard(resolver=resolver)
    assert default.allowed_networks == ()
    with pytest.raises(InvalidArgument):
        await default.check("https://127.0.0.1/")


@pytest.fixture
async def http(guard: UrlGuard) -> AsyncIterator[tuple[GuardedHttp, RecordingBackend]]:
    backend = RecordingBackend()
    client = GuardedHttp(guard, network_backend=backend)
    yield client, backend
    await client.aclose()


@pytest.mark.parametrize(
    "host",
    [
        "ten.example.com",
        "meta.example.com",
        "mapped.example.com",
        "v6loop.example.com",
        "mixed.example.com",
        "cgnat.example.com",
    ],
)
async def test_the_connect_time_guard_refuses_without_connecting(
    http: tuple[GuardedHttp, RecordingBackend], host: str
) -> None:
    client, backend = http
    reply = await client.post(f"https://{host}/hook", b"{}", {}, timeout=5)
    assert reply.status_code == 0
    assert reply.error.startswith("blocked")
    assert backend.attempts == []


async def test_dns_rebinding_after_the_check_is_refused_at_connect_time(
    guard: UrlGuard, resolver: StubResolver, http: tuple[GuardedHttp, RecordingBackend]
) -> None:
    client, backend = http
    await guard.check("https://rebind.example.com/hook")  # public when stored
    resolver.table["rebind.example.com"] = ["169.254.169.254"]  # the attacker's DNS flips
    reply = await client.post("https://rebind.example.com/hook", b"{}", {}, timeout=5)
    assert reply.error.startswith("blocked")
    assert "169.254.169.254" in reply.error
    assert backend.attempts == []


class _Redirect(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.send_response(302)
        self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


class _Huge(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.send_response(200)
        self.send_header("Content-Length", str(10 * 1024 * 1024))
        self.end_headers()
        try:
            for _ in range(160):
                self.wfile.write(b"x" * 65536)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, *args) -> None:
        pass


def _serve(handler: type[BaseHTTPRequestHandler]) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    Thread(target=server.serve_forever, daemon=True).start()
    return server


async def test_a_redirect_is_not_followed(resolver: StubResolver) -> None:
    server = _serve(_Redirect)
    backend = RecordingBackend()
    guard = UrlGuard(parse_networks("127.0.0.0/8"), allow_http=True, resolver=resolver)
    client = GuardedHttp(guard, network_backend=backend)
    try:
        reply = await client.post(f"http://127.0.0.1:{server.server_port}/", b"{}", {}, timeout=5)
    finally:
        await client.aclose()
        server.shutdown()
    assert reply.status_code == 302
    assert backend.attempts == [("127.0.0.1", server.server_port)]


async def test_only_the_capped_bytes_of_a_response_are_read(resolver: StubResolver) -> None:
    server = _serve(_Huge)
    guard = UrlGuard(parse_networks("127.0.0.0/8"), allow_http=True, resolver=resolver)
    client = GuardedHttp(guard, max_response_bytes=4096, network_backend=RecordingBackend())
    try:
        reply = await client.post(f"http://127.0.0.1:{server.server_port}/", b"{}", {}, timeout=5)
    finally:
        await client.aclose()
        server.shutdown()
    assert reply.status_code == 200
    assert len(reply.body) == 4096


async def test_the_name_connects_by_its_checked_address(resolver: StubResolver) -> None:
    server = _serve(_Redirect)
    backend = RecordingBackend()
    guard = UrlGuard(parse_networks("127.0.0.0/8"), allow_http=True, resolver=resolver)
    client = GuardedHttp(guard, network_backend=backend)
    try:
        reply = await client.post(
            f"http://loop.example.com:{server.server_port}/", b"{}", {}, timeout=5
        )
    finally:
        await client.aclose()
        server.shutdown()
    assert reply.status_code == 302
    assert backend.attempts == [("127.0.0.1", server.server_port)]
    assert resolver.asked == ["loop.example.com"]
