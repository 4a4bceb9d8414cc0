"""The edge bench (issue 18): what a call costs, from a bare gRPC server to GetProduct via Envoy.

    make bench-edge          (the stack with user, catalog, logging and the gateway; see Makefile)
    uv run --frozen python -m bench.edge [--seconds 8] [--concurrency 32] [--connections 16]
        [--workers 1,2]

Needs the stack running with the caller's environment (`infra/local/stack env`) and the load
generators `make bench-tools` installs: ghz (gRPC) and wrk (HTTP). In one run it

1. starts a bare grpc.aio server of its own whose GetProduct returns an empty Product (no
   interceptors, no telemetry: the ceiling of one Python process), and the kit's server
   (kit.server: interceptors, health, reflection) with a no-op catalog servicer;
2. starts catalog replicas of its own against the stack's Cassandra and Redis: one exporting
   nothing (cached, cached with a token, uncached; once per `--workers` count), one keeping no
   products in memory (each cached read a Redis round trip), one exporting traces, logs and
   metrics to the stack's logging service at the production sampling ratio
   (`EMPORIUM_TRACE_SAMPLE_RATIO` unset);
3. drives the stack's own catalog directly and through Envoy over gRPC (ghz) and over REST
   (wrk), cached;

each for `--seconds` with `--concurrency` calls in flight, one case after the other, and prints
one table (req/s, p50, p99 and the rate relative to the bare server), then the summary line

    edge: cached/bare=X uncached/bare=X envoy-grpc/direct=X rest/grpc=X token-cost=X
    tracing-kept=X

(token-cost: how much more a cached read costs with a token than without, 0.10 = 10 % slower;
tracing-kept: the traced replica's rate over the untraced one's), and the load average. The
load generators share the machine's cores with the servers: compare runs of one machine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import grpc
import httpx
from grpc_health.v1 import health_pb2, health_pb2_grpc

ROOT = Path(__file__).resolve().parents[1]
PROTOSET = ROOT / "gen/descriptor/emporium.binpb"
GET_PRODUCT = "emporium.catalog.v1.CatalogService.GetProduct"
ADMIN = {"email": "admin@example.com", "password": "emporium-admin-dev"}
# The versions `make bench-tools` installs (Makefile: GHZ_VERSION).
GHZ_VERSION = "v0.120.0"


# ---------------------------------------------------------------------------------------------
# The two reference servers (run as child processes: `python -m bench.edge serve bare|kit PORT`).


async def _serve_bare(port: int) -> None:
    """grpc.aio with one generic handler: GetProduct answers an empty Product, nothing else."""

    async def get_product(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        return b""

    handler = grpc.method_handlers_generic_handler(
        "emporium.catalog.v1.CatalogService",
        {"GetProduct": grpc.unary_unary_rpc_method_handler(get_product)},
    )
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((handler,))
    # For the bench's start-up check only.
    health_pb2_grpc.add_HealthServicer_to_server(_AlwaysServing(), server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await server.wait_for_termination()


class _AlwaysServing(health_pb2_grpc.HealthServicer):
    async def Check(self, request, context):
        return health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING)


def _serve_kit(port: int) -> None:
    """kit.server with a catalog servicer whose GetProduct answers an empty Product (its id the
    worker's pid); EMPORIUM_WORKERS workers (1 by default)."""
    from emporium.catalog.v1 import catalog_service_pb2_grpc, product_pb2

    from kit import server, telemetry
    from kit.config import ServerSettings, TelemetrySettings

    class NoOp(catalog_service_pb2_grpc.CatalogServiceServicer):
        async def GetProduct(self, request, context):
            return product_pb2.Product(id=str(os.getpid()))

    async def build() -> server.App:
        return server.App(
            servicers=[(catalog_service_pb2_grpc.add_CatalogServiceServicer_to_server, NoOp())],
            service_names=["emporium.catalog.v1.CatalogService"],
        )

    telemetry.setup(TelemetrySettings(service_name="bench-kit"))
    index = os.environ.get("EMPORIUM_WORKER_INDEX")
    settings = ServerSettings(
        name="bench-kit",
        port=port,
        workers=int(os.environ.get("EMPORIUM_WORKERS") or 1),
        worker_index=int(index) if index else None,
        # As in production (kit.config: 0.1 unless EMPORIUM_ACCESS_LOG_SAMPLE says otherwise).
        access_log_sample=float(os.environ.get("BENCH_ACCESS_LOG_SAMPLE") or 0.1),
    )
    server.run(settings, build)


# ---------------------------------------------------------------------------------------------
# Load generators.


@dataclass
class Row:
    name: str
    rate: float
    p50_ms: float
    p99_ms: float
    errors: int


def _tool(name: str) -> str:
    """A load generator: .tools/<name>-<version>/<name> (make bench-tools), else PATH."""
    local = ROOT / ".tools" / f"ghz-{GHZ_VERSION}" / "ghz" if name == "ghz" else None
    if local is not None and local.exists():
        return str(local)
    found = shutil.which(name)
    if found is None:
        raise SystemExit(f"{name} is missing: run `make bench-tools`")
    return found


async def _run(*argv: str) -> str:
    process = await asyncio.create_subprocess_exec(
        *argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    out, err = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed ({process.returncode}): {err.decode()[-2000:]}")
    return out.decode()


async def ghz(
    name: str,
    address: str,
    ids: list[str],
    *,
    metadata: dict[str, str] | None,
    seconds: float,
    concurrency: int,
    connections: int,
) -> Row:
    """Drives GetProduct (ids round-robin) with ghz; latencies from its distribution."""
    out = await _run(
        _tool("ghz"),
        "--insecure",
        "--protoset",
        str(PROTOSET),
        "--call",
        GET_PRODUCT,
        "--data",
        json.dumps([{"id": i} for i in ids]),
        *(["--metadata", json.dumps(metadata)] if metadata else []),
        "--concurrency",
        str(concurrency),
        "--connections",
        str(connections),
        "--duration",
        f"{seconds:g}s",
        "--timeout",
        "20s",
        "--format",
        "json",
        address,
    )
    return parse_ghz(name, json.loads(out))


def parse_ghz(name: str, report: dict) -> Row:
    """A row from ghz's JSON report: the rate of OK calls, p50 and p99 of its distribution."""
    percentiles = {p["percentage"]: p["latency"] / 1e6 for p in report["latencyDistribution"]}
    # ghz closes its connections when the time is up: the calls in flight then fail with "use
    # of closed network connection"; they are the end of the run, not errors of the server.
    errors = sum(
        n
        for message, n in (report.get("errorDistribution") or {}).items()
        if "closed network connection" not in message
    )
    ok = (report.get("statusCodeDistribution") or {}).get("OK", 0)
    return Row(name, ok / (report["total"] / 1e9), percentiles[50], percentiles[99], errors)


_WRK_SCRIPT = """
local ids = {%s}
local i = 0
request = function()
  i = i %% #ids + 1
  return wrk.format("GET", "/v1/products/" .. ids[i])
end
"""
_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(value) * _UNITS[unit]


async def wrk(
    name: str,
    url: str,
    ids: list[str],
    *,
    headers: dict[str, str] | None,
    seconds: float,
    concurrency: int,
    threads: int = 2,
) -> Row:
    """Drives GET /v1/products/{id} (ids round-robin) with wrk, from its latency distribution."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
        script.write(_WRK_SCRIPT % ", ".join(json.dumps(i) for i in ids))
        script.flush()
        out = await _run(
            _tool("wrk"),
            f"-t{threads}",
            f"-c{concurrency}",
            f"-d{seconds:g}s",
            "--latency",
            "--timeout",
            "20s",
            "-s",
            script.name,
            *[a for k, v in (headers or {}).items() for a in ("-H", f"{k}: {v}")],
            url,
        )
    return parse_wrk(name, out)


def parse_wrk(name: str, out: str) -> Row:
    """A row from wrk's text report (with --latency): 2xx rate, p50 and p99."""
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    elapsed = re.search(r"requests in ([\d.]+\w+),", out).group(1)
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)", out)
    errors = int(bad.group(1)) if bad else 0
    if socket_errors:
        errors += sum(int(n) for n in re.findall(r"\d+", socket_errors.group(1)))
    return Row(
        name,
        (requests - errors) / (_ms(elapsed) / 1000),
        # Anchored: a Thread Stats share such as "68.50%" also ends in "50%".
        _ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1)),
        _ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1)),
        errors,
    )


# ---------------------------------------------------------------------------------------------
# The servers under test.


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def _wait_serving(address: str, process: asyncio.subprocess.Process) -> None:
    async with grpc.aio.insecure_channel(address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        deadline = time.monotonic() + 120
        while True:
            with contextlib.suppress(grpc.aio.AioRpcError):
                reply = await health.Check(health_pb2.HealthCheckRequest(), timeout=2)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            if process.returncode is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the server on {address} did not start")
            await asyncio.sleep(0.3)


@contextlib.asynccontextmanager
async def _process(argv: list[str], env: dict[str, str], port: int):
    """A server child process, up (health SERVING) while the block runs, stopped after."""
    process = await asyncio.create_subprocess_exec(
        *argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    address = f"127.0.0.1:{port}"
    try:
        await _wait_serving(address, process)
        yield address
    finally:
        if process.returncode is None:
            process.terminate()
        try:
            await asyncio.wait_for(process.wait(), 30)
        except TimeoutError:
            process.kill()
            await process.wait()


def reference_server(kind: str):
    port = _free_port()
    argv = [sys.executable, "-m", "bench.edge", "serve", kind, str(port)]
    return _process(argv, dict(os.environ), port)


def catalog_replica(*, tracing: bool, workers: int | None = None, copies: bool = True):
    """A catalog process of our own on the stack's stores; tracing at the production ratio;
    without `copies`, no products kept in memory (every cached read asks Redis)."""
    port = _free_port()
    env = {**os.environ, "EMPORIUM_CATALOG_GRPC_PORT": str(port)}
    if not copies:
        env["EMPORIUM_CATALOG_CACHE_LOCAL_SIZE"] = "0"
    # Production's sampling of traces and access log lines, not the local stack's 1.0.
    env.pop("EMPORIUM_TRACE_SAMPLE_RATIO", None)
    env.pop("EMPORIUM_ACCESS_LOG_SAMPLE", None)
    if not tracing:
        env["EMPORIUM_OTLP_ENDPOINT"] = ""
    if workers is not None:
        env["EMPORIUM_WORKERS"] = str(workers)
    return _process([sys.executable, "-m", "services.catalog"], env, port)


# ---------------------------------------------------------------------------------------------


async def _products(gateway: str, count: int) -> tuple[list[str], str]:
    """`count` active products made through the gateway, and an admin access token."""
    async with httpx.AsyncClient(base_url=f"http://{gateway}", timeout=30) as http:
        login = await http.post("/v1/auth:login", json=ADMIN)
        login.raise_for_status()
        token = login.json()["access_token"]
        word = secrets.token_hex(4)
        ids = []
        for i in range(count):
            created = await http.post(
                "/v1/products",
                params={"request_id": str(uuid.uuid4())},
                json={
                    "sku": f"BENCH-EDGE-{word}-{i}",
                    "title": f"Bench {word} {i}",
                    "price": {"currency_code": "USD", "units": str(10 + i)},
                    "state": "STATE_ACTIVE",
                },
                headers={"authorization": f"Bearer {token}"},
            )
            created.raise_for_status()
            ids.append(created.json()["id"])
        return ids, token


def _ratio(a: float, b: float) -> float:
    return a / b if b else 0.0


async def main(args: argparse.Namespace) -> None:
    env = os.environ
    gateway = f"127.0.0.1:{env.get('EMPORIUM_GATEWAY_PORT', '8080')}"
    stack_catalog = f"127.0.0.1:{env.get('EMPORIUM_CATALOG_GRPC_PORT', '50052')}"
    ids, token = await _products(gateway, args.products)
    bearer = {"authorization": f"Bearer {token}"}
    load = {
        "seconds": args.seconds,
        "concurrency": args.concurrency,
        "connections": args.connections,
    }
    rows: dict[str, Row] = {}

    async def grpc_case(key: str, name: str, address: str, metadata=None) -> None:
        # One short warm-up (connections, cache fill), then the measured run.
        await ghz(name, address, ids, metadata=metadata, **{**load, "seconds": 1})
        rows[key] = await ghz(name, address, ids, metadata=metadata, **load)
        print(_row(rows[key], rows.get("bare")), flush=True)

    print(
        f"edge bench: {args.seconds:g} s per case, {args.concurrency} calls in flight over "
        f"{args.connections} connections (ghz) / {args.concurrency} connections (wrk), "
        f"{len(ids)} products round-robin"
    )
    print(HEADER)
    async with reference_server("bare") as address:
        await grpc_case("bare", "bare grpc.aio no-op", address)
    async with reference_server("kit") as address:
        await grpc_case("kit", "kit server no-op", address)
    for workers in args.workers:
        suffix = "" if workers == args.workers[0] else f" ({workers} workers)"
        key = "" if workers == args.workers[0] else f"@{workers}"
        async with catalog_replica(tracing=False, workers=workers) as address:
            await grpc_case(f"cached{key}", f"GetProduct cached{suffix}", address)
            if key:
                continue
            await grpc_case("token", "GetProduct cached + token", address, bearer)
            await grpc_case(
                "uncached",
                "GetProduct uncached",
                address,
                {**bearer, "cache-control": "no-cache"},
            )
    async with catalog_replica(tracing=False, workers=args.workers[0], copies=False) as address:
        await grpc_case("redis", "GetProduct cached, Redis only", address)
    async with catalog_replica(tracing=True, workers=args.workers[0]) as address:
        await grpc_case("traced", "GetProduct cached, traced", address)
    await grpc_case("stack", "stack catalog direct", stack_catalog)
    await grpc_case("envoy", "via Envoy, gRPC", gateway)
    await rest_case(rows, gateway, ids, args)

    r = {k: v.rate for k, v in rows.items()}
    token_cost = _ratio(r["cached"], r["token"]) - 1
    print(
        f"edge: cached/bare={_ratio(r['cached'], r['bare']):.2f} "
        f"uncached/bare={_ratio(r['uncached'], r['bare']):.2f} "
        f"envoy-grpc/direct={_ratio(r['envoy'], r['stack']):.2f} "
        f"rest/grpc={_ratio(r['rest'], r['envoy']):.2f} "
        f"token-cost={token_cost:.2f} "
        f"tracing-kept={_ratio(r['traced'], r['cached']):.2f}"
    )
    print(f"copies: memory/redis-only cached={_ratio(r['cached'], r['redis']):.2f}")
    for workers in args.workers[1:]:
        print(
            f"workers: {workers}/{args.workers[0]} cached="
            f"{_ratio(r[f'cached@{workers}'], r['cached']):.2f}"
        )
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


async def rest_case(rows: dict[str, Row], gateway: str, ids: list[str], args) -> None:
    """The REST case (wrk), after a short warm-up."""
    url = f"http://{gateway}"
    await wrk("warm-up", url, ids, headers=None, seconds=1, concurrency=args.concurrency)
    rows["rest"] = await wrk(
        "via Envoy, REST (wrk)",
        url,
        ids,
        headers=None,
        seconds=args.seconds,
        concurrency=args.concurrency,
    )
    print(_row(rows["rest"], rows.get("bare")), flush=True)


HEADER = f"{'case':<32} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} {'/bare':>6}"


def _row(row: Row, bare: Row | None) -> str:
    share = f"{row.rate / bare.rate:.2f}" if bare else "1.00"
    return (
        f"{row.name:<32} {row.rate:>8.0f} {row.p50_ms:>8.1f} {row.p99_ms:>8.1f} "
        f"{row.errors:>7} {share:>6}"
    )


def _cli() -> None:
    if len(sys.argv) >= 2 and sys.argv[1] == "serve":
        kind, port = sys.argv[2], int(sys.argv[3])
        if kind == "kit":
            _serve_kit(port)
            return
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(_serve_bare(port))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--concurrency", type=int, default=32)
    # 16, not ghz's 1: the kernel spreads a port's connections over the workers (SO_REUSEPORT)
    # by a hash of their addresses, and 4 connections often landed on one worker of two.
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--products", type=int, default=20)
    parser.add_argument(
        "--workers",
        type=lambda s: [int(n) for n in s.split(",")],
        default=[1],
        help="worker counts of the untraced catalog replica, e.g. 1,2 (the first is the base)",
    )
    asyncio.run(main(parser.parse_args()))


if __name__ == "__main__":
    _cli()
