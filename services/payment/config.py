"""The payment service's settings: one frozen object built from the environment at start."""

from __future__ import annotations

import os
from dataclasses import dataclass

from kit.config import (
    AuthSettings,
    CassandraSettings,
    ConfigError,
    Env,
    RabbitSettings,
    ServerSettings,
    TelemetrySettings,
    integer,
    number,
    refuse_development_defaults,
    string,
)

NAME = "payment"


@dataclass(frozen=True)
class Settings:
    """Everything the payment service reads from its environment.

    EMPORIUM_PAYMENT_QUEUE                  the service's RabbitMQ queue ("payment"); tests use
                                            a unique one
    EMPORIUM_PAYMENT_MAX_METHODS            saved payment methods per user (10)
    EMPORIUM_PAYMENT_SANDBOX_LATENCY_SECONDS  how long each call to the sandbox provider takes
                                            (0.05), like a real provider's round trip
    EMPORIUM_PAYMENT_CONSUMER_CONCURRENCY   events handled at once (16; one per order)
    EMPORIUM_USER_GRPC_HOST / _PORT         where the user service serves the JWK Set
    """

    server: ServerSettings
    telemetry: TelemetrySettings
    auth: AuthSettings
    cassandra: CassandraSettings
    rabbit: RabbitSettings
    user_address: str
    queue: str = NAME
    max_methods: int = 10
    sandbox_latency_seconds: float = 0.05
    consumer_concurrency: int = 16

    @classmethod
    def from_env(cls, env: Env = os.environ) -> Settings:
        refuse_development_defaults(env, ServerSettings, RabbitSettings, CassandraSettings)
        latency = number(env, "EMPORIUM_PAYMENT_SANDBOX_LATENCY_SECONDS", 0.05)
        if latency < 0:
            raise ConfigError("EMPORIUM_PAYMENT_SANDBOX_LATENCY_SECONDS must not be negative")
        max_methods = integer(env, "EMPORIUM_PAYMENT_MAX_METHODS", 10)
        if max_methods < 1:
            raise ConfigError("EMPORIUM_PAYMENT_MAX_METHODS must be at least 1")
        return cls(
            server=ServerSettings.from_env(NAME, env),
            telemetry=TelemetrySettings.from_env(NAME, env),
            auth=AuthSettings.from_env(env),
            cassandra=CassandraSettings.from_env("emporium_payment", env),
            rabbit=RabbitSettings.from_env(env),
            user_address=ServerSettings.from_env("user", env).address,
            queue=string(env, "EMPORIUM_PAYMENT_QUEUE", NAME),
            max_methods=max_methods,
            sandbox_latency_seconds=latency,
            consumer_concurrency=max(1, integer(env, "EMPORIUM_PAYMENT_CONSUMER_CONCURRENCY", 16)),
        )
