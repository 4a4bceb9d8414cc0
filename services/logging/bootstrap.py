"""The one place that builds the logging service's adapters and wires them into the server."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any

from emporium.logging.v1 import logging_service_pb2, logging_service_pb2_grpc

from kit import auth
from kit.server import App
from services.logging import otlp_api
from services.logging.config import Settings
from services.logging.grpc_api import LoggingService
from services.logging.handlers import Ingest, SearchHandlers
from services.logging.ports import StoreUnavailable

SERVICE_NAME = logging_service_pb2.DESCRIPTOR.services_by_name["LoggingService"].full_name
# How often the service applies retention itself on a server without ILM or ISM.
RETENTION_INTERVAL_SECONDS = 300.0
log = logging.getLogger("emporium.logging")


async def build(settings: Settings, **overrides: Any) -> App:
    """The running service. Tests pass fakes by name: `sink=` (a DocumentSink), `search=` (a
    TelemetrySearch), `verifier=`, `clock=`.

    Without them the service uses OpenSearch for both, installs its templates, retention and
    data streams (retrying in the background while the store is down: ingest buffers
    meanwhile), and starts the OTLP receiver on settings.otlp_address.
    """
    closers: list[Any] = []
    background: list[Any] = []
    sink = overrides.get("sink")
    search = overrides.get("search")
    store = None
    if sink is None or search is None:
        from services.logging.adapters.opensearch import OpenSearchStore

        store = OpenSearchStore(
            settings.opensearch.url,
            namespace=settings.namespace,
            retention=timedelta(days=settings.retention_days),
            rollover=timedelta(hours=settings.rollover_hours),
        )
        closers.append(store.close)
        sink = sink or store
        search = search or store
    ingest = Ingest(
        sink,
        buffer_bytes=settings.buffer_bytes,
        batch_documents=settings.batch_documents,
        flush_seconds=settings.flush_seconds,
    )
    background.append(ingest.run)
    if store is not None:
        installed_store = store

        async def install_and_retain() -> None:
            while True:
                try:
                    await installed_store.install()
                    break
                except StoreUnavailable as exc:
                    log.warning("cannot install index templates yet (%s); retrying", exc)
                    await asyncio.sleep(2)
            while installed_store.lifecycle == "service":
                await asyncio.sleep(RETENTION_INTERVAL_SECONDS)
                try:
                    await installed_store.enforce_retention()
                except StoreUnavailable as exc:
                    log.warning("retention pass failed: %s", exc)

        background.append(install_and_retain)

    receiver, otlp_port = await otlp_api.start(
        settings.otlp_address, ingest, settings.namespace, settings.ingest_token
    )

    async def stop_receiver() -> None:
        await receiver.stop(2)
        await ingest.drain(seconds=5)

    closers.append(stop_receiver)
    verifier = overrides.get("verifier")
    if verifier is None:
        verifier, close_verifier = auth.user_service_verifier(settings.auth, settings.user.address)
        closers.append(close_verifier)

    async def close() -> None:
        for closer in reversed(closers):
            await closer()

    handlers = SearchHandlers(search, clock=overrides.get("clock"))
    app = App(
        servicers=[
            (
                logging_service_pb2_grpc.add_LoggingServiceServicer_to_server,
                LoggingService(handlers),
            )
        ],
        service_names=[SERVICE_NAME],
        background=background,
        close=close,
        verifier=verifier,
    )
    app.ingest = ingest  # type: ignore[attr-defined]
    app.store = store  # type: ignore[attr-defined]
    app.otlp_port = otlp_port  # type: ignore[attr-defined]
    return app
