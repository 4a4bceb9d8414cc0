"""The one place that builds the file service's adapters and wires them into the server."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from emporium.file.v1 import file_service_pb2, file_service_pb2_grpc

from kit import auth
from kit.clock import SystemClock
from kit.server import App
from services.file.config import Settings
from services.file.grpc_api import FileService
from services.file.handlers import FileHandlers

SERVICE_NAME = file_service_pb2.DESCRIPTOR.services_by_name["FileService"].full_name
THUMBNAIL_WORKERS = 2
log = logging.getLogger("emporium.file")


async def build(settings: Settings, **overrides: Any) -> App:
    """The running service. Tests pass fakes by name: `files=`, `store=`, `clock=`,
    `verifier=` and `bus=` (a kit.bus.Bus; None for no relay).

    Without `files` the service keeps metadata in MongoDB and connects to RabbitMQ (unless
    `bus` is given) to relay its outbox under a lease; without `store` the bytes go to the S3
    endpoint of the settings. Thumbnail workers and the sweeper always run.
    """
    closers: list[Any] = []
    background: list[Any] = []
    files = overrides.get("files")
    bus = overrides.get("bus")
    lease = None
    if files is None:
        from kit import mongo
        from kit.outbox import MongoLease
        from services.file.adapters.mongo import MongoFileRepository

        db = mongo.connect(settings.mongo)
        closers.append(db.close)
        files = await MongoFileRepository.open(db)
        lease = MongoLease(db)
        if "bus" not in overrides:
            from kit.bus import Bus

            bus = await Bus.connect(settings.rabbit, source=settings.server.name)
            closers.append(bus.close)
            # It consumes nothing, but declares every queue: no event of its goes unbound.
            await bus.apply_topology()
    store = overrides.get("store")
    if store is None:
        from services.file.adapters.s3 import S3ObjectStore

        store = await S3ObjectStore.open(settings.s3)
    handlers = FileHandlers(
        files=files,
        store=store,
        clock=overrides.get("clock") or SystemClock(),
        limits=settings.limits,
    )
    if bus is not None:
        from kit.outbox import Relay

        background.append(Relay(files.outbox, bus, lease=lease).run)

    async def thumbnails() -> None:
        await handlers.thumbnail_worker(settings.sweep_seconds)

    background.extend([thumbnails] * THUMBNAIL_WORKERS)

    async def sweeper() -> None:
        while True:
            try:
                await handlers.sweep()
            except Exception as exc:  # the store or the database restarting: next round
                log.warning("file sweep failed: %s", exc)
            await asyncio.sleep(settings.sweep_seconds)

    background.append(sweeper)
    verifier = overrides.get("verifier")
    if verifier is None:
        verifier, close_verifier = auth.user_service_verifier(settings.auth, settings.user.address)
        closers.append(close_verifier)

    async def close() -> None:
        for closer in reversed(closers):
            await closer()

    app = App(
        servicers=[
            (file_service_pb2_grpc.add_FileServiceServicer_to_server, FileService(handlers))
        ],
        service_names=[SERVICE_NAME],
        background=background,
        close=close,
        verifier=verifier,
    )
    app.handlers = handlers  # type: ignore[attr-defined]
    return app
