"""The one place that builds the notification service's adapters and wires them into the server."""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

from emporium.notification.v1 import notification_service_pb2, notification_service_pb2_grpc

from kit import auth, ssrf
from kit.clock import SystemClock
from kit.server import App
from services.notification import consumers, rendering
from services.notification.adapters.channels import ChannelRouter
from services.notification.adapters.webpush import VapidKey, WebPushSender
from services.notification.config import Settings
from services.notification.domain import Channel
from services.notification.grpc_api import NotificationService
from services.notification.handlers import (
    NotificationHandlers,
    PreferenceHandlers,
    PushDeviceHandlers,
    Secrets,
    Shop,
    TemplateHandlers,
)

SERVICE_NAME = notification_service_pb2.DESCRIPTOR.services_by_name["NotificationService"].full_name
log = logging.getLogger("emporium.notification")


async def build(settings: Settings, **overrides: Any) -> App:
    """The running service. Tests pass fakes by name: `notifications=`, `recipients=`,
    `preferences=`, `templates=`, `fanouts=` (all five, or none), `channels=` (a ports.Channels
    with `available`), `push_devices=` (a ports.PushDeviceRepository), `push_guard=` (a
    kit.ssrf.UrlGuard for registrations and sends), `clock=`, `verifier=`, `inbox=` and `bus=`
    (a kit.bus.Bus; None for no relay and no consumers), `senders=False` to run no background
    senders.

    Without repositories the service uses MongoDB and connects to RabbitMQ (unless `bus` is
    given), running the outbox relay, the senders and the consumers.
    """
    closers: list[Any] = []
    background: list[Any] = []
    bus = overrides.get("bus")
    inbox = overrides.get("inbox")
    lease = None
    repos = {
        k: overrides.get(k)
        for k in ("notifications", "recipients", "preferences", "templates", "fanouts")
    }
    if repos["notifications"] is None:
        from kit import mongo
        from kit.inbox import MongoInbox
        from kit.outbox import MongoLease
        from services.notification.adapters import mongo as store

        db = mongo.connect(settings.mongo)
        closers.append(db.close)
        notifications = await store.MongoNotificationRepository.open(db)
        repos = {
            "notifications": notifications,
            "recipients": store.MongoRecipientRepository(db),
            "preferences": store.MongoPreferencesRepository(db),
            "templates": store.MongoTemplateRepository(db),
            "fanouts": store.MongoFanOutRepository(db, notifications.outbox),
        }
        if overrides.get("push_devices") is None:
            overrides["push_devices"] = store.MongoPushDeviceRepository(db)
        lease = MongoLease(db)
        if inbox is None:
            inbox = MongoInbox(db, settings.queue)
        if "bus" not in overrides:
            from kit.bus import Bus

            bus = await Bus.connect(settings.rabbit, source=settings.server.name)
            closers.append(bus.close)
    clock = overrides.get("clock") or SystemClock()
    devices = overrides.get("push_devices")
    if devices is None:
        from services.notification.adapters.memory import InMemoryPushDeviceRepository

        devices = InMemoryPushDeviceRepository()
    push = settings.web_push
    vapid = None
    if push.private_key:
        vapid = VapidKey.parse(push.private_key)
    elif not settings.auth.production:
        vapid = VapidKey.development(push.development_key_path)
    guard = overrides.get("push_guard") or ssrf.guard_from(
        push.allowed_cidrs, allow_http=push.allow_http
    )
    guard = replace(guard, field_name="push_device.token")
    channels = overrides.get("channels")
    if channels is None:
        from services.notification.adapters.email import SmtpEmailSender

        adapters: dict[Channel, Any] = {
            Channel.EMAIL: SmtpEmailSender(
                settings.smtp.host,
                settings.smtp.port,
                settings.smtp.sender,
                username=settings.smtp.username,
                password=settings.smtp.password,
                start_tls=settings.smtp.start_tls,
                timeout_seconds=settings.smtp.timeout_seconds,
            )
        }
        if settings.sms_sandbox:
            from services.notification.adapters.sms import SandboxSmsProvider

            adapters[Channel.SMS] = SandboxSmsProvider()
        if vapid is not None:
            http = ssrf.GuardedHttp(guard)
            closers.append(http.aclose)
            adapters[Channel.PUSH] = WebPushSender(
                devices,
                vapid,
                http,
                subject=push.subject,
                clock=clock,
                timeout_seconds=push.timeout_seconds,
            )
        channels = ChannelRouter(adapters)
    secrets = Secrets(settings.secret.encode())
    handlers = NotificationHandlers(
        **repos,
        channels=channels,
        available=channels.available,
        clock=clock,
        shop=Shop(settings.shop_name, settings.shop_url, settings.public_api_url),
        secrets=secrets,
        default_locale=settings.default_locale,
        batch_size=settings.batch_size,
        senders=settings.senders,
        poll_seconds=settings.poll_seconds,
        watch_poll_seconds=settings.watch_poll_seconds,
    )
    installed = await handlers.install_default_templates(rendering.load_defaults())
    if installed:
        log.info("installed %d default templates", installed)
    if overrides.get("senders", True):
        background.append(handlers.run_senders)
    if bus is not None:
        from kit.outbox import Relay

        background.append(Relay(repos["notifications"].outbox, bus, lease=lease).run)
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

    preferences = PreferenceHandlers(preferences=repos["preferences"], secrets=secrets, clock=clock)
    templates = TemplateHandlers(templates=repos["templates"], notifications=handlers, clock=clock)
    push_devices = PushDeviceHandlers(
        devices=devices,
        guard=guard,
        vapid_public_key=vapid.public_key if vapid is not None else "",
        clock=clock,
    )
    app = App(
        servicers=[
            (
                notification_service_pb2_grpc.add_NotificationServiceServicer_to_server,
                NotificationService(handlers, preferences, templates, push_devices),
            )
        ],
        service_names=[SERVICE_NAME],
        background=background,
        close=close,
        verifier=verifier,
    )
    app.handlers = handlers  # type: ignore[attr-defined]
    app.preferences = preferences  # type: ignore[attr-defined]
    app.templates = templates  # type: ignore[attr-defined]
    app.push_devices = push_devices  # type: ignore[attr-defined]
    return app
