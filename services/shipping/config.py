"""The shipping service's settings: one frozen object built from the environment at start."""

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
    number,
    refuse_development_defaults,
    shop_currency,
    string,
)

NAME = "shipping"


@dataclass(frozen=True)
class Settings:
    """Everything the shipping service reads from its environment.

    EMPORIUM_SHIPPING_QUEUE                  its RabbitMQ queue ("shipping" plus
                                             EMPORIUM_KEYSPACE_SUFFIX, so a test's keyspace has
                                             a queue of its own)
    EMPORIUM_SHIPPING_CARRIERS               carrier codes served by the simulated carrier
                                             ("ups,dhl"); rates may only name these
    EMPORIUM_SHIPPING_CARRIER_STEP_SECONDS   seconds between the simulated carrier's steps
                                             (label created -> in transit -> out for delivery
                                             -> delivered; 5); 0 disables auto-advance
    EMPORIUM_SHIPPING_CARRIER_POLL_SECONDS   how often the carrier adapters are asked for
                                             progress (1)
    EMPORIUM_SHIPPING_SWEEP_SECONDS          how often unannounced changes are finished (5)
    EMPORIUM_SHIPPING_QUOTE_TTL_SECONDS      how long a quote is valid (1800)
    EMPORIUM_SHIPPING_SEED_RATES             "true" (default) seeds the default rate table when
                                             it is empty; "false" leaves it empty
    EMPORIUM_SHIPPING_WATCH_POLL_SECONDS     how often WatchShipment looks for changes made by
                                             other replicas (1)
    EMPORIUM_SHOP_CURRENCY                   the currency of the seeded rates (kit.config)
    EMPORIUM_USER_GRPC_HOST / _PORT          where the user service serves the JWK Set
    """

    server: ServerSettings
    telemetry: TelemetrySettings
    auth: AuthSettings
    cassandra: CassandraSettings
    rabbit: RabbitSettings
    user_address: str
    queue: str = NAME
    carriers: tuple[str, ...] = ("ups", "dhl")
    carrier_step_seconds: float = 5.0
    carrier_poll_seconds: float = 1.0
    sweep_seconds: float = 5.0
    quote_ttl_seconds: float = 1800.0
    seed_rates: bool = True
    watch_poll_seconds: float = 1.0
    currency: str = "USD"

    @classmethod
    def from_env(cls, env: Env = os.environ) -> Settings:
        refuse_development_defaults(env, ServerSettings, RabbitSettings, CassandraSettings)
        carriers = tuple(
            c.strip().lower()
            for c in string(env, "EMPORIUM_SHIPPING_CARRIERS", "ups,dhl").split(",")
            if c.strip()
        )
        step = number(env, "EMPORIUM_SHIPPING_CARRIER_STEP_SECONDS", 5.0)
        if step < 0:
            raise ConfigError("EMPORIUM_SHIPPING_CARRIER_STEP_SECONDS must not be negative")
        seed = string(env, "EMPORIUM_SHIPPING_SEED_RATES", "true").lower()
        if seed not in {"true", "false", "1", "0", "yes", "no"}:
            raise ConfigError("EMPORIUM_SHIPPING_SEED_RATES must be true or false")
        return cls(
            server=ServerSettings.from_env(NAME, env),
            telemetry=TelemetrySettings.from_env(NAME, env),
            auth=AuthSettings.from_env(env),
            cassandra=CassandraSettings.from_env("emporium_shipping", env),
            rabbit=RabbitSettings.from_env(env),
            user_address=ServerSettings.from_env("user", env).address,
            queue=string(
                env, "EMPORIUM_SHIPPING_QUEUE", NAME + string(env, "EMPORIUM_KEYSPACE_SUFFIX", "")
            ),
            carriers=carriers or ("ups", "dhl"),
            carrier_step_seconds=step,
            carrier_poll_seconds=max(
                0.05, number(env, "EMPORIUM_SHIPPING_CARRIER_POLL_SECONDS", 1.0)
            ),
            sweep_seconds=max(0.1, number(env, "EMPORIUM_SHIPPING_SWEEP_SECONDS", 5.0)),
            quote_ttl_seconds=number(env, "EMPORIUM_SHIPPING_QUOTE_TTL_SECONDS", 1800.0),
            seed_rates=seed in {"true", "1", "yes"},
            watch_poll_seconds=max(0.05, number(env, "EMPORIUM_SHIPPING_WATCH_POLL_SECONDS", 1.0)),
            currency=shop_currency(env),
        )
