"""The one place that builds the webhooks service's adapters and wires them into the server."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any

from emporium.webhooks.v1 import webhooks_service_pb2, webhooks_service_pb2_grpc

from kit import auth
from kit.clock import SystemClock
from kit.server import App
from kit.ssrf import guard_from
from services.webhooks import consumers
from services.webhooks.config import Settings
from services.webhooks.domain import RetryPolicy
from services.webhooks.grpc_api import WebhooksService
from services.webhooks.handlers import DeliveryHandlers, Dispatcher, EndpointHandlers, Limits

SERVICE_NAME = webhooks_service_pb2.DESCRIPTOR.services_by_name["WebhooksService"].full_name
SWEEP_SECONDS = 3600.0
log = logging.getLogger("emporium.webhooks")


async def build(settings: Settings, **overrides: Any) -> App:
    """The running service. Tests pass fakes by name: `endpoints=`, `deliveries=`, `sender=`,
    `clock=`, `verifier=`, `resolver=` (for the SSRF guard) and `bus=` (a kit.bus.Bus; None
    for no relay and no consumers).

    Without `endpoints` the service uses MongoDB and connects to RabbitMQ (unless `bus` is
    given), running the outbox relay (with a lease), the consumer, the dispatcher and a sweep
    of old deliveries. The consumer has no inbox: the fan-out is idempotent by construction (a
    delivery's id derives from endpoint and event), and an inbox would cost two writes for
    every event of the platform, most of which no endpoint subscribes to.
    """
    # httpx logs every request at INFO; each attempt is recorded in the store already.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    closers: list[Any] = []
    background: list[Any] = []
    endpoints = overrides.get("endpoints")
    deliveries = overrides.get("deliveries")
    bus = overrides.get("bus")
    lease = None
    clock = overrides.get("clock") or SystemClock()
    if endpoints is None:
        from kit import mongo
        from kit.outbox import MongoLease
        from services.webhooks.adapters.mongo import INDEXES, MongoDeliveries, MongoEndpoints

        db = mongo.connect(settings.mongo)
        closers.append(db.close)
        await db.ensure_indexes(INDEXES)
        endpoints = MongoEndpoints(db, settings.secret_key)
        await endpoints.outbox.ensure_indexes()
        deliveries = MongoDeliveries(db)
        lease = MongoLease(db)
        store = deliveries
        retention = timedelta(days=settings.retention_days)

        async def sweeper() -> None:
            while True:
                try:
                    await store.prune(clock.now() - retention)
                except Exception as exc:  # MongoDB restarting: next round
                    log.warning("webhooks sweep failed: %s", exc)
                await asyncio.sleep(SWEEP_SECONDS)

        background.append(sweeper)
        if "bus" not in overrides:
            from kit.bus import Bus

            bus = await Bus.connect(settings.rabbit, source=settings.server.name)
            closers.append(bus.close)
    sender = overrides.get("sender")
    if sender is None:
        from services.webhooks.adapters.http import HttpSender

        guard = guard_from(
            settings.allowed_cidrs,
            allow_http=settings.allow_http,
            resolver=overrides.get("resolver"),
        )
        sender = HttpSender(
            guard, timeout=settings.attempt_timeout_seconds, max_connections=settings.pool_size
        )
        closers.append(sender.aclose)
    limits = Limits(
        max_endpoints=settings.max_endpoints,
        default_overlap=timedelta(seconds=settings.secret_overlap_seconds),
        attempt_timeout=settings.attempt_timeout_seconds,
        disable_after=timedelta(seconds=settings.suspend_after_seconds),
    )
    dispatcher = Dispatcher(
        endpoints,
        deliveries,
        sender,
        clock,
        limits,
        RetryPolicy(settings.retry_schedule, settings.retry_jitter),
        pool_size=settings.pool_size,
        per_endpoint=settings.per_endpoint,
        poll_seconds=settings.poll_seconds,
        source=settings.server.name,
    )
    background.append(dispatcher.run)
    endpoint_handlers = EndpointHandlers(endpoints, deliveries, sender, clock, limits, dispatcher)
    delivery_handlers = DeliveryHandlers(endpoints, deliveries, clock, dispatcher)
    if bus is not None:
        from kit.outbox import Relay

        background.append(Relay(endpoints.outbox, bus, lease=lease).run)
        await bus.apply_topology(consumers.QUEUE, settings.queue)
        subscriptions = consumers.subscriptions(delivery_handlers)
        background.append(bus.subscribe(settings.queue, subscriptions, inbox=None).run)
    verifier = overrides.get("verifier")
    if verifier is None:
        verifier, close_verifier = auth.user_service_verifier(settings.auth, settings.user.address)
        closers.append(close_verifier)

    async def close() -> None:
        for closer in reversed(closers):
            await closer()

    app = App(
        servicers=[
            (
                webhooks_service_pb2_grpc.add_WebhooksServiceServicer_to_server,
                WebhooksService(endpoint_handlers, delivery_handlers),
            )
        ],
        service_names=[SERVICE_NAME],
        background=background,
        close=close,
        verifier=verifier,
    )
    app.endpoint_handlers = endpoint_handlers  # type: ignore[attr-defined]
    app.delivery_handlers = delivery_handlers  # type: ignore[attr-defined]
    app.dispatcher = dispatcher  # type: ignore[attr-defined]
    return app
