"""The one place that builds the order service's adapters and wires them into the server."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from pathlib import Path
from typing import Any

from emporium.order.v1 import order_service_pb2, order_service_pb2_grpc

from kit import auth
from kit.clock import SystemClock
from kit.server import App
from services.order import consumers
from services.order.config import Settings
from services.order.grpc_api import OrderService
from services.order.handlers import OrderHandlers

SERVICE_NAME = order_service_pb2.DESCRIPTOR.services_by_name["OrderService"].full_name
SCHEMA = Path(__file__).with_name("schema.cql")
log = logging.getLogger("emporium.order")


async def build(settings: Settings, **overrides: Any) -> App:
    """The running service. Tests pass fakes by name: `orders=`, `catalog=`, `cart=`,
    `shipping=`, `payments=`, `clock=`, `verifier=`, `inbox=` and `bus=` (a kit.bus.Bus; None
    for no relay and no consumers).

    Without `orders` the service uses Cassandra and connects to RabbitMQ (unless `bus` is
    given), running the outbox relay (with a lease), the sweeper, the deadline sweep and the
    consumers.
    """
    closers: list[Any] = []
    background: list[Any] = []
    orders = overrides.get("orders")
    inbox = overrides.get("inbox")
    bus = overrides.get("bus")
    lease = None
    if orders is None:
        from kit import cassandra
        from kit.inbox import CassandraInbox
        from kit.outbox import CassandraLease
        from services.order.adapters.cassandra import CassandraOrderRepository

        session = await cassandra.connect(settings.cassandra, schema=SCHEMA)
        closers.append(session.close)
        orders = await CassandraOrderRepository.open(session)
        lease = await CassandraLease.open(session)
        if inbox is None:
            inbox = await CassandraInbox.open(session, settings.queue)
        repo = orders

        async def sweeper() -> None:
            while True:
                try:
                    await repo.sweep()
                except Exception as exc:  # Cassandra restarting: try again next round
                    log.warning("order sweep failed: %s", exc)
                await asyncio.sleep(settings.sweep_seconds)

        background.append(sweeper)
        if "bus" not in overrides:
            from kit.bus import Bus

            bus = await Bus.connect(settings.rabbit, source=settings.server.name)
            closers.append(bus.close)
    timeout = settings.call_timeout_seconds
    adapters: dict[str, Any] = {}
    for name, cls_name, where in (
        ("catalog", "GrpcCatalog", settings.catalog),
        ("cart", "GrpcCart", settings.cart),
        ("shipping", "GrpcShipping", settings.shipping),
        ("payments", "GrpcPayments", settings.payment),
    ):
        adapter = overrides.get(name)
        if adapter is None:
            from services.order.adapters import grpc_clients

            adapter = getattr(grpc_clients, cls_name)(where.address, timeout_seconds=timeout)
            closers.append(adapter.close)
        adapters[name] = adapter
    handlers = OrderHandlers(
        orders=orders,
        clock=overrides.get("clock") or SystemClock(),
        shop_currency=settings.shop_currency,
        watch_poll_seconds=settings.watch_poll_seconds,
        checkout_deadline=timedelta(seconds=settings.checkout_deadline_seconds),
        **adapters,
    )

    async def deadlines() -> None:
        while True:
            await asyncio.sleep(settings.deadline_sweep_seconds)
            try:
                await handlers.cancel_overdue()
            except Exception as exc:  # Cassandra restarting: try again next round
                log.warning("order deadline sweep failed: %s", exc)

    if "orders" not in overrides:  # unit tests call handlers.cancel_overdue() themselves
        background.append(deadlines)
    if bus is not None:
        from kit.outbox import Relay

        background.append(Relay(orders.outbox, bus, lease=lease).run)
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
        for closer in reversed(closers):
            await closer()

    app = App(
        servicers=[
            (order_service_pb2_grpc.add_OrderServiceServicer_to_server, OrderService(handlers))
        ],
        service_names=[SERVICE_NAME],
        background=background,
        close=close,
        verifier=verifier,
    )
    app.handlers = handlers  # type: ignore[attr-defined]
    return app
