"""The logging service's settings: one frozen object built from the environment at start."""

from __future__ import annotations

import os
from dataclasses import dataclass

from kit.config import (
    AuthSettings,
    ConfigError,
    Env,
    OpenSearchSettings,
    ServerSettings,
    TelemetrySettings,
    integer,
    number,
    refuse_development_defaults,
    string,
)

NAME = "logging"
# The standard OTLP/gRPC port; the local stack moves it with EMPORIUM_PORT_OFFSET.
OTLP_PORT = 4317


@dataclass(frozen=True)
class Settings:
    """Everything the logging service reads from its environment.

    EMPORIUM_OTLP_HOST / EMPORIUM_OTLP_PORT    where the OTLP/gRPC receiver listens
                                          (127.0.0.1:4317: only the platform reaches it)
    EMPORIUM_LOGGING_INGEST_TOKEN         if set, OTLP exporters must send
                                          `authorization: Bearer <token>`
    EMPORIUM_LOGGING_NAMESPACE            the data streams' namespace ("default")
    EMPORIUM_LOGGING_RETENTION_DAYS       how long documents are kept (7)
    EMPORIUM_LOGGING_ROLLOVER_HOURS       age at which a data stream starts a new backing
                                          index, the unit retention deletes (24)
    EMPORIUM_LOGGING_BATCH_DOCUMENTS      documents per `_bulk` request (1000)
    EMPORIUM_LOGGING_FLUSH_SECONDS        longest a document waits for a fuller batch (1)
    EMPORIUM_LOGGING_BUFFER_BYTES         accepted but not yet indexed documents kept in
                                          memory at most (64 MiB); beyond it OTLP exports are
                                          refused with UNAVAILABLE and the exporters retry
    EMPORIUM_OPENSEARCH_URL               the Elasticsearch-API server (kit.config)
    """

    server: ServerSettings
    telemetry: TelemetrySettings
    auth: AuthSettings
    opensearch: OpenSearchSettings
    user: ServerSettings
    otlp_host: str = "127.0.0.1"
    otlp_port: int = OTLP_PORT
    ingest_token: str | None = None
    namespace: str = "default"
    retention_days: float = 7.0
    rollover_hours: float = 24.0
    batch_documents: int = 1000
    flush_seconds: float = 1.0
    buffer_bytes: int = 64 * 1024 * 1024

    @classmethod
    def from_env(cls, env: Env = os.environ) -> Settings:
        refuse_development_defaults(env, ServerSettings)
        namespace = string(env, "EMPORIUM_LOGGING_NAMESPACE", "default")
        # Elastic's data stream naming rules: lowercase, no '-' (it separates the parts).
        if (
            not namespace.isascii()
            or not namespace.replace("_", "").isalnum()
            or (namespace != namespace.lower())
        ):
            raise ConfigError(
                f"EMPORIUM_LOGGING_NAMESPACE must be lowercase letters, digits or _, "
                f"got {namespace!r}"
            )
        settings = cls(
            server=ServerSettings.from_env(NAME, env),
            telemetry=TelemetrySettings.from_env(NAME, env),
            auth=AuthSettings.from_env(env),
            opensearch=OpenSearchSettings.from_env(env),
            user=ServerSettings.from_env("user", env),
            otlp_host=string(env, "EMPORIUM_OTLP_HOST", "127.0.0.1"),
            otlp_port=integer(env, "EMPORIUM_OTLP_PORT", OTLP_PORT),
            ingest_token=string(env, "EMPORIUM_LOGGING_INGEST_TOKEN", "") or None,
            namespace=namespace,
            retention_days=number(env, "EMPORIUM_LOGGING_RETENTION_DAYS", 7.0),
            rollover_hours=number(env, "EMPORIUM_LOGGING_ROLLOVER_HOURS", 24.0),
            batch_documents=integer(env, "EMPORIUM_LOGGING_BATCH_DOCUMENTS", 1000),
            flush_seconds=number(env, "EMPORIUM_LOGGING_FLUSH_SECONDS", 1.0),
            buffer_bytes=integer(env, "EMPORIUM_LOGGING_BUFFER_BYTES", 64 * 1024 * 1024),
        )
        if settings.retention_days <= 0:
            raise ConfigError("EMPORIUM_LOGGING_RETENTION_DAYS must be positive")
        if settings.batch_documents <= 0 or settings.buffer_bytes <= 0:
            raise ConfigError("batch and buffer sizes must be positive")
        return settings

    @property
    def otlp_address(self) -> str:
        return f"{self.otlp_host}:{self.otlp_port}"
