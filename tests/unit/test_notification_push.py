"""Push devices and the push channel over real gRPC, with in-memory stores and the push fake;
the live feed marking in-app notifications DELIVERED; the Web Push settings."""

from __future__ import annotations

import asyncio
import base64
import os
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from emporium.notification.v1 import (
    notification_service_pb2,
    push_device_pb2,
)
from emporium.order.v1 import order_events_pb2

from kit import auth, server, ssrf
from kit.config import ConfigError
from services.notification import bootstrap
from services.notification.adapters.channels import ChannelRouter
from services.notification.adapters.memory import (
    InMemoryFanOutRepository,
    InMemoryNotificationRepository,
    InMemoryPreferencesRepository,
    InMemoryPushDeviceRepository,
    InMemoryRecipientRepository,
    InMemoryTemplateRepository,
    MovableClock,
    RecordingChannels,
    RecordingPushService,
)
from services.notification.adapters.webpush import VapidKey
from services.notification.config import Settings
from services.notification.domain import Channel
from tests.unit.test_notification_service import (
    PREFS,
    N,
    World,
    _error,
    _fields,
    _usd,
)
from tests.unit.test_order_service import AUDIENCE, ISSUER, Tokens

D = push_device_pb2.PushDevice
PUBLIC_HOST = "push.example.com"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _keys() -> push_device_pb2.PushDevice.WebPushKeys:
    point = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    )
    return D.WebPushKeys(p256dh=_b64(point), auth=_b64(os.urandom(16)))


class PushWorld(World):
    def __init__(self, *args: Any, push: RecordingPushService, resolved: list[str]) -> None:
        super().__init__(*args)
        self.push = push
        self.resolved = resolved

    async def push_user(self):
        user = await self.register()
        await self.handlers.update_recipient(
            user.user_id, channels=frozenset({Channel.EMAIL, Channel.IN_APP, Channel.PUSH})
        )
        return user

    async def create_device(self, user, endpoint: str, keys=None, platform=D.PLATFORM_WEB_PUSH):
        return await self.stub.CreatePushDevice(
            notification_service_pb2.CreatePushDeviceRequest(
                push_device=D(
                    platform=platform,
                    token=endpoint,
                    web_push_keys=keys or _keys(),
                    display_name="Firefox on laptop",
                )
            ),
            metadata=user.metadata,
        )


@pytest.fixture
async def world(tmp_path) -> AsyncIterator[PushWorld]:
    settings = Settings.from_env(
        {
            "EMPORIUM_ENV": "development",
            "EMPORIUM_VAR": str(tmp_path),
            "EMPORIUM_NOTIFICATION_GRPC_PORT": "0",
        }
    )
    tokens = Tokens()
    clock = MovableClock()
    notifications = InMemoryNotificationRepository()
    devices = InMemoryPushDeviceRepository()
    email = RecordingChannels()
    push = RecordingPushService(devices, clock)
    resolved: list[str] = []

    async def resolver(host: str, port: int) -> list[str]:  # no DNS in unit tests
        resolved.append(host)
        return ["93.184.215.14"] if host == PUBLIC_HOST else ["10.0.0.7"]

    fakes: dict[str, Any] = {
        "notifications": notifications,
        "recipients": InMemoryRecipientRepository(),
        "preferences": InMemoryPreferencesRepository(),
        "templates": InMemoryTemplateRepository(),
        "fanouts": InMemoryFanOutRepository(notifications.outbox),
        "clock": clock,
    }
    app = await bootstrap.build(
        settings,
        bus=None,
        senders=False,
        verifier=auth.JwtVerifier(tokens.source, issuer=ISSUER, audience=AUDIENCE),
        channels=ChannelRouter({Channel.EMAIL: email, Channel.PUSH: push}),
        push_devices=devices,
        push_guard=ssrf.guard_from("", allow_http=False, resolver=resolver),
        **fakes,
    )
    grpc_server, port, _ = await server.start(settings.server, app)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        yield PushWorld(
            channel, tokens, app, {**fakes, "channels": email}, push=push, resolved=resolved
        )
    await grpc_server.stop(0)


async def test_the_vapid_public_key_is_served_without_a_token_and_kept_across_restarts(
    world, tmp_path
):
    config = await world.stub.GetWebPushConfig(notification_service_pb2.GetWebPushConfigRequest())
    raw = base64.urlsafe_b64decode(config.vapid_public_key + "==")
    assert len(raw) == 65
    assert raw[0] == 4
    again = VapidKey.development(tmp_path / "notification/vapid-private-key.pem")
    assert again.public_key == config.vapid_public_key


async def test_a_registered_device_is_listed_without_its_endpoint_or_keys_and_can_be_deleted(
    world,
):
    ada, bob = await world.push_user(), await world.push_user()
    device = await world.create_device(ada, f"https://{PUBLIC_HOST}/send/abc")
    assert device.id
    assert device.platform == D.PLATFORM_WEB_PUSH
    assert (device.token, device.HasField("web_push_keys")) == ("", False)
    listed = await world.stub.ListPushDevices(
        notification_service_pb2.ListPushDevicesRequest(), metadata=ada.metadata
    )
    assert [d.id for d in listed.push_devices] == [device.id]
    assert listed.push_devices[0].display_name == "Firefox on laptop"
    delete = notification_service_pb2.DeletePushDeviceRequest(id=device.id)
    denied = world.stub.DeletePushDevice(delete, metadata=bob.metadata)
    assert (await _error(denied)).code() == grpc.StatusCode.NOT_FOUND
    await world.stub.DeletePushDevice(delete, metadata=ada.metadata)
    listed = await world.stub.ListPushDevices(
        notification_service_pb2.ListPushDevicesRequest(), metadata=ada.metadata
    )
    assert list(listed.push_devices) == []


@pytest.mark.parametrize(
    "endpoint",
    [
        "https://10.0.0.5/push",  # a private IP literal: refused before anything resolves
        "https://169.254.169.254/latest",
        "https://internal.example.org/push",  # resolves (stub) to 10.0.0.7
        "http://push.example.com/push",  # not https
    ],
)
async def test_an_endpoint_the_ssrf_guard_refuses_is_invalid_and_nothing_is_stored(world, endpoint):
    ada = await world.push_user()
    error = await _error(world.create_device(ada, endpoint))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert _fields(error) == ["push_device.token"]
    assert await world.app.push_devices.devices.list(ada.user_id) == []


async def test_bad_keys_are_invalid_and_other_platforms_are_not_configured(world):
    ada = await world.push_user()
    error = await _error(
        world.create_device(ada, f"https://{PUBLIC_HOST}/x", D.WebPushKeys(p256dh="AAAA", auth=""))
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(_fields(error)) == {
        "push_device.web_push_keys.p256dh",
        "push_device.web_push_keys.auth",
    }
    fcm = await _error(world.create_device(ada, "fcm-token", platform=D.PLATFORM_FCM))
    assert fcm.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_an_order_update_reaches_the_users_push_device_and_a_gone_device_is_removed(world):
    ada = await world.push_user()
    prefs = PREFS(
        order_updates=PREFS.TopicSubscription(
            subscribed=True, channels=[N.CHANNEL_IN_APP, N.CHANNEL_PUSH]
        )
    )
    await ada.preferences(prefs, "order_updates")
    device = await world.create_device(ada, f"https://{PUBLIC_HOST}/send/ada")
    await world.handlers.send_due()  # the welcome email
    await world.send(
        order_events_pb2.OrderConfirmed(order_id="o9", user_id=ada.user_id, total=_usd(5)), "order"
    )
    assert await world.handlers.send_due() == 1
    [(endpoint, message)] = world.push.received
    assert endpoint == f"https://{PUBLIC_HOST}/send/ada"
    assert "o9" in message["body"]
    assert message["title"]
    [pushed] = [n for n in await ada.list() if n.channel == N.CHANNEL_PUSH and "o9" in n.body]
    assert pushed.state == N.STATE_SENT

    world.push.answers[endpoint] = 410
    await world.send(
        order_events_pb2.OrderConfirmed(order_id="o10", user_id=ada.user_id, total=_usd(5)),
        "order",
    )
    await world.handlers.send_due()
    assert await world.app.push_devices.devices.get(device.id) is None
    failed = [
        n
        for n in await ada.list()
        if n.channel == N.CHANNEL_PUSH and n.state == N.STATE_FAILED and "o10" in n.body
    ]
    assert failed
    assert "gone (410)" in failed[0].failure_reason


async def test_in_app_notifications_become_delivered_when_streamed_to_the_user(world):
    ada = await world.register()
    stream = world.stub.WatchNotifications(
        notification_service_pb2.WatchNotificationsRequest(), metadata=ada.metadata
    )
    await asyncio.wait_for(stream.read(), 5)
    world.clock.advance(seconds=1)
    await world.send(
        order_events_pb2.OrderConfirmed(order_id="o11", user_id=ada.user_id, total=_usd(9)),
        "order",
    )
    streamed = await asyncio.wait_for(stream.read(), 5)
    assert streamed.notification.state == N.STATE_DELIVERED
    stream.cancel()
    stored = await ada.get(streamed.notification.id)
    assert stored.state == N.STATE_DELIVERED
    assert stored.HasField("deliver_time")
    welcome = [n for n in await ada.list() if n.channel == N.CHANNEL_IN_APP and n.id != stored.id]
    assert [n.state for n in welcome] == [N.STATE_SENT]  # never streamed: not delivered


def test_production_refuses_to_start_without_a_vapid_key_or_with_the_test_allow_list():
    base = {
        "EMPORIUM_ENV": "production",
        "EMPORIUM_NOTIFICATION_SECRET": "s",
        "EMPORIUM_PAGE_TOKEN_KEY": "k" * 32,
    }
    with pytest.raises(ConfigError, match="EMPORIUM_WEBPUSH_VAPID_PRIVATE_KEY"):
        Settings.from_env(base)
    key = _b64(os.urandom(31) + b"\x01")
    settings = Settings.from_env({**base, "EMPORIUM_WEBPUSH_VAPID_PRIVATE_KEY": key})
    assert key not in repr(settings)
    with pytest.raises(ConfigError, match="development only"):
        Settings.from_env(
            {
                **base,
                "EMPORIUM_WEBPUSH_VAPID_PRIVATE_KEY": key,
                "EMPORIUM_WEBPUSH_ALLOWED_CIDRS": "127.0.0.0/8",
            }
        )
    with pytest.raises(ConfigError, match="VAPID"):
        Settings.from_env({**base, "EMPORIUM_WEBPUSH_VAPID_PRIVATE_KEY": "not-a-key"})
