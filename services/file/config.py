"""The file service's settings: one frozen object built from the environment at start."""

from __future__ import annotations

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

NAME = "file"
MIB = 1024 * 1024


@dataclass(frozen=True)
class S3Settings:
    """The S3-compatible object store that keeps the bytes (versitygw locally).

    EMPORIUM_S3_ENDPOINT      the store's address ("http://127.0.0.1:7070"); any S3 endpoint
    EMPORIUM_S3_REGION        the region requests are signed for ("us-east-1")
    EMPORIUM_S3_ACCESS_KEY / EMPORIUM_S3_SECRET_KEY   the service's keys (required; the local
                              stack passes versitygw's development pair)
    EMPORIUM_S3_BUCKET        the bucket ("emporium-files"), created at start if missing
    EMPORIUM_S3_PUBLIC_URL    where clients read public objects (default: endpoint/bucket); a
                              CDN in front of the bucket in production
    EMPORIUM_S3_CLIENT_ENDPOINT  where clients reach the store with signed URLs and forms
                              (default: the endpoint). A signed URL carries its host, so a
                              service that talks to the store by an internal name (Compose,
                              Kubernetes) signs for the name clients use.
    """

    endpoint: str = "http://127.0.0.1:7070"
    region: str = "us-east-1"
    access_key: str = ""
    secret_key: str = ""
    bucket: str = "emporium-files"
    public_url: str = ""
    client_endpoint: str = ""

    @classmethod
    def from_env(cls, env: Env = os.environ) -> S3Settings:
        endpoint = string(env, "EMPORIUM_S3_ENDPOINT", cls.endpoint).rstrip("/")
        bucket = string(env, "EMPORIUM_S3_BUCKET", cls.bucket)
        access_key = string(env, "EMPORIUM_S3_ACCESS_KEY", "")
        secret_key = string(env, "EMPORIUM_S3_SECRET_KEY", "")
        if not access_key or not secret_key:
            raise ConfigError("EMPORIUM_S3_ACCESS_KEY and EMPORIUM_S3_SECRET_KEY are required")
        return cls(
            endpoint=endpoint,
            region=string(env, "EMPORIUM_S3_REGION", cls.region),
            access_key=access_key,
            secret_key=secret_key,
            bucket=bucket,
            public_url=string(env, "EMPORIUM_S3_PUBLIC_URL", f"{endpoint}/{bucket}").rstrip("/"),
            client_endpoint=string(env, "EMPORIUM_S3_CLIENT_ENDPOINT", endpoint).rstrip("/"),
        )


@dataclass(frozen=True)
class Limits:
    """What one file and one user may take.

    EMPORIUM_FILE_MAX_BYTES             largest file (10 MiB)
    EMPORIUM_FILE_QUOTA_BYTES           storage per user, uploads in flight included (100 MiB)
    EMPORIUM_FILE_MAX_IMAGE_PIXELS      largest image, width x height x frames (40 million):
                                        beyond it a small file is a decompression bomb
    EMPORIUM_FILE_UPLOAD_TTL_SECONDS    how long a signed upload form works (900)
    EMPORIUM_FILE_THUMBNAIL_SIZES       comma-separated thumbnail boxes in pixels ("128,256,512")
    """

    max_bytes: int = 10 * MIB
    quota_bytes: int = 100 * MIB
    max_image_pixels: int = 40_000_000
    upload_ttl_seconds: int = 900
    thumbnail_sizes: tuple[int, ...] = (128, 256, 512)

    @classmethod
    def from_env(cls, env: Env = os.environ) -> Limits:
        raw_sizes = string(env, "EMPORIUM_FILE_THUMBNAIL_SIZES", "128,256,512")
        try:
            sizes = tuple(sorted(int(s) for s in raw_sizes.split(",") if s.strip()))
        except ValueError:
            raise ConfigError(f"EMPORIUM_FILE_THUMBNAIL_SIZES: bad list {raw_sizes!r}") from None
        return cls(
            max_bytes=integer(env, "EMPORIUM_FILE_MAX_BYTES", cls.max_bytes),
            quota_bytes=integer(env, "EMPORIUM_FILE_QUOTA_BYTES", cls.quota_bytes),
            max_image_pixels=integer(env, "EMPORIUM_FILE_MAX_IMAGE_PIXELS", cls.max_image_pixels),
            upload_ttl_seconds=integer(
                env, "EMPORIUM_FILE_UPLOAD_TTL_SECONDS", cls.upload_ttl_seconds
            ),
            thumbnail_sizes=sizes,
        )


@dataclass(frozen=True)
class Settings:
    """Everything the file service reads from its environment (see S3Settings, Limits).

    EMPORIUM_FILE_SWEEP_SECONDS    how often abandoned uploads and deleted files are cleaned
                                   up, and stalled thumbnail work is picked up again (10)
    """

    server: ServerSettings
    telemetry: TelemetrySettings
    auth: AuthSettings
    mongo: MongoSettings
    rabbit: RabbitSettings
    user: ServerSettings
    s3: S3Settings
    limits: Limits
    sweep_seconds: float = 10.0

    @classmethod
    def from_env(cls, env: Env = os.environ) -> Settings:
        refuse_development_defaults(env, ServerSettings, RabbitSettings)
        return cls(
            server=ServerSettings.from_env(NAME, env),
            telemetry=TelemetrySettings.from_env(NAME, env),
            auth=AuthSettings.from_env(env),
            mongo=MongoSettings.from_env("emporium_file", env),
            rabbit=RabbitSettings.from_env(env),
            user=ServerSettings.from_env("user", env),
            s3=S3Settings.from_env(env),
            limits=Limits.from_env(env),
            sweep_seconds=number(env, "EMPORIUM_FILE_SWEEP_SECONDS", 10.0),
        )
