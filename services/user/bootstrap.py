"""The one place that builds the user service's adapters and wires them into the server."""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path
from typing import Any

from emporium.user.v1 import user_service_pb2, user_service_pb2_grpc

from kit import auth
from kit.clock import SystemClock
from kit.server import App
from services.user.adapters import keys as key_adapter
from services.user.adapters.passwords import Argon2Hasher
from services.user.config import Settings
from services.user.domain import ThrottlePolicy
from services.user.grpc_api import UserService
from services.user.handlers import TokenPolicy, UserHandlers

SERVICE_NAME = user_service_pb2.DESCRIPTOR.services_by_name["UserService"].full_name
SCHEMA = Path(__file__).with_name("schema.cql")

log = logging.getLogger(__name__)


async def build(settings: Settings, **overrides: Any) -> App:
    """The running service. Tests pass fakes for any port by name (`users=`, `keys=` ...)."""
    closers = []
    background = []
    ports: dict[str, Any] = {}
    needs_cassandra = {"users", "addresses", "tokens", "throttle"} - overrides.keys()
    if needs_cassandra:
        from kit import bus as event_bus
        from kit import cassandra
        from services.user.adapters import cassandra as stores

        session = await cassandra.connect(settings.cassandra, schema=SCHEMA)
        closers.append(session.close)
        built = await stores.build(session)
        ports.update(built.ports)
        if "bus" not in overrides:
            bus = await event_bus.Bus.connect(settings.rabbit, source=settings.server.name)
            closers.append(bus.close)
            # It consumes nothing, but declares every queue: no event of its goes unbound.
            await bus.apply_topology()
            background.append(built.relay(bus).run)
    ports.update(overrides)
    keys = ports.get("keys") or key_adapter.load(settings.keys)
    hasher = ports.get("hasher") or Argon2Hasher()
    handlers = UserHandlers(
        users=ports["users"],
        addresses=ports["addresses"],
        tokens=ports["tokens"],
        throttle=ports["throttle"],
        hasher=hasher,
        keys=keys,
        clock=ports.get("clock") or SystemClock(),
        policy=TokenPolicy(
            issuer=settings.auth.issuer,
            audience=settings.auth.audience,
            access_ttl=timedelta(seconds=settings.access_token_seconds),
            refresh_ttl=timedelta(seconds=settings.refresh_token_seconds),
            reset_ttl=timedelta(seconds=settings.password_reset_token_seconds),
            verification_ttl=timedelta(seconds=settings.email_verification_token_seconds),
        ),
        throttle_policy=ThrottlePolicy(
            per_account=settings.login_failures_per_account,
            per_address=settings.login_failures_per_address,
        ),
        dummy_hash=await hasher.hash("not a password anyone has"),
    )
    if settings.admin.email:
        report = await handlers.bootstrap_admin(
            email=settings.admin.email,
            password=settings.admin.password.get_secret_value(),
            display_name="Admin",
        )
        level = logging.WARNING if report.outcome == report.REFUSED else logging.INFO
        log.log(level, "admin bootstrap %s: %s", report.outcome, report.reason)
    else:
        log.info("admin bootstrap off: EMPORIUM_ADMIN_EMAIL is not set")

    async def local_jwks() -> bytes:
        return keys.jwks_json()

    async def local_revocations() -> dict[str, float]:
        marks = await handlers.token_revocations()
        return {auth.revocation_key(user): at.timestamp() for user, at in marks.items()}

    async def close() -> None:
        for closer in reversed(closers):
            await closer()

    return App(
        servicers=[
            (
                user_service_pb2_grpc.add_UserServiceServicer_to_server,
                UserService(handlers, settings.trusted_proxies),
            )
        ],
        service_names=[SERVICE_NAME],
        background=background,
        close=close,
        verifier=auth.JwtVerifier(
            local_jwks,
            issuer=settings.auth.issuer,
            audience=settings.auth.audience,
            revocations=auth.Revocations(local_revocations),
        ),
    )
