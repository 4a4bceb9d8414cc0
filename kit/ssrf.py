"""Outbound HTTP that cannot be turned against the platform's own network (SSRF guard).

Every request the platform makes to an address a client chose (webhooks, push endpoints,
provider callbacks) goes through `GuardedHttp`. The guard runs twice:

1. `UrlGuard.check(url)` when the URL is stored: https (unless `allow_http`), no userinfo,
   a host that is a hostname or a canonical IP literal (the decimal `2130706433`, octal
   `0177.0.0.1`, hex `0x7f.1` and short `127.1` forms that C resolvers accept are refused
   outright), not a metadata name, and every address the name resolves to allowed.
2. At connect time, inside the HTTP client's network backend: the name is resolved again and
   each address checked, and the socket connects to *that checked address* (TLS still sends
   the hostname as SNI and the Host header keeps the name). A name that resolved to a public
   address when it was stored and to 10.0.0.5 now (DNS rebinding) is refused, with no window
   between the check and the connect. Proxies from the environment are never used, redirects
   are not followed, and only `max_response_bytes` of a response are read.

Refused addresses: loopback, RFC 1918, link-local (169.254/16, incl. the 169.254.169.254
metadata service), CGNAT 100.64/10, 0/8, multicast, reserved and documentation ranges,
broadcast, IPv6 loopback / unspecified / link-local / unique-local / multicast / site-local,
and IPv6 forms embedding an IPv4 address (IPv4-mapped, IPv4-compatible, NAT64, 6to4, Teredo),
which are judged by the IPv4 address inside. Only what is globally routable passes, unless it
is inside one of `allowed_networks` (CIDRs; none by default). The local stack and the tests
allow 127.0.0.0/8 that way, and nothing else.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
import ssl
import time
import typing
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpcore
import httpx

from kit.errors import InvalidArgument

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[str]]]

# Names of cloud metadata services, refused whatever they resolve to.
METADATA_NAMES = frozenset(
    {
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "metadata.azure.com",
        "instance-data",
        "instance-data.ec2.internal",
        "metadata.tencentyun.com",
        "metadata.platformequinix.com",
    }
)
# Whole suffixes that only ever name internal hosts.
INTERNAL_SUFFIXES = (".localhost", ".internal", ".local", ".localdomain", ".home.arpa")

_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")
_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9])?)(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9])?)*\.?$"
)
# Anything made only of digits, dots and hex prefixes is an IPv4 literal to a C resolver.
_NUMERIC_HOST = re.compile(r"^(0x[0-9a-f]*|[0-9]+)(\.(0x[0-9a-f]*|[0-9]*))*$", re.IGNORECASE)


class BlockedAddress(Exception):
    """The target is, or resolves to, an address the guard refuses; nothing was connected."""


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in _NAT64 or ip in _NAT64_LOCAL:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    # IPv4-compatible (::a.b.c.d, deprecated) but not :: or ::1.
    if int(ip) >> 32 == 0 and int(ip) > 1:
        return ipaddress.IPv4Address(int(ip))
    return None


def why_refused(ip: IPAddress) -> str | None:
    """Why the guard refuses `ip` by default, or None for a globally routable address."""
    if isinstance(ip, ipaddress.IPv6Address):
        inner = _embedded_ipv4(ip)
        if inner is not None:
            reason = why_refused(inner)
            return f"IPv6 form of {inner}: {reason}" if reason else "IPv6 form of an IPv4 address"
        if ip.scope_id:
            return "scoped IPv6 address"
    checks = (
        ("unspecified", ip.is_unspecified),
        ("loopback", ip.is_loopback),
        ("link-local (metadata)", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("private", ip.is_private),
        ("reserved", ip.is_reserved),
        ("site-local", isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local),
    )
    for reason, hit in checks:
        if hit:
            return f"{reason} address {ip}"
    if isinstance(ip, ipaddress.IPv4Address) and ip in ipaddress.ip_network("100.64.0.0/10"):
        return f"shared (CGNAT) address {ip}"
    if not ip.is_global:
        return f"non-global address {ip}"
    return None


def parse_networks(
    spec: str | Iterable[str],
) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """CIDRs from a comma-separated string or a list; ValueError names a bad one."""
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    return tuple(ipaddress.ip_network(item.strip(), strict=False) for item in items if item.strip())


async def system_resolver(host: str, port: int) -> list[str]:
    """Every address the system resolver gives for `host` (A and AAAA), in its order."""
    infos = await asyncio.get_running_loop().getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )
    seen: list[str] = []
    for *_, sockaddr in infos:
        if sockaddr[0] not in seen:
            seen.append(sockaddr[0])
    return seen


@dataclass(frozen=True)
class Target:
    """A URL the static checks accepted."""

    url: str
    scheme: str
    host: str  # lower-case name or canonical IP literal, without brackets
    port: int
    ip: IPAddress | None  # set when the host is an IP literal


@dataclass(frozen=True)
class UrlGuard:
    """The policy: which URLs and addresses outbound requests may reach."""

    allowed_networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    allow_http: bool = False
    resolver: Resolver = field(default=system_resolver, compare=False)
    field_name: str = "url"

    def allowed(self, ip: IPAddress) -> bool:
        return any(ip.version == net.version and ip in net for net in self.allowed_networks)

    def check_ip(self, ip: IPAddress) -> None:
        """Raise BlockedAddress unless `ip` may be connected to."""
        if self.allowed(ip):
            return
        reason = why_refused(ip)
        if reason is not None:
            raise BlockedAddress(f"blocked: {reason}")

    def parse(self, url: str) -> Target:
        """The static checks; InvalidArgument naming the field on any failure."""

        def bad(why: str) -> InvalidArgument:
            return InvalidArgument(self.field_name, why)

        if not url or len(url) > 2048:
            raise bad("must be a URL of at most 2048 characters")
        if any(c.isspace() or ord(c) < 0x20 or c == "\\" for c in url):
            raise bad("must not contain spaces, control characters or backslashes")
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise bad(f"is not a valid URL ({exc})") from None
        scheme = parts.scheme.lower()
        if scheme not in ("https", "http") or (scheme == "http" and not self.allow_http):
            raise bad("must be an https URL")
        if "@" in parts.netloc or parts.username is not None or parts.password is not None:
            raise bad("must not contain a user name or password")
        raw_host = parts.hostname or ""
        if not raw_host:
            raise bad("must name a host")
        if parts.fragment:
            raise bad("must not have a fragment")
        host = raw_host.lower()
        ip: IPAddress | None = None
        if parts.netloc.rsplit("]", 1)[0].startswith("["):
            try:
                ip = ipaddress.IPv6Address(host)
            except ValueError:
                raise bad("has an invalid IPv6 address") from None
        elif _NUMERIC_HOST.match(host):
            try:
                ip = ipaddress.IPv4Address(host)
            except ValueError:
                # Decimal, octal, hex or short forms: resolvers read them as IPv4 addresses.
                raise bad("must write an IPv4 address as four decimal numbers") from None
        else:
            try:
                host = host.encode("idna").decode("ascii")
            except UnicodeError:
                raise bad("has an invalid host name") from None
            if not _HOSTNAME.match(host):
                raise bad("has an invalid host name")
            bare = host.rstrip(".")
            if bare == "localhost" or bare in METADATA_NAMES or bare.endswith(INTERNAL_SUFFIXES):
                raise bad(f"must not target the internal host {bare}")
            host = bare
        default_port = 443 if scheme == "https" else 80
        return Target(url=url, scheme=scheme, host=host, port=port or default_port, ip=ip)

    async def addresses(self, host: str, port: int) -> list[IPAddress]:
        """Resolve `host` and check every address; BlockedAddress if any is refused.

        All must pass, not just one: a name with one public and one private address would
        otherwise reach the private one whenever the connection tries it.
        """
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            try:
                raw = await self.resolver(host, port)
            except OSError as exc:
                raise BlockedAddress(f"cannot resolve {host}: {exc}") from None
            ips = [ipaddress.ip_address(a.split("%", 1)[0]) for a in raw]
        else:
            ips = [ip]
        if not ips:
            raise BlockedAddress(f"{host} resolves to no address")
        for each in ips:
            self.check_ip(each)
        return ips

    async def check(self, url: str) -> Target:
        """The full check of a URL to store: static rules and the addresses it resolves to."""
        target = self.parse(url)
        try:
            await self.addresses(target.host, target.port)
        except BlockedAddress as exc:
            raise InvalidArgument(self.field_name, str(exc)) from None
        return target


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """A network backend that connects only to addresses the guard checked, by address."""

    def __init__(self, guard: UrlGuard, inner: httpcore.AsyncNetworkBackend | None = None) -> None:
        self.guard = guard
        self.inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        local_address: str | None = None,
        socket_options: typing.Iterable[typing.Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        ips = await self.guard.addresses(host, port)
        error: Exception | None = None
        for ip in ips:
            try:
                # httpcore starts TLS afterwards with server_hostname=host: SNI and the
                # certificate check still use the name; only the socket uses the address.
                return await self.inner.connect_tcp(
                    str(ip),
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
        assert error is not None
        raise error

    async def connect_unix_socket(self, *args: typing.Any, **kwargs: typing.Any) -> typing.Any:
        raise BlockedAddress("blocked: unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


@dataclass(frozen=True)
class Response:
    """What came back, or why nothing did."""

    status_code: int  # 0 without a response
    body: bytes  # at most max_response_bytes
    headers: httpx.Headers
    latency: float  # seconds
    error: str  # empty when a response came


class GuardedHttp:
    """An HTTP client for client-chosen URLs: every request passes the guard (module doc)."""

    def __init__(
        self,
        guard: UrlGuard,
        *,
        max_response_bytes: int = 64 * 1024,
        max_connections: int = 100,
        network_backend: httpcore.AsyncNetworkBackend | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.guard = guard
        self.max_response_bytes = max_response_bytes
        transport = httpx.AsyncHTTPTransport(trust_env=False)
        # The pool httpx would build, with the guarded backend underneath (httpx has no
        # parameter for the backend); no proxy, whatever the environment says.
        transport._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context or httpx.create_ssl_context(trust_env=False),
            max_connections=max_connections,
            max_keepalive_connections=max_connections,
            network_backend=GuardedBackend(guard, network_backend),
        )
        self._client = httpx.AsyncClient(
            transport=transport, trust_env=False, follow_redirects=False
        )

    async def post(
        self,
        url: str,
        content: bytes,
        headers: dict[str, str],
        *,
        timeout: float,  # noqa: ASYNC109
    ) -> Response:
        """POST once; never raises for network trouble (the error is in the Response)."""
        started = time.monotonic()
        empty = httpx.Headers()
        try:
            target = self.guard.parse(url)
        except InvalidArgument as exc:
            return Response(0, b"", empty, 0.0, f"blocked: {exc.violations[0][1]}")
        try:
            async with asyncio.timeout(timeout):
                async with self._client.stream(
                    "POST",
                    target.url,
                    content=content,
                    headers=headers,
                    timeout=httpx.Timeout(timeout),
                ) as reply:
                    body = bytearray()
                    async for chunk in reply.aiter_raw():
                        body += chunk
                        if len(body) >= self.max_response_bytes:
                            break  # the rest is never read: a huge reply cannot exhaust us
                    return Response(
                        reply.status_code,
                        bytes(body[: self.max_response_bytes]),
                        reply.headers,
                        time.monotonic() - started,
                        "",
                    )
        except BlockedAddress as exc:
            return Response(0, b"", empty, time.monotonic() - started, str(exc))
        except TimeoutError:
            return Response(
                0, b"", empty, time.monotonic() - started, f"timeout after {timeout:g}s"
            )
        except httpx.TimeoutException:
            return Response(
                0, b"", empty, time.monotonic() - started, f"timeout after {timeout:g}s"
            )
        except (httpx.HTTPError, OSError, ssl.SSLError) as exc:
            reason = str(exc) or type(exc).__name__
            return Response(0, b"", empty, time.monotonic() - started, reason)

    async def aclose(self) -> None:
        await self._client.aclose()


def guard_from(
    allowed_cidrs: str | Sequence[str], *, allow_http: bool, resolver: Resolver | None = None
) -> UrlGuard:
    """A guard from configuration values."""
    return UrlGuard(
        allowed_networks=parse_networks(allowed_cidrs),
        allow_http=allow_http,
        resolver=resolver or system_resolver,
    )
