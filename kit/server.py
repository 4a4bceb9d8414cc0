"""gRPC server start-up shared by every service: health, reflection, interceptors, shutdown.

A service's `__main__` calls `run(settings, build)`: `build` (the service's bootstrap) returns an
`App` naming its servicers and background tasks (outbox relay, consumers). The server

- answers the gRPC health protocol (SERVING once started, NOT_SERVING while draining);
- serves reflection: its own services, or every service of the descriptor set when it is the
  gateway's reflection target (gateway/services.yaml), so grpcurl through Envoy lists them all;
- runs every call through the interceptors: access log, OpenTelemetry, domain errors -> status,
  authentication context, and a server-side deadline;
- on SIGTERM or SIGINT stops taking calls, lets in-flight ones finish for `grace_seconds`, then
  stops the background tasks and closes the adapters.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import grpc
import yaml
from google.protobuf import descriptor_pb2, descriptor_pool
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection, reflection_pb2, reflection_pb2_grpc
from grpc_status import rpc_status
from opentelemetry import metrics

from kit import auth, errors, paging, retry, telemetry
from kit.config import ROOT, SERVICES_YAML, ServerSettings

log = logging.getLogger("emporium.server")
access_log = logging.getLogger("emporium.access")
# RED metrics per RPC (rate and errors from the count by status, duration from the histogram);
# a no-op until kit.telemetry installs a meter provider.
_rpc_duration = metrics.get_meter("emporium.server").create_histogram(
    "rpc.server.duration", unit="ms", description="duration of each RPC served, by status"
)

DESCRIPTOR_SET = ROOT / "gen/descriptor/emporium.binpb"

# The longest a unary call may run when the client set no shorter deadline: a stuck dependency
# must not pin a request (and its memory) forever.
DEFAULT_MAX_CALL_SECONDS = 30.0

Registrar = Callable[[Any, grpc.aio.Server], None]


@dataclass
class App:
    """What a service's bootstrap hands the server: servicers, background work, clean-up."""

    # (add_XServicer_to_server, servicer) pairs, and the full names of the proto services.
    servicers: Sequence[tuple[Registrar, Any]]
    service_names: Sequence[str]
    # Long-running coroutines started after the server (outbox relay, event consumers).
    background: Sequence[Callable[[], Coroutine[Any, Any, None]]] = ()
    # Called last on shutdown (close sessions and connections).
    close: Callable[[], Awaitable[None]] | None = None
    # Verifies bearer tokens; None accepts no token (non-public methods answer UNAUTHENTICATED).
    verifier: auth.TokenVerifier | None = None
    background_tasks: list[asyncio.Task[None]] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------
# Interceptors. grpc.aio interceptors see handlers, not calls, so each one wraps the handler's
# behaviour function; `_wrap` does that once for the four call shapes.

Behaviour = Callable[..., Any]

# Where the auth interceptor leaves the verified caller for the access log, which runs further
# out and so cannot see `auth.CALLER` (reset when the auth scope ends).
_CALLER_SINK: ContextVar[list[auth.Principal | None] | None] = ContextVar(
    "emporium_caller_sink", default=None
)


def _wrap(
    handler: grpc.RpcMethodHandler | None,
    unary: Callable[[Behaviour], Behaviour],
    streaming: Callable[[Behaviour], Behaviour],
) -> grpc.RpcMethodHandler | None:
    """The same handler with its behaviour wrapped (`unary` for unary responses)."""
    if handler is None:
        return None
    if handler.unary_unary:
        return grpc.unary_unary_rpc_method_handler(
            unary(handler.unary_unary),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
    if handler.unary_stream:
        return grpc.unary_stream_rpc_method_handler(
            streaming(handler.unary_stream),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
    if handler.stream_unary:
        return grpc.stream_unary_rpc_method_handler(
            unary(handler.stream_unary),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
    return grpc.stream_stream_rpc_method_handler(
        streaming(handler.stream_stream),
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )


class _Interceptor(grpc.aio.ServerInterceptor):
    """Base: runs every call inside `scope` (one async context manager for all call shapes).

    Streaming handlers stay async generators (each message is yielded through the scope), as
    servicers and OpenTelemetry's interceptor expect.
    """

    @abc.abstractmethod
    def scope(
        self, method: str, context: grpc.aio.ServicerContext
    ) -> contextlib.AbstractAsyncContextManager[None]:
        """The context the call runs in (each interceptor's own behaviour)."""

    def applies(self, handler: grpc.RpcMethodHandler) -> bool:
        """Whether this interceptor wraps calls of this handler's shape."""
        return True

    async def intercept_service(self, continuation, handler_call_details):
        handler = await continuation(handler_call_details)
        if handler is None or not self.applies(handler):
            return handler
        method = handler_call_details.method

        def unary(behaviour: Behaviour) -> Behaviour:
            async def run(request, context):
                async with self.scope(method, context):
                    return await behaviour(request, context)

            return run

        def streaming(behaviour: Behaviour) -> Behaviour:
            async def run(request, context):
                async with self.scope(method, context):
                    async for message in behaviour(request, context):
                        yield message

            return run

        return _wrap(handler, unary, streaming)


async def _abort(context: grpc.aio.ServicerContext, status: Any) -> None:
    rich = rpc_status.to_status(status)
    await context.abort(rich.code, rich.details, rich.trailing_metadata)


class ErrorInterceptor(_Interceptor):
    """Domain errors become their status code with google.rpc details; anything else INTERNAL."""

    @contextlib.asynccontextmanager
    async def scope(self, method, context):
        try:
            yield
        except errors.DomainError as error:
            await _abort(context, error.to_status())
        except (asyncio.CancelledError, grpc.aio.AbortError, GeneratorExit):
            raise
        except NotImplementedError:
            # What the generated servicer base class raises for an RPC a service lacks.
            await context.abort(grpc.StatusCode.UNIMPLEMENTED, f"{method} is not implemented")
        except Exception:
            # The client gets no internals; the log gets the whole story.
            log.exception("unhandled error in %s", method)
            await _abort(context, errors.internal_status())


class DeadlineInterceptor(_Interceptor):
    """Bounds unary calls by the server's own limit when the client asked for longer or none."""

    def __init__(self, max_seconds: float = DEFAULT_MAX_CALL_SECONDS) -> None:
        self.max_seconds = max_seconds

    def applies(self, handler: grpc.RpcMethodHandler) -> bool:
        # Streams (Watch*) are live feeds and may last as long as the client wants.
        return not (handler.unary_stream or handler.stream_stream)

    @contextlib.asynccontextmanager
    async def scope(self, method, context):
        try:
            async with asyncio.timeout(self.max_seconds):
                yield
        except TimeoutError:
            raise errors.DomainError(
                f"{method} took longer than {self.max_seconds:g} s", reason="DEADLINE_EXCEEDED"
            ) from None


class AuthInterceptor(_Interceptor):
    """Verifies the bearer token against each method's declared access and sets the caller."""

    def __init__(self, verifier: auth.TokenVerifier | None) -> None:
        self.verifier = verifier

    @contextlib.asynccontextmanager
    async def scope(self, method, context):
        principal = await auth.authorize(
            method, dict(context.invocation_metadata() or ()), self.verifier
        )
        sink = _CALLER_SINK.get()
        if sink is not None:
            sink[0] = principal
        token = auth.CALLER.set(principal)
        try:
            yield
        finally:
            auth.CALLER.reset(token)


class AccessLogInterceptor(_Interceptor):
    """One log line per call: method, status, duration, caller."""

    @contextlib.asynccontextmanager
    async def scope(self, method, context):
        started = time.perf_counter()
        code: Any = grpc.StatusCode.OK
        # The caller is known only once the auth interceptor (further in) has run.
        caller: list[auth.Principal | None] = [None]
        token = _CALLER_SINK.set(caller)
        try:
            yield
        except errors.DomainError as error:
            code = error.code
            raise
        except grpc.aio.AbortError:
            code = context.code() or grpc.StatusCode.UNKNOWN
            raise
        except asyncio.CancelledError:
            code = grpc.StatusCode.CANCELLED
            raise
        except Exception:
            code = grpc.StatusCode.INTERNAL
            raise
        finally:
            _CALLER_SINK.reset(token)
            elapsed_ms = (time.perf_counter() - started) * 1000
            status = code.name if isinstance(code, grpc.StatusCode) else str(code)
            if telemetry.exporting():
                _rpc_duration.record(elapsed_ms, {"rpc.method": method, "rpc.grpc.status": status})
            access_log.info(
                "%s %s %.1fms user=%s peer=%s",
                method,
                status,
                elapsed_ms,
                caller[0].user_id if caller[0] else "-",
                context.peer(),
            )


def interceptors(verifier: auth.TokenVerifier | None) -> list[grpc.aio.ServerInterceptor]:
    """The chain, outermost first: trace, log what the client saw, map errors, then auth."""
    from opentelemetry.instrumentation.grpc import aio_server_interceptor

    # Tracing is outermost so that the access log line carries the call's trace id; without an
    # SDK tracer (no exporter) there is no tracing interceptor at all: no per-call cost.
    tracing = [aio_server_interceptor()] if telemetry.tracing() else []
    return [
        *tracing,
        AccessLogInterceptor(),
        ErrorInterceptor(),
        DeadlineInterceptor(),
        AuthInterceptor(verifier),
    ]


# ---------------------------------------------------------------------------------------------
# Reflection.


@cache
def full_descriptor_pool() -> descriptor_pool.DescriptorPool:
    """Every Emporium file (gen/descriptor) plus the health service, for reflection."""
    pool = descriptor_pool.DescriptorPool()
    files = descriptor_pb2.FileDescriptorSet.FromString(DESCRIPTOR_SET.read_bytes()).file
    known = {f.name for f in files}
    for proto in files:
        pool.Add(proto)
    for extra in (health_pb2.DESCRIPTOR, reflection_pb2.DESCRIPTOR):
        if extra.name not in known:
            proto = descriptor_pb2.FileDescriptorProto()
            extra.CopyToProto(proto)
            pool.Add(proto)
    return pool


@cache
def _gateway_reflection_target() -> str:
    return yaml.safe_load(SERVICES_YAML.read_text())["gateway"]["reflection_service"]


def _all_proto_services() -> list[str]:
    doc = yaml.safe_load(SERVICES_YAML.read_text())
    return [svc["proto_service"] for svc in doc["services"].values()]


class MethodAwareReflection(reflection.aio.ReflectionServicer):
    """grpcio's reflection, answering for method symbols too (grpc/grpc#34743).

    `grpcurl describe pkg.Service.Method` asks for the file containing the method's symbol;
    protobuf's Python DescriptorPool.FindFileContainingSymbol finds messages, enums, services
    and fields but not methods, so grpcio answers NOT_FOUND. A method lives in its service's
    file: when the pool does not know the symbol and its parent is a service with a method of
    that name, answer for the service. General to any grpcio server; worth proposing upstream.
    """

    def _file_containing_symbol(
        self, request: reflection_pb2.ServerReflectionRequest, fully_qualified_name: str
    ) -> reflection_pb2.ServerReflectionResponse:
        parent, _, method = fully_qualified_name.rpartition(".")
        try:
            self._pool.FindFileContainingSymbol(fully_qualified_name)
        except KeyError:
            with contextlib.suppress(KeyError):
                if method in self._pool.FindServiceByName(parent).methods_by_name:
                    return super()._file_containing_symbol(request, parent)
        return super()._file_containing_symbol(request, fully_qualified_name)


def reflected_services(settings: ServerSettings, own: Iterable[str]) -> list[str]:
    """What reflection lists: everything for the gateway's reflection target, else our own."""
    names = list(own)
    if settings.name == _gateway_reflection_target():
        names = [*_all_proto_services(), *(n for n in names if n not in _all_proto_services())]
    return [*names, health.SERVICE_NAME, reflection.SERVICE_NAME]


# ---------------------------------------------------------------------------------------------
# Start-up and shutdown.


async def start(settings: ServerSettings, app: App) -> tuple[grpc.aio.Server, int, Any]:
    """Builds and starts the server; returns it, the bound port and the health servicer."""
    tokens = settings.page_tokens
    paging.use_keys(
        tokens.key.get_secret_value().encode(),
        [k.get_secret_value().encode() for k in tokens.previous_keys],
    )
    options = [
        ("grpc.max_receive_message_length", settings.max_message_bytes),
        ("grpc.max_send_message_length", settings.max_message_bytes),
        ("grpc.so_reuseport", 0),
        # Envoy pings its upstream connections every 30 s (gateway/render.py), idle or not.
        # grpc's defaults take pings on a connection without calls as abuse and, after two,
        # send GOAWAY "too_many_pings", which Envoy turns into a 503 for the next request.
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.min_recv_ping_interval_without_data_ms", 10_000),
    ]
    server = grpc.aio.server(interceptors=interceptors(app.verifier), options=options)
    for add, servicer in app.servicers:
        add(servicer, server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection_pb2_grpc.add_ServerReflectionServicer_to_server(
        MethodAwareReflection(
            reflected_services(settings, app.service_names), pool=full_descriptor_pool()
        ),
        server,
    )
    port = server.add_insecure_port(settings.address)
    if port == 0:
        raise OSError(f"cannot listen on {settings.address}")
    await server.start()
    for name in ("", *app.service_names):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    return server, port, health_servicer


async def serve(settings: ServerSettings, app: App, stop: asyncio.Event) -> None:
    """Serves until `stop` is set, then drains calls and stops background work."""
    server, port, health_servicer = await start(settings, app)
    log.info("%s listening on %s:%d", settings.name, settings.host, port)
    for work in app.background:
        app.background_tasks.append(asyncio.create_task(_supervised(work), name=work.__name__))
    try:
        await stop.wait()
    finally:
        log.info("%s stopping (grace %.0f s)", settings.name, settings.grace_seconds)
        await health_servicer.enter_graceful_shutdown()
        await server.stop(settings.grace_seconds)
        for task in app.background_tasks:
            task.cancel()
        await asyncio.gather(*app.background_tasks, return_exceptions=True)
        if app.close is not None:
            await app.close()
        log.info("%s stopped", settings.name)


async def _supervised(work: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Runs a background coroutine; a crash is logged and restarted after a pause."""
    async for attempt in retry.until_done(f"background task {work.__name__}"):
        with attempt:
            await work()


def run(settings: ServerSettings, build: Callable[[], Awaitable[App]]) -> None:
    """The whole life of a service process: build, serve, stop on SIGTERM or SIGINT."""

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        app = await build()
        await serve(settings, app, stop)

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
