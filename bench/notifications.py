"""Notifications: events/s turned into sent email, and event published -> in-app visible.

    uv run --frozen python -m bench.notifications [--gateway 127.0.0.1:8080] [--emails 300]
        [--in-app 100] [--mailpit http://127.0.0.1:8025] [--rabbitmq amqp://...]

Needs the platform running (`make run`, with Mailpit). Two measurements:

1. `--emails` UserRegistered events (as the user service would publish them, for new addresses
   of one run-unique domain) are published to the bus at once; the run waits until Mailpit holds
   every welcome email and prints events/s from the first publish to the last email received.
2. A registered shopper watches WatchNotifications (gRPC through the gateway) while `--in-app`
   OrderConfirmed events for them are published one after another; each is timed from its
   publish (confirmed by the broker) to the moment the stream shows its in-app notification.

Prints figures, asserts nothing: the load generator shares the machine's cores with the servers.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import statistics
import time
import uuid

import grpc
import httpx
from emporium.notification.v1 import notification_service_pb2, notification_service_pb2_grpc
from emporium.order.v1 import order_events_pb2
from emporium.user.v1 import user_events_pb2
from google.type import money_pb2

from kit.bus import Bus
from kit.config import RabbitSettings
from kit.events import Event

PASSWORD = "correct horse battery"


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values) or [0.0]
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


async def _emails(bus: Bus, mailpit: str, count: int) -> None:
    domain = f"bench-{secrets.token_hex(4)}.example"
    events = [
        Event.of(
            user_events_pb2.UserRegistered(
                user_id=str(uuid.uuid4()), email=f"u{i}@{domain}", display_name="Bench"
            ),
            "user",
        )
        for i in range(count)
    ]
    started = time.perf_counter()
    await bus.publish(events)
    received = 0
    async with httpx.AsyncClient(base_url=mailpit, trust_env=False, timeout=10) as client:
        deadline = started + 600
        while time.perf_counter() < deadline:
            reply = await client.get("/api/v1/search", params={"query": domain, "limit": 1})
            received = int(reply.json().get("messages_count", 0))
            if received >= count:
                break
            await asyncio.sleep(0.25)
    seconds = time.perf_counter() - started
    print(f"{count} UserRegistered -> {received} welcome emails in Mailpit in {seconds:.1f} s")
    print(f"  {received / seconds:.1f} events/s turned into sent email")


async def _in_app(bus: Bus, gateway: str, count: int) -> None:
    async with httpx.AsyncClient(base_url=f"http://{gateway}", trust_env=False, timeout=30) as api:
        email = f"bench-{secrets.token_hex(6)}@example.com"
        body = {"email": email, "password": PASSWORD, "display_name": "Bench"}
        (await api.post("/v1/users:register", json=body)).raise_for_status()
        login = await api.post("/v1/auth:login", json={"email": email, "password": PASSWORD})
        token = login.json()["access_token"]
        me = await api.get("/v1/users/me", headers={"authorization": f"Bearer {token}"})
        user_id = me.json()["id"]
    published: dict[str, float] = {}
    latencies: list[float] = []
    done = asyncio.Event()
    async with grpc.aio.insecure_channel(gateway, options=[("grpc.enable_http_proxy", 0)]) as ch:
        stub = notification_service_pb2_grpc.NotificationServiceStub(ch)
        stream = stub.WatchNotifications(
            notification_service_pb2.WatchNotificationsRequest(),
            metadata=[("authorization", f"Bearer {token}")],
        )
        await stream.read()  # the first message: the stream is live

        async def watch() -> None:
            # read() only: a grpc.aio call cannot mix read() and async iteration.
            while True:
                message = await stream.read()
                if message is grpc.aio.EOF:
                    return
                order_id = (
                    message.notification.body.split(" ")[1] if message.notification.body else ""
                )
                if order_id in published:
                    latencies.append(time.perf_counter() - published.pop(order_id))
                    if len(latencies) >= count:
                        done.set()

        watcher = asyncio.create_task(watch())
        for _ in range(count):
            order_id = f"bench{secrets.token_hex(4)}"
            event = Event.of(
                order_events_pb2.OrderConfirmed(
                    order_id=order_id,
                    user_id=user_id,
                    total=money_pb2.Money(currency_code="USD", units=10),
                ),
                "order",
            )
            published[order_id] = time.perf_counter()
            await bus.publish([event])
            await asyncio.sleep(0.05)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), 120)
        stream.cancel()
        watcher.cancel()
    print(
        f"event published -> in-app notification on WatchNotifications "
        f"({len(latencies)}/{count} seen):"
    )
    if latencies:
        print(
            f"  p50 {statistics.median(latencies) * 1000:.0f} ms, "
            f"p99 {_percentile(latencies, 0.99) * 1000:.0f} ms"
        )


async def main(args: argparse.Namespace) -> None:
    async with await Bus.connect(RabbitSettings(args.rabbitmq), source="bench") as bus:
        await _emails(bus, args.mailpit, args.emails)
        await _in_app(bus, args.gateway, args.in_app)


def cli() -> None:
    port = os.environ.get("EMPORIUM_GATEWAY_PORT", "8080")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gateway", default=f"127.0.0.1:{port}")
    parser.add_argument(
        "--mailpit", default=os.environ.get("EMPORIUM_MAILPIT_URL", "http://127.0.0.1:8025")
    )
    parser.add_argument("--rabbitmq", default=RabbitSettings.from_env().url)
    parser.add_argument("--emails", type=int, default=300)
    parser.add_argument("--in-app", type=int, default=100)
    asyncio.run(main(parser.parse_args()))


if __name__ == "__main__":
    cli()
