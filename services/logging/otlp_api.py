"""The OTLP/gRPC receiver: OpenTelemetry's LogsService, TraceService and MetricsService Export.

Its own gRPC server, apart from the search API's: no kit interceptors, so its calls are neither
traced nor access-logged (a traced ingest would export spans about exporting spans, forever).
It listens on loopback by default and, with a configured token, answers UNAUTHENTICATED to an
export without `authorization: Bearer <token>`. An export the buffer cannot take is refused
with UNAVAILABLE, which OTLP exporters retry with back-off (the OTLP specification's retryable
codes); the answer never waits on the document store.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable, Iterator

import grpc
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2, logs_service_pb2_grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from services.logging import mapping
from services.logging.handlers import Ingest

log = logging.getLogger("emporium.logging.otlp")


class _Receiver:
    def __init__(self, ingest: Ingest, namespace: str, token: str | None) -> None:
        self._ingest = ingest
        self._namespace = namespace
        self._expected = f"Bearer {token}".encode() if token else None

    async def _export(
        self,
        context: grpc.aio.ServicerContext,
        documents: Callable[[], Iterator[mapping.Document]],
    ) -> None:
        if self._expected is not None:
            sent = dict(context.invocation_metadata() or ()).get("authorization", "")
            sent_bytes = sent.encode() if isinstance(sent, str) else sent
            if not hmac.compare_digest(sent_bytes, self._expected):
                await context.abort(
                    grpc.StatusCode.UNAUTHENTICATED, "ingest needs its bearer token"
                )
        if not self._ingest.accept(documents()):
            await context.abort(
                grpc.StatusCode.UNAVAILABLE, "the logging service's buffer is full; retry later"
            )


class LogsReceiver(_Receiver, logs_service_pb2_grpc.LogsServiceServicer):
    async def Export(self, request, context):
        await self._export(context, lambda: mapping.log_documents(request, self._namespace))
        return logs_service_pb2.ExportLogsServiceResponse()


class TraceReceiver(_Receiver, trace_service_pb2_grpc.TraceServiceServicer):
    async def Export(self, request, context):
        await self._export(context, lambda: mapping.span_documents(request, self._namespace))
        return trace_service_pb2.ExportTraceServiceResponse()


class MetricsReceiver(_Receiver, metrics_service_pb2_grpc.MetricsServiceServicer):
    async def Export(self, request, context):
        await self._export(context, lambda: mapping.metric_documents(request, self._namespace))
        return metrics_service_pb2.ExportMetricsServiceResponse()


async def start(
    address: str, ingest: Ingest, namespace: str, token: str | None
) -> tuple[grpc.aio.Server, int]:
    """Starts the receiver on `address`; returns the server (stop it on shutdown) and port."""
    server = grpc.aio.server(
        options=[("grpc.max_receive_message_length", 16 * 1024 * 1024), ("grpc.so_reuseport", 0)]
    )
    logs_service_pb2_grpc.add_LogsServiceServicer_to_server(
        LogsReceiver(ingest, namespace, token), server
    )
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(
        TraceReceiver(ingest, namespace, token), server
    )
    metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(
        MetricsReceiver(ingest, namespace, token), server
    )
    port = server.add_insecure_port(address)
    if port == 0:
        raise OSError(f"cannot listen on {address}")
    await server.start()
    log.info("OTLP/gRPC receiver listening on %s", address)
    return server, port
