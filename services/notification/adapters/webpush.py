"""The push channel: Web Push (RFC 8030) with pywebpush's encryption and py-vapid's VAPID JWT.

Each message goes to every Web Push device of the user: the JSON payload
(`{"title", "body", "notification_id", "topic"}`) is encrypted to the device's keys (RFC 8291,
`aes128gcm`) by pywebpush and POSTed to the device's endpoint through kit.ssrf's GuardedHttp
(the endpoint was checked when it was registered; the guard checks the address again at connect
time, so a name that now resolves inward is refused). The push service's answer decides:

- 2xx: sent to that device (its last_send_time recorded);
- 404 / 410: the subscription is gone: the device is removed;
- 429, 5xx, no connection, timeout: temporary;
- any other 4xx (bad VAPID, payload too large ...) or a blocked address: permanent for that device.

The message is SENT when at least one device took it, retried (domain.retry_delay) when none
did and one failure was temporary, FAILED (then the fallback channel) when every device refused
it for good or none is left. A device that failed temporarily while another took the message
does not get it later: a push is a nudge, the inbox keeps the message.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid02
from pywebpush import WebPusher

from kit.ssrf import GuardedHttp
from services.notification.domain import (
    Notification,
    Platform,
    PushDevice,
    Rendered,
    SendError,
)
from services.notification.ports import PushDeviceRepository

log = logging.getLogger("emporium.notification")

GONE = frozenset({404, 410})
JWT_LIFETIME_SECONDS = 12 * 3600  # RFC 8292: at most 24 hours


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def b64url_decode(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


class VapidKey:
    """The shop's VAPID key pair (P-256): signs the JWT each push carries."""

    def __init__(self, private_key: ec.EllipticCurvePrivateKey) -> None:
        self._vapid = Vapid02(private_key)
        point = private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        self.public_key = b64url(point)  # the browser's applicationServerKey

    @classmethod
    def parse(cls, text: str) -> VapidKey:
        """A PEM private key, or the raw 32-byte scalar in base64url; ValueError otherwise."""
        text = text.strip()
        if text.startswith("-----BEGIN"):
            key = serialization.load_pem_private_key(text.encode(), password=None)
        else:
            try:
                raw = b64url_decode(text)
            except (binascii.Error, ValueError):
                raise ValueError("is neither a PEM key nor a base64url P-256 scalar") from None
            if len(raw) != 32:
                raise ValueError("a raw VAPID key is a 32-byte P-256 scalar in base64url")
            key = ec.derive_private_key(int.from_bytes(raw, "big"), ec.SECP256R1())
        if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
            raise ValueError("must be a P-256 (prime256v1) EC private key")
        return cls(key)

    @classmethod
    def development(cls, path: Path) -> VapidKey:
        """Development only: the key in `path`, generated there the first time."""
        if path.exists():
            return cls.parse(path.read_text())
        key = ec.generate_private_key(ec.SECP256R1())
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(pem)
            tmp.chmod(0o600)
            tmp.replace(path)
        except OSError as exc:  # a read-only container: a key for this run only
            log.warning("cannot keep the development VAPID key in %s (%s)", path, exc)
        else:
            log.info("generated a development VAPID key in %s", path)
        return cls(key)

    def authorization(self, endpoint: str, subject: str) -> str:
        """The `Authorization: vapid t=<JWT>,k=<public key>` header for one endpoint."""
        parts = urlsplit(endpoint)
        claims = {
            "aud": f"{parts.scheme}://{parts.netloc}",
            "sub": subject,
            "exp": int(time.time()) + JWT_LIFETIME_SECONDS,
        }
        return self._vapid.sign(claims)["Authorization"]


@dataclass(frozen=True)
class Outcome:
    ok: bool
    reason: str = ""
    permanent: bool = False


def payload(notification: Notification, content: Rendered) -> bytes:
    return json.dumps(
        {
            "title": content.subject,
            "body": content.body,
            "notification_id": notification.id,
            "topic": notification.topic.name.lower(),
        },
        ensure_ascii=False,
    ).encode()


def decide(device: PushDevice, status: int, error: str) -> Outcome:
    """What the push service's answer (or the lack of one) means for one device."""
    if 200 <= status < 300:
        return Outcome(True)
    if status in GONE:
        return Outcome(False, f"push subscription gone ({status})", permanent=True)
    if status == 429 or status >= 500:
        return Outcome(False, f"push service answered {status}")
    if status:
        return Outcome(False, f"push service refused the message ({status})", permanent=True)
    if error.startswith("blocked"):
        return Outcome(False, f"push endpoint {error}", permanent=True)
    return Outcome(False, f"push service unreachable: {error}")


async def settle(
    devices: PushDeviceRepository, sent: list[tuple[PushDevice, Outcome]], when
) -> None:
    """Records the outcomes: removes gone devices, stamps the ones that took the message, and
    raises SendError unless one did (the module docstring's rules)."""
    for device, outcome in sent:
        if outcome.ok:
            await devices.sent(device.id, when)
        elif outcome.reason.startswith("push subscription gone"):
            await devices.delete(device.id)
            log.info("push device %s removed: %s", device.id, outcome.reason)
    if any(o.ok for _, o in sent):
        return
    temporary = [o.reason for _, o in sent if not o.permanent]
    if temporary:
        raise SendError(temporary[0], permanent=False)
    raise SendError("; ".join(sorted({o.reason for _, o in sent})), permanent=True)


class WebPushSender:
    """ports.Channels for Channel.PUSH over Web Push (module docstring)."""

    def __init__(
        self,
        devices: PushDeviceRepository,
        vapid: VapidKey,
        http: GuardedHttp,
        *,
        subject: str,
        clock,
        ttl_seconds: int = 24 * 3600,
        timeout_seconds: float = 10.0,
    ) -> None:
        self.devices = devices
        self.vapid = vapid
        self.http = http
        self.subject = subject
        self.clock = clock
        self.ttl_seconds = ttl_seconds
        self.timeout_seconds = timeout_seconds

    async def _push(self, device: PushDevice, data: bytes, urgency: str) -> Outcome:
        try:
            keys = {"p256dh": device.p256dh, "auth": device.auth}
            pusher = WebPusher({"endpoint": device.endpoint, "keys": keys})
            body = pusher.encode(data, content_encoding="aes128gcm")["body"]
        except Exception as exc:  # keys that pass registration but not ECDH: the device is bad
            return Outcome(False, f"push keys unusable: {type(exc).__name__}", permanent=True)
        reply = await self.http.post(
            device.endpoint,
            body,
            {
                "Authorization": self.vapid.authorization(device.endpoint, self.subject),
                "Content-Encoding": "aes128gcm",
                "Content-Type": "application/octet-stream",
                "TTL": str(self.ttl_seconds),
                "Urgency": urgency,
            },
            timeout=self.timeout_seconds,
        )
        return decide(device, reply.status_code, reply.error)

    async def send(self, notification: Notification, content: Rendered) -> None:
        mine = await self.devices.list(notification.user_id)
        devices = [d for d in mine if d.platform == Platform.WEB_PUSH]
        if not devices:
            raise SendError("no push device", permanent=True)
        data = payload(notification, content)
        urgency = "high" if notification.topic.name in ("ACCOUNT", "ORDER_UPDATES") else "normal"
        outcomes = await asyncio.gather(*(self._push(d, data, urgency) for d in devices))
        await settle(self.devices, list(zip(devices, outcomes, strict=True)), self.clock.now())

    async def aclose(self) -> None:
        await self.http.aclose()
