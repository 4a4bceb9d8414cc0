"""Who is calling: access tokens verified in every service, the caller in context, RPC access.

Envoy checks tokens at the edge, but a client may reach a service directly (grpcurl, a sidecar,
another service), so every server verifies the bearer token again:

- each RPC declares `option (emporium.access.v1.access)`: PUBLIC, USER or ADMIN; an RPC that
  declares nothing, or that this process cannot find, is treated as ADMIN (fails closed);
- a token, when sent, is always verified, also on public RPCs (a bad token is never ignored);
- the verified caller is in `CALLER` while the handler runs; handlers call `caller()` and
  enforce ownership themselves.

Tokens are JWTs signed with an asymmetric key (ES256) by the user service, which publishes its
keys as a JWK Set (`GetJwks`, `/.well-known/jwks.json`). `JwtVerifier` takes any async source of
that document and refreshes it when a token names a key id it has not seen (key rotation).

A token is also refused once its user was disabled, deleted or given other roles: the user
service keeps a revocation mark per such user ("tokens issued before T are refused") for one
token lifetime, and `Revocations` holds a copy of those marks that is at most a second old
(refetched on demand through `ListTokenRevocations`), so revocation bites within seconds on
every service, through the gateway (which forwards to a service that checks) or directly.

Verifying an ES256 signature costs about 0.4 ms of CPU, so `JwtVerifier` keeps what it verified
(bounded, keyed by the SHA-256 of the token, never the token itself) until the token's `exp`,
never longer: a client that sends the same token on every call pays for its signature once. The
revocation marks are checked on every call, cached or not, so a revocation still bites within
seconds.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import cache
from typing import Protocol

import cachetools
import grpc
import jwt
from emporium.access.v1 import access_pb2
from google.protobuf import descriptor_pool

from kit import errors
from kit.config import AuthSettings

log = logging.getLogger("emporium.auth")

ADMIN_ROLE = "admin"
ALGORITHMS = ("ES256",)

# Infrastructure every client may call without a token: health checks and reflection.
PUBLIC_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")


@dataclass(frozen=True)
class Principal:
    """A verified caller: the `sub` of their access token and its roles."""

    user_id: str
    roles: frozenset[str] = frozenset()
    token_id: str = ""  # `jti`, to tie logs and revocations to one token
    claims: Mapping[str, object] = field(default_factory=dict, compare=False, repr=False)

    @property
    def admin(self) -> bool:
        return ADMIN_ROLE in self.roles


CALLER: ContextVar[Principal | None] = ContextVar("emporium_caller", default=None)


def caller() -> Principal:
    """The caller of the current RPC; UNAUTHENTICATED when there is none."""
    principal = CALLER.get()
    if principal is None:
        raise errors.Unauthenticated("this call needs an access token")
    return principal


def require_admin() -> Principal:
    """The caller, who must hold the admin role (PERMISSION_DENIED otherwise)."""
    principal = caller()
    if not principal.admin:
        raise errors.PermissionDenied("this call needs the admin role")
    return principal


class TokenVerifier(Protocol):
    """Turns a bearer token into a Principal, or raises errors.Unauthenticated."""

    async def verify(self, token: str) -> Principal: ...


# The JWK Set document (JSON bytes), from wherever the service gets it.
KeySource = Callable[[], Awaitable[bytes]]
# The live revocation marks: revocation_key(user id) -> epoch seconds before which that user's
# tokens (their `iat`) are refused.
RevocationSource = Callable[[], Awaitable[Mapping[str, float]]]


def revocation_key(user_id: str) -> str:
    """How ListTokenRevocations names an account: the hex SHA-256 of its id."""
    return hashlib.sha256(user_id.encode()).hexdigest()


class Revocations:
    """A copy of the revocation marks, at most `max_age_seconds` old when a token is checked.

    Refetched on demand (one fetch at a time, whoever asks first), so an idle service costs
    nothing. If the source is unreachable the last marks keep applying and the next check
    tries again: an outage of the user service does not turn into an outage of every service.
    """

    def __init__(self, source: RevocationSource, *, max_age_seconds: float = 1.0) -> None:
        self._source = source
        self.max_age = max_age_seconds
        self._marks: Mapping[str, float] = {}
        self._fetched_at = float("-inf")
        self._lock = asyncio.Lock()

    async def valid_after(self, user_id: str) -> float | None:
        if time.monotonic() - self._fetched_at >= self.max_age:
            async with self._lock:
                if time.monotonic() - self._fetched_at >= self.max_age:
                    try:
                        self._marks = dict(await self._source())
                    except Exception as error:  # keep the last marks; retry on the next check
                        log.warning("token revocations cannot be fetched: %s", error)
                    self._fetched_at = time.monotonic()
        return self._marks.get(revocation_key(user_id))


class JwtVerifier:
    """Verifies ES256 access tokens against a JWK Set, with issuer, audience and expiry."""

    def __init__(
        self,
        keys: KeySource,
        *,
        issuer: str,
        audience: str,
        leeway_seconds: float = 5.0,
        refresh_interval_seconds: float = 30.0,
        revocations: Revocations | None = None,
        cache_size: int = 10_000,
    ) -> None:
        self._source = keys
        self.revocations = revocations
        self.issuer = issuer
        self.audience = audience
        self.leeway = leeway_seconds
        # An unknown kid triggers a refetch, but at most this often, so a flood of forged
        # tokens cannot turn into a flood of JWKS requests.
        self.refresh_interval = refresh_interval_seconds
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at = float("-inf")
        self._lock = asyncio.Lock()
        # sha256(token) -> (the principal it carries, its exp): each entry leaves at its exp
        # (wall clock, as exp is), the least recently used first when full.
        self._verified: cachetools.TLRUCache[bytes, tuple[Principal, float]] = cachetools.TLRUCache(
            maxsize=cache_size, ttu=lambda _key, value, _now: value[1], timer=time.time
        )
        # Signatures actually checked (a cached token is not checked again), for tests.
        self.signatures_checked = 0

    async def _refresh(self) -> None:
        async with self._lock:
            if time.monotonic() - self._fetched_at < self.refresh_interval:
                return
            document = await self._source()
            self._fetched_at = time.monotonic()
            key_set = jwt.PyJWKSet.from_json(document.decode())
            self._keys = {key.key_id: key for key in key_set.keys if key.key_id}

    async def _key(self, kid: str) -> jwt.PyJWK:
        if kid not in self._keys:
            try:
                await self._refresh()
            except Exception as error:
                raise errors.Unavailable("the token keys cannot be fetched") from error
        key = self._keys.get(kid)
        if key is None:
            raise errors.Unauthenticated("the token is signed with an unknown key")
        return key

    async def verify(self, token: str) -> Principal:
        digest = hashlib.sha256(token.encode()).digest()
        cached = self._verified.get(digest)
        if cached is not None and time.time() < cached[1]:
            principal = cached[0]
        else:
            principal = await self._verify_signature(token)
            self._verified[digest] = (principal, float(principal.claims["exp"]))
        await self._check_revocation(principal)
        return principal

    async def _check_revocation(self, principal: Principal) -> None:
        if self.revocations is None:
            return
        valid_after = await self.revocations.valid_after(principal.user_id)
        if valid_after is not None and float(principal.claims["iat"]) < valid_after:
            raise errors.Unauthenticated(
                "the access token was revoked (the account was disabled, deleted or its "
                "roles changed); sign in again"
            )

    async def _verify_signature(self, token: str) -> Principal:
        self.signatures_checked += 1
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise errors.Unauthenticated("the access token is malformed") from None
        # Checked before any key lookup: `alg: none` and HMAC-with-the-public-key forgeries
        # never reach the verifier.
        if header.get("alg") not in ALGORITHMS:
            raise errors.Unauthenticated("the access token uses an unsupported algorithm")
        key = await self._key(str(header.get("kid", "")))
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=list(ALGORITHMS),
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": ["exp", "iat", "sub", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError:
            raise errors.Unauthenticated("the access token has expired") from None
        except jwt.InvalidTokenError as error:
            raise errors.Unauthenticated(f"the access token is invalid: {error}") from None
        roles = claims.get("roles", [])
        if not isinstance(roles, list):
            raise errors.Unauthenticated("the access token's roles claim is malformed")
        return Principal(
            user_id=str(claims["sub"]),
            roles=frozenset(str(r) for r in roles),
            token_id=str(claims.get("jti", "")),
            claims=claims,
        )


@cache
def access_of(method: str) -> int:
    """The declared access of a full gRPC method name (`/pkg.Service/Method`)."""
    if method.startswith(PUBLIC_PREFIXES):
        return access_pb2.ACCESS_PUBLIC
    service, _, name = method.lstrip("/").partition("/")
    try:
        descriptor = descriptor_pool.Default().FindMethodByName(f"{service}.{name}")
    except KeyError:
        return access_pb2.ACCESS_ADMIN
    declared = descriptor.GetOptions().Extensions[access_pb2.access]
    return declared or access_pb2.ACCESS_ADMIN


def bearer_token(metadata: Mapping[str, str | bytes]) -> str | None:
    """The token of an `authorization: Bearer <token>` header, if one was sent."""
    value = metadata.get("authorization")
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise errors.Unauthenticated("the authorization header must be 'Bearer <token>'")
    return token.strip()


async def authorize(
    method: str, metadata: Mapping[str, str | bytes], verifier: TokenVerifier | None
) -> Principal | None:
    """The caller of `method`, checked against its declared access; raises if not allowed."""
    access = access_of(method)
    token = bearer_token(metadata)
    principal = None
    if token is not None:
        if verifier is None:
            raise errors.Unauthenticated("this service accepts no access tokens")
        principal = await verifier.verify(token)
    if access == access_pb2.ACCESS_PUBLIC:
        return principal
    if principal is None:
        raise errors.Unauthenticated("this call needs an access token")
    if access == access_pb2.ACCESS_ADMIN and not principal.admin:
        raise errors.PermissionDenied("this call needs the admin role")
    return principal


class UserServiceJwks:
    """A KeySource: the user service's JWK Set over gRPC (`UserService.GetJwks`).

    JwtVerifier caches the keys and calls this only for a key id it has not seen (at most every
    30 s), so a user service that is down makes token checks UNAVAILABLE, never a crash. The
    channel opens on first use: no I/O at start-up.
    """

    def __init__(self, address: str, *, timeout_seconds: float = 5.0) -> None:
        self.address = address
        self.timeout = timeout_seconds
        self._channel: grpc.aio.Channel | None = None

    async def __call__(self) -> bytes:
        from emporium.user.v1 import user_service_pb2, user_service_pb2_grpc

        if self._channel is None:
            self._channel = grpc.aio.insecure_channel(
                self.address, options=[("grpc.enable_http_proxy", 0)]
            )
        stub = user_service_pb2_grpc.UserServiceStub(self._channel)
        reply = await stub.GetJwks(user_service_pb2.GetJwksRequest(), timeout=self.timeout)
        return reply.data

    async def revocations(self) -> dict[str, float]:
        """A RevocationSource: the user service's `ListTokenRevocations`, on the same channel."""
        from emporium.user.v1 import user_service_pb2, user_service_pb2_grpc

        if self._channel is None:
            self._channel = grpc.aio.insecure_channel(
                self.address, options=[("grpc.enable_http_proxy", 0)]
            )
        stub = user_service_pb2_grpc.UserServiceStub(self._channel)
        reply = await stub.ListTokenRevocations(
            user_service_pb2.ListTokenRevocationsRequest(), timeout=self.timeout
        )
        return {
            r.user_id_sha256: r.valid_after_time.seconds + r.valid_after_time.nanos / 1e9
            for r in reply.revocations
        }

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()


def user_service_verifier(
    settings: AuthSettings, user_address: str
) -> tuple[JwtVerifier, Callable[[], Awaitable[None]]]:
    """The verifier every service but the user service uses, and the coroutine that closes it."""
    keys = UserServiceJwks(user_address)
    verifier = JwtVerifier(
        keys,
        issuer=settings.issuer,
        audience=settings.audience,
        revocations=Revocations(keys.revocations),
    )
    return verifier, keys.close
