"""Checkout through the gateway, in one run: the PlaceOrder rate alone, the rate of orders
reaching PAID, their ratio, PlaceOrder -> PAID latency at a paced offered rate, and Cassandra
reads per order.

    uv run --frozen python -m bench.checkout [--gateway 127.0.0.1:8080] [--orders 300]
        [--concurrency 16] [--rate 20] [--paced-seconds 15] [--shoppers 16]

Needs the whole platform running (`make run`; the gateway and Cassandra ports come from the
environment, EMPORIUM_GATEWAY_PORT / EMPORIUM_CASSANDRA_*, as `infra/local/stack env` prints
them). Signs in as the development admin, creates one product with plenty of stock, registers
`--shoppers` shoppers with a sandbox card each, then:

1. saturation: places `--orders` orders with `--concurrency` in flight, as fast as the order
   service takes them. The PlaceOrder rate is that of the calls alone; the rate of orders
   reaching PAID counts from the first PlaceOrder to the last PAID (each order is followed by a
   WatchOrder stream through the gateway, so measuring adds no polling); the ratio of the two
   is printed as `saga/PlaceOrder ratio: X`.
2. paced: offers `--rate` orders/s for `--paced-seconds` and prints p50/p99 PlaceOrder -> PAID.
3. Cassandra reads per order: the node's own per-table counters (`system_views.local_read_latency`
   and `local_scan_latency`, no JMX or nodetool needed) over the emporium_* keyspaces, before
   and after phase 1, divided by the orders of phase 1 (writes and conditional writes alike,
   from `local_write_latency` / `cas_*`, are printed beside them).
4. CPU per order, by process (services, Cassandra, RabbitMQ, Envoy, the load generator ...):
   /proc's counters over phase 1 and its settling, divided by its orders. On a machine the
   stack saturates, the orders/s reaching PAID is about its cores over this sum.

Prints figures and the issue's targets beside them; asserts nothing (the load generator shares
the machine's cores with the servers).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import secrets
import statistics
import time
import uuid
from pathlib import Path

import grpc
import httpx
from emporium.order.v1 import order_pb2, order_service_pb2, order_service_pb2_grpc

ADMIN = {"email": "admin@example.com", "password": "emporium-admin-dev"}
PASSWORD = "correct horse battery"
ADDRESS = {"region_code": "US", "postal_code": "94105", "address_lines": ["1 Market St"]}
O = order_pb2.Order  # noqa: E741
PAID_OR_LATER = {O.STATE_PAID, O.STATE_SHIPPED, O.STATE_DELIVERED}


def _ok(response: httpx.Response) -> dict:
    if response.status_code != 200:
        raise RuntimeError(f"{response.request.url}: {response.status_code} {response.text}")
    return response.json()


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values) or [0.0]
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


async def _shopper(api: httpx.AsyncClient) -> tuple[dict[str, str], str]:
    email = f"bench-{secrets.token_hex(6)}@example.com"
    _ok(
        await api.post(
            "/v1/users:register",
            json={"email": email, "password": PASSWORD, "display_name": "Bench"},
        )
    )
    login = _ok(
        await api.post(
            "/v1/auth:login", json={"email": email, "password": PASSWORD, "display_name": "Bench"}
        )
    )
    headers = {"authorization": f"Bearer {login['access_token']}"}
    card = _ok(
        await api.post(
            "/v1/payment-methods",
            json={"request_id": str(uuid.uuid4()), "provider_token": "tok_visa"},
            headers=headers,
        )
    )
    return headers, card["id"]


TARGETS = (
    "targets (issue 11, printed, not asserted): ratio >= 0.8, >= 25 orders/s reach PAID, "
    "p99 PlaceOrder -> PAID < 2 s at 20/s offered, reads per order at most half of before"
)


class CassandraCounters:
    """Per-table operation counts of the local Cassandra node, from its virtual tables."""

    VIEWS = ("local_read_latency", "local_scan_latency", "local_write_latency")

    def __init__(self) -> None:
        from cassandra.auth import PlainTextAuthProvider
        from cassandra.cluster import Cluster

        from kit.config import CassandraSettings

        # The stack's env logs in as the administrator (`infra/local/stack env`): the node's
        # virtual tables are not any service role's to read.
        settings = CassandraSettings.from_env("emporium")
        login = {}
        if settings.username and settings.password is not None:
            login["auth_provider"] = PlainTextAuthProvider(
                settings.username, settings.password.get_secret_value()
            )
        self._cluster = Cluster(
            list(settings.hosts),
            port=settings.port,
            connect_timeout=30,
            control_connection_timeout=30,
            ssl_context=settings.ssl_context(),
            **login,
        )
        self._session = self._cluster.connect()

    def snapshot(self) -> dict[str, dict[str, int]]:
        """view -> "keyspace.table" -> count, for the emporium keyspaces."""
        counts: dict[str, dict[str, int]] = {}
        for view in self.VIEWS:
            rows = self._session.execute(
                f"SELECT keyspace_name, table_name, count FROM system_views.{view}"
            )
            counts[view] = {
                f"{r.keyspace_name}.{r.table_name}": r.count
                for r in rows
                if r.keyspace_name.startswith("emporium")
            }
        return counts

    def close(self) -> None:
        self._cluster.shutdown()


# What a process is, from its command line (the first pattern that matches names it).
PROCESS_NAMES = (
    (r"-m services\.(\w+)", None),
    (r"org\.apache\.cassandra|cassandra", "cassandra"),
    (r"opensearch", "opensearch"),
    (r"beam\.smp|rabbit", "rabbitmq"),
    (r"redis-server", "redis"),
    (r"ferretdb", "ferretdb"),
    (r"postgres", "postgres (ferretdb)"),
    (r"envoy", "envoy"),
    (r"-m bench\.checkout", "bench (load generator)"),
)


def process_name(cmdline: str) -> str | None:
    for pattern, name in PROCESS_NAMES:
        found = re.search(pattern, cmdline)
        if found:
            return name or found.group(1)
    return None


def cpu_by_process(proc: Path = Path("/proc")) -> dict[str, float]:
    """CPU seconds (user + system) each named process has used so far, summed by name."""
    tick = os.sysconf("SC_CLK_TCK")
    used: dict[str, float] = {}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            stat = (entry / "stat").read_text()
        except OSError:  # gone meanwhile
            continue
        name = process_name(cmdline)
        if name is None:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        used[name] = used.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return used


def _delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0) > 0}


class Bench:
    def __init__(self, api: httpx.AsyncClient, stub, product: str, option: str, shoppers):
        self.api = api
        self.stub = stub
        self.product = product
        self.option = option
        self.shoppers = shoppers
        self.timeout = 60.0

    async def place(self, n: int) -> tuple[float, float, str | None, dict[str, str]]:
        """(start, PlaceOrder seconds, order id or None, the shopper's headers)."""
        headers, card = self.shoppers[n % len(self.shoppers)]
        started = time.perf_counter()
        response = await self.api.post(
            "/v1/orders",
            json={
                "request_id": str(uuid.uuid4()),
                "items": [{"product_id": self.product, "quantity": 1}],
                "shipping_address": ADDRESS,
                "shipping_option_id": self.option,
                "payment_method_id": card,
            },
            headers=headers,
        )
        took = time.perf_counter() - started
        order_id = response.json()["id"] if response.status_code == 200 else None
        return started, took, order_id, headers

    async def paid_at(self, order_id: str, headers: dict[str, str]) -> float | None:
        """When the order's WatchOrder stream first shows it PAID or later; None if never."""
        try:
            async with asyncio.timeout(self.timeout):
                stream = self.stub.WatchOrder(
                    order_service_pb2.WatchOrderRequest(id=order_id),
                    metadata=[("authorization", headers["authorization"])],
                )
                async for message in stream:
                    if message.order.state in PAID_OR_LATER:
                        stream.cancel()
                        return time.perf_counter()
                    if message.order.state == O.STATE_CANCELLED:
                        return None
        except (TimeoutError, grpc.aio.AioRpcError):
            return None
        return None


async def _setup(api: httpx.AsyncClient, args: argparse.Namespace):
    admin_login = _ok(await api.post("/v1/auth:login", json=ADMIN))
    admin = {"authorization": f"Bearer {admin_login['access_token']}"}
    body = {
        "sku": f"BENCH-{secrets.token_hex(5).upper()}",
        "title": "Bench mug",
        "price": {"currency_code": "USD", "units": "10"},
        "weight_grams": 300,
    }
    product = _ok(
        await api.post(
            "/v1/products", params={"request_id": str(uuid.uuid4())}, json=body, headers=admin
        )
    )
    _ok(
        await api.post(
            f"/v1/products/{product['id']}/stock:adjust",
            json={
                "request_id": str(uuid.uuid4()),
                "delta": (args.orders + int(args.rate * args.paced_seconds)) * 2,
                "reason": "REASON_RESTOCK",
            },
            headers=admin,
        )
    )
    quote = _ok(
        await api.post(
            "/v1/shipping-options:quote",
            json={
                "destination": ADDRESS,
                "items": [{"product_id": product["id"], "quantity": 1, "weight_grams": 300}],
            },
        )
    )
    option = quote["shipping_options"][0]["id"]
    # A few at a time: registering hashes a password (Argon2id), which is CPU-bound on purpose.
    limit = asyncio.Semaphore(4)

    async def shopper() -> tuple[dict[str, str], str]:
        async with limit:
            return await _shopper(api)

    shoppers = await asyncio.gather(*(shopper() for _ in range(args.shoppers)))
    return product["id"], option, shoppers


async def _saturate(bench: Bench, args: argparse.Namespace) -> dict[str, float]:
    semaphore = asyncio.Semaphore(args.concurrency)
    place_done: list[float] = []
    place_latencies: list[float] = []
    paid: list[float] = []
    failed = 0

    async def one(n: int) -> None:
        nonlocal failed
        async with semaphore:
            started, took, order_id, headers = await bench.place(n)
            place_latencies.append(took)
            place_done.append(started + took)
        if order_id is None:
            failed += 1
            return
        at = await bench.paid_at(order_id, headers)
        if at is None:
            failed += 1
        else:
            paid.append(at)

    began = time.perf_counter()
    await asyncio.gather(*(one(n) for n in range(args.orders)))
    place_rate = len(place_done) / (max(place_done) - began)
    paid_rate = len(paid) / (max(paid) - began) if paid else 0.0
    return {
        "place_rate": place_rate,
        "paid_rate": paid_rate,
        "paid": len(paid),
        "failed": failed,
        "place_p50": statistics.median(place_latencies),
        "place_p99": _percentile(place_latencies, 0.99),
    }


async def _paced(bench: Bench, args: argparse.Namespace) -> dict[str, float]:
    latencies: list[float] = []
    failed = 0
    count = int(args.rate * args.paced_seconds)

    async def one(n: int, at: float) -> None:
        nonlocal failed
        await asyncio.sleep(max(0.0, at - time.perf_counter()))
        started, _, order_id, headers = await bench.place(n)
        paid = await bench.paid_at(order_id, headers) if order_id else None
        if paid is None:
            failed += 1
        else:
            latencies.append(paid - started)

    began = time.perf_counter()
    await asyncio.gather(*(one(n, began + n / args.rate) for n in range(count)))
    return {
        "orders": count,
        "paid": len(latencies),
        "failed": failed,
        "p50": statistics.median(latencies or [float("nan")]),
        "p99": _percentile(latencies, 0.99),
    }


async def main(args: argparse.Namespace) -> None:
    channel = grpc.aio.insecure_channel(args.gateway, options=[("grpc.enable_http_proxy", 0)])
    stub = order_service_pb2_grpc.OrderServiceStub(channel)
    counters = CassandraCounters()
    limits = httpx.Limits(max_connections=4 * args.concurrency + 64)
    async with (
        channel,
        httpx.AsyncClient(base_url=f"http://{args.gateway}", timeout=60, limits=limits) as api,
    ):
        product, option, shoppers = await _setup(api, args)
        bench = Bench(api, stub, product, option, shoppers)
        bench.timeout = args.timeout
        before = await asyncio.to_thread(counters.snapshot)
        cpu_before = cpu_by_process()
        saturated = await _saturate(bench, args)
        # The tail of the saga (shipping, its events) settles before the counters are read.
        await asyncio.sleep(args.settle_seconds)
        cpu = _delta(cpu_before, cpu_by_process())
        after = await asyncio.to_thread(counters.snapshot)
        paced = await _paced(bench, args)
    counters.close()

    reads = {
        view: _delta(before[view], after[view])
        for view in ("local_read_latency", "local_scan_latency")
    }
    writes = _delta(before["local_write_latency"], after["local_write_latency"])
    total_reads = sum(sum(v.values()) for v in reads.values())
    ratio = saturated["paid_rate"] / saturated["place_rate"] if saturated["place_rate"] else 0
    print(f"checkout bench: {args.orders} orders at concurrency {args.concurrency}, then")
    print(f"  {args.rate:g} orders/s offered for {args.paced_seconds:g} s")
    # Everything here shares the machine's cores: figures mean little above load ~2 on 2 cores.
    loads = " / ".join(f"{n:.1f}" for n in os.getloadavg())
    print(f"load average (1 / 5 / 15 min) at the end: {loads} on {os.cpu_count()} cores")
    print(
        f"PlaceOrder rate alone: {saturated['place_rate']:.1f}/s "
        f"(p50 {saturated['place_p50'] * 1000:.0f} ms, p99 {saturated['place_p99'] * 1000:.0f} ms)"
    )
    print(
        f"orders/s reaching PAID: {saturated['paid_rate']:.1f} "
        f"({saturated['paid']:.0f} of {args.orders}; {saturated['failed']:.0f} failed or timed out)"
    )
    print(f"saga/PlaceOrder ratio: {ratio:.2f}")
    print(
        f"at {args.rate:g}/s offered: PlaceOrder -> PAID p50 {paced['p50'] * 1000:.0f} ms, "
        f"p99 {paced['p99'] * 1000:.0f} ms ({paced['paid']:.0f} of {paced['orders']:.0f} PAID)"
    )
    print(
        f"Cassandra reads per order: {total_reads / args.orders:.1f} "
        f"(writes per order: {sum(writes.values()) / args.orders:.1f})"
    )
    top = sorted(((n, t) for view in reads.values() for t, n in view.items()), reverse=True)[
        : args.top
    ]
    for count, table in top:
        print(f"  {table:<48} {count / args.orders:>7.1f} reads/order")
    # Where an order's CPU goes (phase 1 and its settling; /proc, so Linux only).
    print(f"CPU per order: {sum(cpu.values()) / args.orders * 1000:.0f} ms, by process:")
    for name, seconds in sorted(cpu.items(), key=lambda item: -item[1])[: args.top + 4]:
        print(f"  {name:<48} {seconds / args.orders * 1000:>7.1f} ms/order")
    print(TARGETS)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    port = os.environ.get("EMPORIUM_GATEWAY_PORT", "8080")
    parser.add_argument("--gateway", default=f"127.0.0.1:{port}")
    parser.add_argument("--orders", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rate", type=float, default=20.0, help="orders/s of the paced phase")
    parser.add_argument("--paced-seconds", type=float, default=15.0)
    parser.add_argument("--shoppers", type=int, default=16)
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for PAID")
    parser.add_argument("--settle-seconds", type=float, default=3.0)
    parser.add_argument("--top", type=int, default=8, help="tables listed by reads")
    return parser.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(parse()))
