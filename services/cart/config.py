"""The cart service's settings: one frozen object built from the environment at start."""

from __future__ import annotations

import os
from dataclasses import dataclass

from kit.config import (
    AuthSettings,
    ConfigError,
    Env,
    RabbitSettings,
    RedisSettings,
    ServerSettings,
    TelemetrySettings,
    integer,
    number,
    refuse_development_defaults,
    shop_currency,
    string,
)

NAME = "cart"

DEFAULT_TTL_SECONDS = 30 * 24 * 3600


@dataclass(frozen=True)
class Settings:
    """Everything the cart service reads from its environment.

    EMPORIUM_CART_TTL_SECONDS        a cart not changed for this long is deleted (30 days)
    EMPORIUM_CART_KEY_PREFIX         prefix of every Redis key the service writes
                                     ("emporium:cart:"); tests use a random one
    EMPORIUM_CART_QUEUE              the service's RabbitMQ queue ("cart")
    EMPORIUM_SHOP_CURRENCY           the shop's currency (kit.config, "USD"): an empty cart's
                                     subtotal; products in another currency cannot be added
    EMPORIUM_CART_CATALOG_TIMEOUT_SECONDS   deadline of each call to the catalog (2)
    The catalog and user services are found where they listen (EMPORIUM_CATALOG_GRPC_HOST /
    _PORT, EMPORIUM_USER_GRPC_HOST / _PORT, defaults from gateway/services.yaml).
    """

    server: ServerSettings
    telemetry: TelemetrySettings
    auth: AuthSettings
    redis: RedisSettings
    rabbit: RabbitSettings
    catalog: ServerSettings
    user: ServerSettings
    ttl_seconds: int = DEFAULT_TTL_SECONDS
    key_prefix: str = "emporium:cart:"
    queue: str = NAME
    shop_currency: str = "USD"
    catalog_timeout_seconds: float = 2.0

    @classmethod
    def from_env(cls, env: Env = os.environ) -> Settings:
        refuse_development_defaults(env, ServerSettings, RabbitSettings)
        ttl = integer(env, "EMPORIUM_CART_TTL_SECONDS", DEFAULT_TTL_SECONDS)
        if ttl < 1:
            raise ConfigError("EMPORIUM_CART_TTL_SECONDS must be at least 1")
        currency = shop_currency(env)
        return cls(
            server=ServerSettings.from_env(NAME, env),
            telemetry=TelemetrySettings.from_env(NAME, env),
            auth=AuthSettings.from_env(env),
            redis=RedisSettings.from_env(env),
            rabbit=RabbitSettings.from_env(env),
            catalog=ServerSettings.from_env("catalog", env),
            user=ServerSettings.from_env("user", env),
            ttl_seconds=ttl,
            key_prefix=string(env, "EMPORIUM_CART_KEY_PREFIX", "emporium:cart:"),
            queue=string(env, "EMPORIUM_CART_QUEUE", NAME),
            shop_currency=currency,
            catalog_timeout_seconds=number(env, "EMPORIUM_CART_CATALOG_TIMEOUT_SECONDS", 2.0),
        )
