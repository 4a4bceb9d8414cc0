"""The one place that builds the payment service's adapters and wires them into the server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from emporium.payment.v1 import payment_service_pb2, payment_service_pb2_grpc

from kit import auth
from kit.clock import SystemClock
from kit.server import App
from services.payment import consumers
from services.payment.config import Settings
from services.payment.grpc_api import PaymentService
from services.payment.handlers import PaymentHandlers

SERVICE_NAME = payment_service_pb2.DESCRIPTOR.services_by_name["PaymentService"].full_name
SCHEMA = Path(__file__).with_name("schema.cql")


async def build(settings: Settings, **overrides: Any) -> App:
    """The running service. Tests pass fakes by name: `methods=`, `payments=`, `provider=`,
    `clock=`, `verifier=`, `inbox=` and `bus=` (a kit.bus.Bus; None: no relay, no consumers).

    Without `payments` the service uses Cassandra (stores, outbox under a lease, inbox, the
    sandbox provider's tables) and connects to RabbitMQ unless `bus` is given.
    """
    closers: list[Any] = []
    background: list[Any] = []
    methods = overrides.get("methods")
    payments = overrides.get("payments")
    provider = overrides.get("provider")
    inbox = overrides.get("inbox")
    bus = overrides.get("bus")
    relay = None
    if payments is None or methods is None or provider is None:
        from kit import cassandra
        from services.payment.adapters import cassandra as stores
        from services.payment.adapters.sandbox import SandboxProvider

        session = await cassandra.connect(settings.cassandra, schema=SCHEMA)
        closers.append(session.close)
        built = await stores.build(session)
        methods = methods or built.methods
        payments = payments or built.payments
        provider = provider or SandboxProvider(
            built.sandbox, latency=settings.sandbox_latency_seconds
        )
        if payments is built.payments:
            relay = built.relay
            if inbox is None:
                inbox = await built.inbox(settings.queue)
        if "bus" not in overrides:
            from kit.bus import Bus

            bus = await Bus.connect(settings.rabbit, source=settings.server.name)
            closers.append(bus.close)
    handlers = PaymentHandlers(
        methods=methods,
        payments=payments,
        provider=provider,
        clock=overrides.get("clock") or SystemClock(),
        max_methods=settings.max_methods,
    )
    if bus is not None:
        if relay is not None:
            background.append((await relay(bus)).run)
        else:
            from kit.outbox import Relay

            background.append(Relay(payments.outbox, bus).run)
        await bus.apply_topology(consumers.QUEUE, settings.queue)
        if inbox is None:
            from kit.inbox import InMemoryInbox

            inbox = InMemoryInbox()
        consumer = bus.subscribe(
            settings.queue,
            consumers.subscriptions(handlers),
            inbox=inbox,
            concurrency=settings.consumer_concurrency,
        )
        background.append(consumer.run)
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
                payment_service_pb2_grpc.add_PaymentServiceServicer_to_server,
                PaymentService(handlers),
            )
        ],
        service_names=[SERVICE_NAME],
        background=background,
        close=close,
        verifier=verifier,
    )
    # Tests reach the handlers and the provider (charge counts) through the app.
    app.handlers = handlers  # type: ignore[attr-defined]
    app.provider = provider  # type: ignore[attr-defined]
    return app
