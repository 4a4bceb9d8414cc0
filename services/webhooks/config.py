"""The webhooks service's settings: one frozen object built from the environment at start."""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass

from kit.config import (
    AuthSettings,
    ConfigError,
    Env,
    MongoSettings,
    RabbitSettings,
    ServerSettings,
    TelemetrySettings,
    integer,
    number,
    refuse_development_defaults,
    string,
)
from kit.ssrf import parse_networks
from services.webhooks.domain import DEFAULT_SCHEDULE

NAME = "webhooks"
# Development only (EMPORIUM_ENV=development): a fixed key, so secrets survive restarts.
_DEV_KEY = base64.urlsafe_b64encode(hashlib.sha256(b"emporium webhooks dev key").digest())


@dataclass(frozen=True)
class Settings:
    """Everything the webhooks service reads from its environment.

    EMPORIUM_WEBHOOKS_QUEUE                  its RabbitMQ queue ("webhooks")
    EMPORIUM_WEBHOOKS_ALLOWED_CIDRS          CIDRs the SSRF guard lets through although they are
                                             private/loopback ("": none). The local stack sets
                                             127.0.0.0/8 for its test receivers.
    EMPORIUM_WEBHOOKS_ALLOW_HTTP             "true" accepts http:// URLs (false: https only)
    EMPORIUM_WEBHOOKS_RETRY_SCHEDULE         seconds between attempts after the immediate first
                                             one ("5,300,1800,7200,18000,36000,36000")
    EMPORIUM_WEBHOOKS_RETRY_JITTER           each delay is scaled by 1 +- this (0.2)
    EMPORIUM_WEBHOOKS_ATTEMPT_TIMEOUT_SECONDS  per attempt, connect to last byte (15)
    EMPORIUM_WEBHOOKS_SUSPEND_AFTER_SECONDS  an endpoint failing this long is suspended (5 days)
    EMPORIUM_WEBHOOKS_MAX_ENDPOINTS          (50)
    EMPORIUM_WEBHOOKS_POOL_SIZE              attempts in flight, all endpoints (64)
    EMPORIUM_WEBHOOKS_PER_ENDPOINT           attempts in flight to one endpoint (8)
    EMPORIUM_WEBHOOKS_POLL_SECONDS           how often the dispatcher looks for due retries (1)
    EMPORIUM_WEBHOOKS_SECRET_OVERLAP_SECONDS default overlap of a rotated secret (86400)
    EMPORIUM_WEBHOOKS_RETENTION_DAYS         deliveries are kept this long (30)
    EMPORIUM_WEBHOOKS_SECRET_KEY             Fernet key (urlsafe base64 of 32 bytes) that
                                             encrypts signing secrets at rest; required in
                                             production
    """

    server: ServerSettings
    telemetry: TelemetrySettings
    auth: AuthSettings
    mongo: MongoSettings
    rabbit: RabbitSettings
    user: ServerSettings
    secret_key: bytes
    queue: str = NAME
    allowed_cidrs: str = ""
    allow_http: bool = False
    retry_schedule: tuple[float, ...] = DEFAULT_SCHEDULE
    retry_jitter: float = 0.2
    attempt_timeout_seconds: float = 15.0
    suspend_after_seconds: float = 5 * 86400.0
    max_endpoints: int = 50
    pool_size: int = 64
    per_endpoint: int = 8
    poll_seconds: float = 1.0
    secret_overlap_seconds: float = 86400.0
    retention_days: float = 30.0

    @classmethod
    def from_env(cls, env: Env = os.environ) -> Settings:
        refuse_development_defaults(env, ServerSettings, RabbitSettings)
        auth = AuthSettings.from_env(env)
        key = string(env, "EMPORIUM_WEBHOOKS_SECRET_KEY", "")
        if not key:
            if auth.production:
                raise ConfigError("EMPORIUM_WEBHOOKS_SECRET_KEY is required in production")
            key = _DEV_KEY.decode()
        raw_schedule = string(env, "EMPORIUM_WEBHOOKS_RETRY_SCHEDULE", "")
        try:
            schedule = (
                tuple(float(s) for s in raw_schedule.split(",") if s.strip())
                if raw_schedule
                else DEFAULT_SCHEDULE
            )
        except ValueError:
            raise ConfigError(f"EMPORIUM_WEBHOOKS_RETRY_SCHEDULE: bad {raw_schedule!r}") from None
        cidrs = string(env, "EMPORIUM_WEBHOOKS_ALLOWED_CIDRS", "")
        try:
            parse_networks(cidrs)
        except ValueError as exc:
            raise ConfigError(f"EMPORIUM_WEBHOOKS_ALLOWED_CIDRS: {exc}") from None
        return cls(
            server=ServerSettings.from_env(NAME, env),
            telemetry=TelemetrySettings.from_env(NAME, env),
            auth=auth,
            mongo=MongoSettings.from_env("emporium_webhooks", env),
            rabbit=RabbitSettings.from_env(env),
            user=ServerSettings.from_env("user", env),
            secret_key=key.encode(),
            queue=string(env, "EMPORIUM_WEBHOOKS_QUEUE", NAME),
            allowed_cidrs=cidrs,
            allow_http=string(env, "EMPORIUM_WEBHOOKS_ALLOW_HTTP", "false").lower() == "true",
            retry_schedule=schedule,
            retry_jitter=number(env, "EMPORIUM_WEBHOOKS_RETRY_JITTER", 0.2),
            attempt_timeout_seconds=number(env, "EMPORIUM_WEBHOOKS_ATTEMPT_TIMEOUT_SECONDS", 15.0),
            suspend_after_seconds=number(
                env, "EMPORIUM_WEBHOOKS_SUSPEND_AFTER_SECONDS", 5 * 86400.0
            ),
            max_endpoints=integer(env, "EMPORIUM_WEBHOOKS_MAX_ENDPOINTS", 50),
            pool_size=integer(env, "EMPORIUM_WEBHOOKS_POOL_SIZE", 64),
            per_endpoint=integer(env, "EMPORIUM_WEBHOOKS_PER_ENDPOINT", 8),
            poll_seconds=number(env, "EMPORIUM_WEBHOOKS_POLL_SECONDS", 1.0),
            secret_overlap_seconds=number(env, "EMPORIUM_WEBHOOKS_SECRET_OVERLAP_SECONDS", 86400.0),
            retention_days=number(env, "EMPORIUM_WEBHOOKS_RETENTION_DAYS", 30.0),
        )
