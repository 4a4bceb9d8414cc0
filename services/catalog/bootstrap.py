"""The one place that builds the catalog service's adapters and wires them into the server."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from pathlib import Path
from typing import Any

from emporium.catalog.v1 import catalog_service_pb2, catalog_service_pb2_grpc
from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Observation

from kit import auth
from kit.clock import SystemClock
from kit.server import App
from services.catalog import consumers
from services.catalog.config import Settings
from services.catalog.grpc_api import CatalogService
from services.catalog.handlers import CatalogHandlers

SERVICE_NAME = catalog_service_pb2.DESCRIPTOR.services_by_name["CatalogService"].full_name
SCHEMA = Path(__file__).with_name("schema.cql")
STORES = ("products", "categories", "stock", "reservations", "reviews", "images")

log = logging.getLogger(__name__)


async def build(settings: Settings, **overrides: Any) -> App:
    """The running service. Tests pass fakes for any port by name (`products=`, `cache=` ...),
    `verifier=` for the token check, and `sweeper=False` to drive `handlers.sweep()` by hand.

    On Cassandra the service also connects to RabbitMQ (or uses `bus=`, a kit.bus.Bus; None for
    neither relay nor consumers) and consumes its queue (`settings.queue`) through an inbox in
    its keyspace (`inbox=` overrides it)."""
    closers = []
    background = []
    ports: dict[str, Any] = {}
    bus = overrides.get("bus")
    session = None
    if set(STORES) - overrides.keys():
        from kit import bus as event_bus
        from kit import cassandra
        from services.catalog.adapters import cassandra as stores

        session = await cassandra.connect(settings.cassandra, schema=SCHEMA)
        closers.append(session.close)
        built = await stores.build(session)
        if moved := await built.images.move_legacy():
            log.info("moved %d product images onto their products' rows", moved)
        ports.update(built.ports)
        if "bus" not in overrides:
            bus = await event_bus.Bus.connect(settings.rabbit, source=settings.server.name)
            closers.append(bus.close)
        if bus is not None:
            background.append(built.relay(bus).run)
    if "cache" not in overrides:
        from kit import redis as kit_redis
        from services.catalog.adapters.redis import RedisProductCache

        client = kit_redis.connect(settings.redis)
        closers.append(client.aclose)
        ports["cache"] = RedisProductCache(
            client,
            ttl_seconds=settings.cache_ttl_seconds,
            prefix=settings.cache_prefix,
            local_size=settings.cache_local_size,
        )
        if settings.cache_local_size > 0:
            background.append(ports["cache"].invalidations.run)
    ports.update(overrides)
    handlers = CatalogHandlers(
        products=ports["products"],
        categories=ports["categories"],
        stock=ports["stock"],
        reservations=ports["reservations"],
        reviews=ports["reviews"],
        images=ports["images"],
        cache=ports["cache"],
        clock=ports.get("clock") or SystemClock(),
        shop_currency=settings.currency,
        reservation_ttl=timedelta(seconds=settings.reservation_ttl_seconds),
        low_stock_threshold=settings.low_stock_threshold,
    )
    if bus is not None and (session is not None or "inbox" in overrides):
        from kit.inbox import CassandraInbox

        inbox = overrides.get("inbox")
        if inbox is None:
            inbox = await CassandraInbox.open(session, settings.queue, create_table=True)
        await bus.apply_topology(consumers.QUEUE, settings.queue)
        subscriptions = consumers.subscriptions(handlers)
        background.append(bus.subscribe(settings.queue, subscriptions, inbox=inbox).run)
    if ports.get("sweeper", True):

        async def reservation_sweeper() -> None:
            await handlers.run_sweeper(settings.sweep_seconds)

        background.append(reservation_sweeper)
    cache = ports["cache"]

    def cache_requests(options: CallbackOptions) -> list[Observation]:
        return [
            Observation(cache.hits, {"result": "hit"}),
            Observation(cache.misses, {"result": "miss"}),
        ]

    # Read when metrics are exported (a no-op meter without an OTLP endpoint): no per-read cost.
    metrics.get_meter("emporium.catalog").create_observable_counter(
        "emporium.cache.requests",
        callbacks=[cache_requests],
        description="product cache reads by this process, by result (hit, miss)",
    )

    async def cache_stats() -> None:
        # The hit/miss totals of this process, for operators reading the logs.
        while True:
            await asyncio.sleep(settings.cache_log_seconds)
            log.info(
                "product cache: %d hits (%d from memory), %d misses",
                cache.hits,
                getattr(cache, "local_hits", 0),
                cache.misses,
            )

    background.append(cache_stats)

    verifier = ports.get("verifier")
    if verifier is None:
        verifier, close_verifier = auth.user_service_verifier(settings.auth, settings.user_address)
        closers.append(close_verifier)

    async def close() -> None:
        for closer in reversed(closers):
            await closer()

    app = App(
        servicers=[
            (
                catalog_service_pb2_grpc.add_CatalogServiceServicer_to_server,
                CatalogService(handlers),
            )
        ],
        service_names=[SERVICE_NAME],
        background=background,
        close=close,
        verifier=verifier,
    )
    # Tests reach the handlers (sweep, fakes) through the app.
    app.handlers = handlers  # type: ignore[attr-defined]
    return app
