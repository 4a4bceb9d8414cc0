"""The one place that builds the shipping service's adapters and wires them into the server."""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path
from typing import Any

from emporium.shipping.v1 import shipping_service_pb2, shipping_service_pb2_grpc

from kit import auth
from kit.clock import SystemClock
from kit.server import App
from services.shipping import consumers
from services.shipping.adapters.carrier import SimulatedCarrier
from services.shipping.config import Settings
from services.shipping.grpc_api import ShippingService
from services.shipping.handlers import ShippingHandlers

SERVICE_NAME = shipping_service_pb2.DESCRIPTOR.services_by_name["ShippingService"].full_name
SCHEMA = Path(__file__).with_name("schema.cql")
STORES = ("rates", "shipments", "orders")

log = logging.getLogger(__name__)


async def build(settings: Settings, **overrides: Any) -> App:
    """The running service. Tests pass fakes by name: `rates=`, `shipments=`, `orders=`,
    `carriers=` (code -> adapter), `clock=`, `verifier=`, `inbox=`, and `bus=` (a kit.bus.Bus;
    None for no relay and no consumers). `background=False` leaves the carrier simulator and
    the sweeper to the test (`handlers.advance()`, `handlers.sweep()`).

    Without fakes the service uses Cassandra and RabbitMQ: the outbox relay (with its lease),
    the consumer of `settings.queue` (through an inbox in the keyspace), the carrier
    simulator and the sweeper run in the background; the default rate table is seeded when
    the table is empty (EMPORIUM_SHIPPING_SEED_RATES).
    """
    closers: list[Any] = []
    background: list[Any] = []
    ports: dict[str, Any] = {}
    bus = overrides.get("bus")
    session = None
    stores = None
    if set(STORES) - overrides.keys():
        from kit import cassandra
        from services.shipping.adapters import cassandra as cassandra_stores

        session = await cassandra.connect(settings.cassandra, schema=SCHEMA)
        closers.append(session.close)
        stores = await cassandra_stores.build(session)
        ports.update(rates=stores.rates, shipments=stores.shipments, orders=stores.orders)
        if "bus" not in overrides:
            from kit.bus import Bus

            bus = await Bus.connect(settings.rabbit, source=settings.server.name)
            closers.append(bus.close)
    ports.update({k: v for k, v in overrides.items() if k in STORES})
    carriers = overrides.get("carriers") or {
        code: SimulatedCarrier(code, step_seconds=settings.carrier_step_seconds)
        for code in settings.carriers
    }
    handlers = ShippingHandlers(
        rates=ports["rates"],
        shipments=ports["shipments"],
        orders=ports["orders"],
        carriers=carriers,
        clock=overrides.get("clock") or SystemClock(),
        currency=settings.currency,
        quote_ttl=timedelta(seconds=settings.quote_ttl_seconds),
    )
    if settings.seed_rates and overrides.get("seed", True):
        await handlers.seed_default_rates()
    if bus is not None:
        if stores is not None:
            background.append(stores.relay(bus).run)
        else:
            from kit.outbox import Relay

            background.append(Relay(ports["shipments"].outbox, bus).run)
        inbox = overrides.get("inbox")
        if inbox is None:
            if session is not None:
                from kit.inbox import CassandraInbox

                inbox = await CassandraInbox.open(session, settings.queue, create_table=True)
            else:
                from kit.inbox import InMemoryInbox

                inbox = InMemoryInbox()
        await bus.apply_topology(consumers.QUEUE, settings.queue)
        subscriptions = consumers.subscriptions(handlers)
        background.append(bus.subscribe(settings.queue, subscriptions, inbox=inbox).run)
    if overrides.get("background", True):

        async def carrier() -> None:
            await handlers.run_every(settings.carrier_poll_seconds, handlers.advance, "carrier")

        async def sweeper() -> None:
            await handlers.run_every(settings.sweep_seconds, handlers.sweep, "sweep")

        if settings.carrier_step_seconds > 0:
            background.append(carrier)
        background.append(sweeper)
    verifier = overrides.get("verifier")
    if verifier is None:
        verifier, close_verifier = auth.user_service_verifier(settings.auth, settings.user_address)
        closers.append(close_verifier)

    async def close() -> None:
        for closer in reversed(closers):
            await closer()

    app = App(
        servicers=[
            (
                shipping_service_pb2_grpc.add_ShippingServiceServicer_to_server,
                ShippingService(handlers, watch_poll_seconds=settings.watch_poll_seconds),
            )
        ],
        service_names=[SERVICE_NAME],
        background=background,
        close=close,
        verifier=verifier,
    )
    app.handlers = handlers  # type: ignore[attr-defined]
    return app
