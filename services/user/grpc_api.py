"""The UserService servicer: decodes requests, calls a handler, encodes the answer."""

from __future__ import annotations

from emporium.user.v1 import user_service_pb2_grpc
from google.api import httpbody_pb2

from services.user import handlers
from services.user.ports import KeyStore


class UserService(user_service_pb2_grpc.UserServiceServicer):
    """RPCs not implemented here answer UNIMPLEMENTED (the generated base class)."""

    def __init__(self, keys: KeyStore) -> None:
        self.keys = keys

    async def GetJwks(self, request, context):
        return httpbody_pb2.HttpBody(
            content_type="application/json", data=handlers.get_jwks(self.keys)
        )
