"""What tracing costs, and how fast the logging service indexes: one run, two figures.

    uv run --frozen python -m bench.observability [--seconds 10] [--concurrency 16]
        [--records 50000] [--sample-ratio R]

Needs the platform running (`make run`; with EMPORIUM_PORT_OFFSET, run it under the same
variable). It

1. starts two extra catalog processes (replicas, on free ports) against the stack's
   Cassandra, Redis and RabbitMQ: one exporting nothing, one exporting traces, logs and
   metrics to the logging service with `EMPORIUM_TRACE_SAMPLE_RATIO` = R (default: the
   environment's, else 1.0); it drives cached GetProduct over gRPC against each for `--seconds`
   with `--concurrency` calls in flight, and prints req/s, p50, p99 and the ratio on/off (the
   share of throughput tracing keeps);
2. sends `--records` log records to the logging service's OTLP receiver in exports of 500,
   and prints how many records per second were indexed (received to searchable in OpenSearch).

The load generator shares the machine's cores with the servers: compare figures of one machine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import secrets
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import grpc
import httpx
from emporium.catalog.v1 import catalog_service_pb2, catalog_service_pb2_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2, logs_service_pb2_grpc
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.logs.v1 import logs_pb2
from opentelemetry.proto.resource.v1 import resource_pb2

from bench.harness import HEADER, drive
from gateway import render
from kit.config import OpenSearchSettings, TelemetrySettings

ROOT = Path(__file__).resolve().parents[1]
ADMIN = {"email": "admin@example.com", "password": "emporium-admin-dev"}
BATCH = 500


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def _products(gateway: str, count: int) -> list[str]:
    async with httpx.AsyncClient(base_url=f"http://{gateway}", timeout=30) as http:
        login = await http.post("/v1/auth:login", json=ADMIN)
        login.raise_for_status()
        admin = {"authorization": f"Bearer {login.json()['access_token']}"}
        word = secrets.token_hex(4)
        ids = []
        for i in range(count):
            created = await http.post(
                "/v1/products",
                params={"request_id": str(uuid.uuid4())},
                json={
                    "sku": f"BENCH-OBS-{word}-{i}",
                    "title": f"Bench {word} {i}",
                    "price": {"currency_code": "USD", "units": str(10 + i)},
                    "state": "STATE_ACTIVE",
                },
                headers=admin,
            )
            created.raise_for_status()
            ids.append(created.json()["id"])
        return ids


@contextlib.asynccontextmanager
async def _catalog(otlp_endpoint: str, sample_ratio: float):
    """A catalog replica on a free port; exporting to `otlp_endpoint` unless it is empty."""
    port = _free_port()
    env = {
        **os.environ,
        "EMPORIUM_CATALOG_GRPC_PORT": str(port),
        "EMPORIUM_OTLP_ENDPOINT": otlp_endpoint,
        "EMPORIUM_TRACE_SAMPLE_RATIO": str(sample_ratio),
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.catalog",
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    address = f"127.0.0.1:{port}"
    try:
        async with grpc.aio.insecure_channel(address) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            deadline = time.monotonic() + 90
            while True:
                with contextlib.suppress(grpc.aio.AioRpcError):
                    reply = await health.Check(health_pb2.HealthCheckRequest(), timeout=2)
                    if reply.status == health_pb2.HealthCheckResponse.SERVING:
                        break
                if process.returncode is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the catalog replica on {address} did not start")
                await asyncio.sleep(0.5)
            yield catalog_service_pb2_grpc.CatalogServiceStub(channel)
    finally:
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), 20)
        except TimeoutError:
            process.kill()
            await process.wait()


async def tracing_cost(
    gateway: str, otlp: str, ratio: float, seconds: float, concurrency: int
) -> None:
    ids = await _products(gateway, 20)
    results = []
    for name, endpoint in (("GetProduct tracing off", ""), ("GetProduct tracing on", otlp)):
        async with _catalog(endpoint, ratio) as stub:
            for product_id in ids:  # warm the cache
                await stub.GetProduct(catalog_service_pb2.GetProductRequest(id=product_id))
            cycle = itertools.cycle(ids)

            async def call(stub=stub, cycle=cycle) -> None:
                await stub.GetProduct(catalog_service_pb2.GetProductRequest(id=next(cycle)))

            results.append(await drive(name, call, seconds, concurrency))
    print(
        f"catalog replicas, cached GetProduct over gRPC, {seconds:g} s each, "
        f"{concurrency} in flight, sampling ratio {ratio:g}"
    )
    print(HEADER)
    for result in results:
        print(result.row())
    print(f"tracing on/off throughput ratio: {results[1].rate / results[0].rate:.2f}")


def _export(run: str, start: int) -> logs_service_pb2.ExportLogsServiceRequest:
    now = time.time_ns()
    records = []
    for i in range(start, start + BATCH):
        record = logs_pb2.LogRecord(
            time_unix_nano=now,
            severity_number=9,
            severity_text="INFO",
            attributes=[
                common_pb2.KeyValue(key="bench.run", value=common_pb2.AnyValue(string_value=run))
            ],
        )
        record.body.string_value = f"bench record {i} of run {run}"
        records.append(record)
    resource = resource_pb2.Resource(
        attributes=[
            common_pb2.KeyValue(key="service.name", value=common_pb2.AnyValue(string_value="bench"))
        ]
    )
    return logs_service_pb2.ExportLogsServiceRequest(
        resource_logs=[
            logs_pb2.ResourceLogs(
                resource=resource, scope_logs=[logs_pb2.ScopeLogs(log_records=records)]
            )
        ]
    )


async def indexing_rate(otlp: str, opensearch: str, total: int) -> None:
    run = secrets.token_hex(6)
    exports = [_export(run, start) for start in range(0, total, BATCH)]
    refused = 0
    started = time.perf_counter()
    async with grpc.aio.insecure_channel(otlp) as channel:
        stub = logs_service_pb2_grpc.LogsServiceStub(channel)
        queue = list(exports)

        async def sender() -> None:
            nonlocal refused
            while queue:
                request = queue.pop()
                while True:
                    try:
                        await stub.Export(request, timeout=10)
                        break
                    except grpc.aio.AioRpcError as error:
                        if error.code() != grpc.StatusCode.UNAVAILABLE:
                            raise
                        refused += 1  # the buffer is full: back off as an exporter would
                        await asyncio.sleep(0.2)

        await asyncio.gather(*(sender() for _ in range(4)))
    accepted = time.perf_counter() - started
    query = {"query": {"term": {"attributes.bench.run": run}}}
    async with httpx.AsyncClient(base_url=opensearch, trust_env=False, timeout=30) as http:
        while True:
            await http.post("/logs-generic.otel-default/_refresh")
            found = await http.post("/logs-generic.otel-default/_count", json=query)
            count = found.json().get("count", 0) if found.status_code == 200 else 0
            if count >= len(exports) * BATCH or time.perf_counter() - started > 300:
                break
            await asyncio.sleep(0.2)
    elapsed = time.perf_counter() - started
    print(
        f"logging service: {count} log records accepted in {accepted:.1f} s "
        f"({refused} exports refused while the buffer was full) and indexed in {elapsed:.1f} s: "
        f"{count / elapsed:.0f} records/s indexed"
    )


async def main(args: argparse.Namespace) -> None:
    gw = render.load()
    otlp = TelemetrySettings.from_env("bench").otlp_endpoint or (
        f"127.0.0.1:{int(os.environ.get('EMPORIUM_OTLP_PORT') or 4317)}"
    )
    ratio = args.sample_ratio
    if ratio is None:
        ratio = TelemetrySettings.from_env("bench").sample_ratio
    await tracing_cost(f"127.0.0.1:{gw.port}", otlp, ratio, args.seconds, args.concurrency)
    await indexing_rate(otlp, OpenSearchSettings.from_env().url, args.records)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--records", type=int, default=50_000)
    parser.add_argument("--sample-ratio", type=float, default=None)
    asyncio.run(main(parser.parse_args()))
