"""Web Push end to end (issue 12), through Envoy on the real stack: a push endpoint on
127.0.0.1 with a browser's keys registers itself as the user's device, receives an order's
notifications, decrypts them (aes128gcm) and checks the VAPID JWT against the key the API
publishes; a 410 from it removes the device; a private endpoint is refused at registration.
"""

from __future__ import annotations

import asyncio
import threading
import time

import httpx
import pytest
from pymongo import MongoClient

from kit.config import MongoSettings
from tests.e2e.checkout_support import admin_headers, ok, product, shipping_option
from tests.e2e.test_notification_flows import CHECKOUT, SERVICES, User, _until, _user_id
from tests.push_receiver import PushReceiver


@pytest.fixture(scope="module")
def api(gateway_url, service_address):
    for name in (*SERVICES, *CHECKOUT):
        service_address(name)
    with httpx.Client(base_url=gateway_url, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def admin(api) -> dict[str, str]:
    return admin_headers(api)


@pytest.fixture(scope="module")
def receiver():
    """The push endpoint, served from an event loop of its own in a thread."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    push = asyncio.run_coroutine_threadsafe(PushReceiver().start(), loop).result(10)
    yield push
    asyncio.run_coroutine_threadsafe(push.stop(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)


def _push_user(api) -> User:
    nora = User(api)
    channels = {"email_enabled": True, "in_app_enabled": True, "push_enabled": True}
    ok(
        api.patch(
            "/v1/users/me/settings",
            params={"update_mask": "notification_channels"},
            json={"notification_channels": channels},
            headers=nora.headers,
        )
    )
    nora.preferences(
        {
            "order_updates": {
                "subscribed": True,
                "channels": ["CHANNEL_IN_APP", "CHANNEL_PUSH"],
            }
        },
        "order_updates",
    )
    # The notification service learns of the settings from UserSettingsUpdated, on its own
    # time; an order placed before that would find push off. Nothing in the API shows its
    # projection, so the test reads it where the service keeps it.
    settings = MongoSettings.from_env("emporium_notification")
    with MongoClient(settings.url, serverSelectionTimeoutMS=5000) as client:
        recipients = client[settings.database]["recipients"]
        user_id = _user_id(nora)
        _until(
            lambda: 3 in ((recipients.find_one({"_id": user_id}) or {}).get("channels") or []),
            30,
            "push on in the notification service's view of the user",
        )
    return nora


def _order(nora: User, api, admin) -> str:
    teapot = product(api, admin, units=20, stock=5)
    placed = ok(
        nora.place(
            items=[{"product_id": teapot["id"], "quantity": 1}],
            shipping_option_id=shipping_option(api, teapot["id"]),
            payment_method_id=nora.card("tok_visa"),
        )
    )
    return placed["id"]


def test_an_orders_notifications_arrive_decrypted_signed_and_a_410_removes_the_device(
    api, admin, receiver
):
    key = ok(api.get("/v1/web-push-config"))["vapid_public_key"]  # public: no token
    nora = _push_user(api)
    path = f"nora-{time.monotonic_ns()}"
    device = ok(
        api.post(
            "/v1/push-devices",
            json={
                "platform": "PLATFORM_WEB_PUSH",
                "token": receiver.endpoint(path),
                "web_push_keys": {"p256dh": receiver.p256dh, "auth": receiver.auth_secret},
                "display_name": "Test browser",
            },
            headers=nora.headers,
        )
    )
    # The endpoint URL and the keys are the browser's secrets: never answered back.
    assert not device.get("token")
    assert not device.get("web_push_keys")
    order_id = _order(nora, api, admin)

    def pushed(word: str):
        found = [
            r
            for r in receiver.received
            if r.path == path and r.message and order_id in r.message["body"]
        ]
        return next((r for r in found if word in r.message["title"]), None)

    got = _until(lambda: pushed("confirmed"), 60, "the pushed order confirmation")
    assert got.message["title"] == "Order confirmed"
    assert got.message["notification_id"]
    assert got.vapid["k"] == key
    assert got.vapid["sub"].startswith("mailto:")
    assert got.vapid["exp"] > time.time()
    assert got.headers["Content-Encoding"] == "aes128gcm"
    history = _until(
        lambda: [
            n
            for n in nora.notifications(channel="CHANNEL_PUSH")
            if n["id"] == got.message["notification_id"] and n["state"] == "STATE_SENT"
        ],
        30,
        "the push in the history as sent",
    )
    assert history

    # The browser's subscription expired: the push service answers 410 Gone from now on.
    attempts = len([r for r in receiver.received if r.path == path])
    receiver.answers[path] = 410
    second = _order(nora, api, admin)
    _until(
        lambda: not ok(api.get("/v1/push-devices", headers=nora.headers)).get("push_devices"),
        60,
        "the device removed after a 410",
    )
    gone = _until(
        lambda: [
            n
            for n in nora.notifications(channel="CHANNEL_PUSH")
            if n["state"] == "STATE_FAILED" and "410" in n["failure_reason"]
        ],
        30,
        "the push that met the 410 failed with it",
    )
    assert len(gone) == 1
    # Later pushes fail without trying the dead endpoint again.
    later = _until(
        lambda: [
            n
            for n in nora.notifications(channel="CHANNEL_PUSH")
            if second in n["body"] and n["state"] == "STATE_FAILED"
        ],
        60,
        "the second order's push failed",
    )
    assert later[0]["failure_reason"] in ("no push device", gone[0]["failure_reason"])
    assert len([r for r in receiver.received if r.path == path]) == attempts + 1


def test_a_private_endpoint_is_refused_at_registration_and_nothing_connects(api, receiver):
    nora = User(api)
    before = len(receiver.received)
    reply = api.post(
        "/v1/push-devices",
        json={
            "platform": "PLATFORM_WEB_PUSH",
            "token": "https://10.20.30.40/push/abc",
            "web_push_keys": {"p256dh": receiver.p256dh, "auth": receiver.auth_secret},
        },
        headers=nora.headers,
    )
    assert reply.status_code == 400, reply.text
    assert "push_device.token" in reply.text
    assert not ok(api.get("/v1/push-devices", headers=nora.headers)).get("push_devices")
    assert len(receiver.received) == before
