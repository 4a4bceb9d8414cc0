"""Test helpers for the logging service: signed admin tokens, and OpenTelemetry SDK providers
that export to a given OTLP endpoint, as a service's kit.telemetry would."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from dataclasses import dataclass

import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from kit import auth

ISSUER, AUDIENCE = "emporium-user", "emporium"


class Tokens:
    """Signs access tokens as the user service would, and serves the matching JWK Set."""

    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        jwk = jwt.algorithms.ECAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
        self.jwks = {"keys": [{**jwk, "kid": "k1", "alg": "ES256", "use": "sig"}]}

    async def source(self) -> bytes:
        return json.dumps(self.jwks).encode()

    def verifier(self) -> auth.JwtVerifier:
        return auth.JwtVerifier(self.source, issuer=ISSUER, audience=AUDIENCE)

    def metadata(self, *, admin: bool) -> list[tuple[str, str]]:
        now = int(time.time())
        claims = {
            "sub": str(uuid.uuid4()),
            "iss": ISSUER,
            "aud": AUDIENCE,
            "iat": now,
            "exp": now + 600,
            "roles": ["customer", "admin"] if admin else ["customer"],
        }
        token = jwt.encode(claims, self.key, algorithm="ES256", headers={"kid": "k1"})
        return [("authorization", f"Bearer {token}")]


@dataclass
class Emitter:
    """One pretend service exporting spans and log records over OTLP/gRPC."""

    tracer_provider: TracerProvider
    logger_provider: LoggerProvider
    logger: logging.Logger

    @classmethod
    def to(cls, endpoint: str, service: str, *, headers: dict[str, str] | None = None) -> Emitter:
        resource = Resource.create({"service.name": service, "service.version": "1.2.3"})
        tracer_provider = TracerProvider(resource=resource)
        tracer_provider.add_span_processor(
            BatchSpanProcessor(
                OTLPSpanExporter(endpoint=endpoint, insecure=True, headers=headers, timeout=5)
            )
        )
        logger_provider = LoggerProvider(resource=resource)
        logger_provider.add_log_record_processor(
            BatchLogRecordProcessor(
                OTLPLogExporter(endpoint=endpoint, insecure=True, headers=headers, timeout=5)
            )
        )
        logger = logging.getLogger(f"tests.emitter.{service}.{uuid.uuid4().hex[:6]}")
        logger.propagate = False
        logger.setLevel(logging.DEBUG)
        logger.addHandler(LoggingHandler(logger_provider=logger_provider))
        return cls(tracer_provider, logger_provider, logger)

    def tracer(self):
        return self.tracer_provider.get_tracer("tests")

    async def flush(self) -> None:
        # The SDK exporters block; the receiver may run on this very event loop.
        await asyncio.to_thread(self.tracer_provider.force_flush)
        await asyncio.to_thread(self.logger_provider.force_flush)

    async def shutdown(self) -> None:
        await asyncio.to_thread(self.tracer_provider.shutdown)
        await asyncio.to_thread(self.logger_provider.shutdown)
