"""The one place that builds the user service's adapters and wires them into the server."""

from __future__ import annotations

from typing import Any

from emporium.user.v1 import user_service_pb2, user_service_pb2_grpc

from kit import auth
from kit.server import App
from services.user.adapters import keys as key_adapter
from services.user.config import Settings
from services.user.grpc_api import UserService
from services.user.ports import KeyStore

SERVICE_NAME = user_service_pb2.DESCRIPTOR.services_by_name["UserService"].full_name


async def build(settings: Settings, *, keys: KeyStore | None = None, **_: Any) -> App:
    """The running service; tests pass fakes for any adapter."""
    signing_keys = keys or key_adapter.load(settings.keys)

    async def local_jwks() -> bytes:
        return signing_keys.jwks_json()

    verifier = auth.JwtVerifier(
        local_jwks, issuer=settings.auth.issuer, audience=settings.auth.audience
    )
    servicer = UserService(signing_keys)
    return App(
        servicers=[(user_service_pb2_grpc.add_UserServiceServicer_to_server, servicer)],
        service_names=[SERVICE_NAME],
        verifier=verifier,
    )
