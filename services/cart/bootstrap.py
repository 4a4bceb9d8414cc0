"""The one place that builds the cart service's adapters and wires them into the server."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from emporium.cart.v1 import cart_service_pb2, cart_service_pb2_grpc

from kit import auth
from kit.clock import SystemClock
from kit.server import App
from services.cart import consumers
from services.cart.config import Settings
from services.cart.grpc_api import CartService
from services.cart.handlers import CartHandlers

SERVICE_NAME = cart_service_pb2.DESCRIPTOR.services_by_name["CartService"].full_name


async def build(settings: Settings, **overrides: Any) -> App:
    """The running service. Tests pass fakes by name: `carts=`, `catalog=`, `clock=`,
    `verifier=`, `inbox=` and `bus=` (a kit.bus.Bus; None for no relay and no consumers).

    Without `carts` the service uses Redis and connects to RabbitMQ (unless `bus` is given),
    running the outbox relay and the OrderPlaced consumer in the background.
    """
    closers: list[Any] = []
    background: list[Any] = []
    carts = overrides.get("carts")
    lease = None
    inbox = overrides.get("inbox")
    bus = overrides.get("bus")
    if carts is None:
        from kit import redis
        from services.cart.adapters.redis import RedisCartRepository

        client = redis.connect(settings.redis)
        closers.append(client.aclose)
        carts = RedisCartRepository(
            client,
            prefix=settings.key_prefix,
            ttl_seconds=settings.ttl_seconds,
            source=settings.server.name,
            shop_currency=settings.shop_currency,
        )
        lease = carts.lease()
        if inbox is None:
            from kit.inbox import RedisInbox

            inbox = RedisInbox(client, settings.key_prefix)
        if "bus" not in overrides:
            from kit.bus import Bus

            bus = await Bus.connect(settings.rabbit, source=settings.server.name)
            closers.append(bus.close)
    catalog = overrides.get("catalog")
    if catalog is None:
        from services.cart.adapters.catalog import GrpcCatalog

        catalog = GrpcCatalog(
            settings.catalog.address, timeout_seconds=settings.catalog_timeout_seconds
        )
        closers.append(catalog.close)
    handlers = CartHandlers(
        carts=carts,
        catalog=catalog,
        clock=overrides.get("clock") or SystemClock(),
        shop_currency=settings.shop_currency,
    )
    if bus is not None:
        from kit.outbox import Relay

        background.append(Relay(carts.outbox, bus, lease=lease).run)
        await bus.apply_topology(consumers.QUEUE, settings.queue)
        if inbox is None:
            from kit.inbox import InMemoryInbox

            inbox = InMemoryInbox()
        subscriptions = consumers.subscriptions(handlers)
        background.append(bus.subscribe(settings.queue, subscriptions, inbox=inbox).run)
    verifier = overrides.get("verifier")
    if verifier is None:
        verifier, close_verifier = auth.user_service_verifier(settings.auth, settings.user.address)
        closers.append(close_verifier)

    async def close() -> None:
        # Consumers and the relay stop with the bus before Redis goes away.
        for closer in reversed(closers):
            await closer()

    return App(
        servicers=[
            (
                cart_service_pb2_grpc.add_CartServiceServicer_to_server,
                CartService(handlers, ttl=timedelta(seconds=settings.ttl_seconds)),
            )
        ],
        service_names=[SERVICE_NAME],
        background=background,
        close=close,
        verifier=verifier,
    )
