"""The user service's JWK Set over gRPC (UserService.GetJwks), as kit.auth.JwtVerifier's key source.

The verifier refetches it when a token names a key id it has not seen (key rotation), at most
every 30 s; a user service that cannot be reached makes token checks UNAVAILABLE, not a crash.
"""

from __future__ import annotations

import grpc
from emporium.user.v1 import user_service_pb2, user_service_pb2_grpc


class UserServiceJwks:
    def __init__(self, address: str, *, timeout_seconds: float = 5.0) -> None:
        self.address = address
        self.timeout = timeout_seconds
        self._channel: grpc.aio.Channel | None = None

    async def __call__(self) -> bytes:
        if self._channel is None:
            self._channel = grpc.aio.insecure_channel(
                self.address, options=[("grpc.enable_http_proxy", 0)]
            )
        stub = user_service_pb2_grpc.UserServiceStub(self._channel)
        body = await stub.GetJwks(user_service_pb2.GetJwksRequest(), timeout=self.timeout)
        return body.data

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()
