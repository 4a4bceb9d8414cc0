"""A Web Push endpoint for tests: a real browser subscription's keys, on 127.0.0.1.

It holds a P-256 ECDH key pair and a 16-byte auth secret, as a browser does, answers POSTs with
the status chosen for each path (201 by default), decrypts what it receives (RFC 8291,
aes128gcm, with http_ece) and checks the VAPID JWT (RFC 8292) of the Authorization header
against the key it names. Nothing here trusts the sender's code: it is the receiving half.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
from dataclasses import dataclass, field
from typing import Any

import http_ece
from aiohttp import web
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def unb64url(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def verify_vapid(header: str, audience: str) -> dict[str, Any]:
    """The JWT claims of a `vapid t=...,k=...` header, after checking its ES256 signature
    against k and its audience; AssertionError otherwise. Returns claims plus "k"."""
    scheme, _, params = header.partition(" ")
    assert scheme.lower() == "vapid", header
    values = dict(part.strip().split("=", 1) for part in params.split(","))
    token, key = values["t"], values["k"]
    head, body, signature = token.split(".")
    assert json.loads(unb64url(head))["alg"] == "ES256"
    public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), unb64url(key))
    raw = unb64url(signature)
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    try:
        public.verify(der, f"{head}.{body}".encode(), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise AssertionError("the VAPID JWT does not verify against k") from None
    claims = json.loads(unb64url(body))
    assert claims["aud"] == audience, (claims, audience)
    return {**claims, "k": key}


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    message: dict[str, Any] | None  # decrypted JSON; None when the answer was not 2xx
    vapid: dict[str, Any]


@dataclass
class PushReceiver:
    host: str = "127.0.0.1"
    key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    auth: bytes = field(default_factory=lambda: os.urandom(16))
    answers: dict[str, int] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    port: int = 0
    _runner: web.AppRunner | None = None
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def p256dh(self) -> str:
        return b64url(
            self.key.public_key().public_bytes(
                serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
            )
        )

    @property
    def auth_secret(self) -> str:
        return b64url(self.auth)

    @property
    def origin(self) -> str:
        return f"http://{self.host}:{self.port}"

    def endpoint(self, path: str) -> str:
        return f"{self.origin}/{path}"

    async def _handle(self, request: web.Request) -> web.Response:
        path = request.match_info["path"]
        body = await request.read()
        status = self.answers.get(path, 201)
        try:
            vapid = verify_vapid(request.headers.get("Authorization", ""), self.origin)
        except (AssertionError, KeyError, ValueError) as exc:
            vapid, status = {"error": repr(exc)}, 401
        message = None
        if 200 <= status < 300:
            assert request.headers.get("Content-Encoding") == "aes128gcm"
            plain = http_ece.decrypt(
                body, private_key=self.key, auth_secret=self.auth, version="aes128gcm"
            )
            message = json.loads(plain)
        self.received.append(Received(path, dict(request.headers), message, vapid))
        self._arrived.set()
        return web.Response(status=status)

    async def start(self) -> PushReceiver:
        app = web.Application()
        app.router.add_post("/{path:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def wait_for(self, predicate, seconds: float = 30.0) -> Received:
        """The first received push that satisfies `predicate`, waiting up to `seconds`."""
        async with asyncio.timeout(seconds):
            while True:
                for r in self.received:
                    if predicate(r):
                        return r
                self._arrived.clear()
                await self._arrived.wait()
