"""Checkout through the gateway: orders/s reaching PAID, and PlaceOrder -> PAID latency.

    uv run --frozen python -m bench.checkout [--gateway 127.0.0.1:8080] [--orders 100]
        [--concurrency 8] [--shoppers 8]

Needs the platform running with payment and shipping (`make run`). Signs in as the development
admin, creates one product with plenty of stock, registers `--shoppers` shoppers with a sandbox
card each, then places `--orders` orders with `--concurrency` in flight. Each order is timed
from the PlaceOrder call until its WatchOrder stream (gRPC through the gateway, opened right
after PlaceOrder returns) first shows it PAID or later, so that measuring adds no polling
load. The run prints the PlaceOrder latency, the PlaceOrder -> PAID latency (p50, p99), how
many orders reached PAID and the rate at which they did. Prints figures, asserts nothing: the
load generator shares the machine's cores with the servers.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import statistics
import time
import uuid

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


async def main(args: argparse.Namespace) -> None:
    channel = grpc.aio.insecure_channel(args.gateway, options=[("grpc.enable_http_proxy", 0)])
    stub = order_service_pb2_grpc.OrderServiceStub(channel)
    async with channel, httpx.AsyncClient(base_url=f"http://{args.gateway}", timeout=60) as api:
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
                    "delta": args.orders * 2,
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
        shoppers = await asyncio.gather(*(_shopper(api) for _ in range(args.shoppers)))

        place_latencies: list[float] = []
        paid_latencies: list[float] = []
        paid_times: list[float] = []
        errors = 0
        semaphore = asyncio.Semaphore(args.concurrency)

        async def one(n: int) -> None:
            nonlocal errors
            headers, card = shoppers[n % len(shoppers)]
            async with semaphore:
                started = time.perf_counter()
                response = await api.post(
                    "/v1/orders",
                    json={
                        "request_id": str(uuid.uuid4()),
                        "items": [{"product_id": product["id"], "quantity": 1}],
                        "shipping_address": ADDRESS,
                        "shipping_option_id": option,
                        "payment_method_id": card,
                    },
                    headers=headers,
                )
                place_latencies.append(time.perf_counter() - started)
                if response.status_code != 200:
                    errors += 1
                    return
                order_id = response.json()["id"]
            try:
                async with asyncio.timeout(args.timeout):
                    stream = stub.WatchOrder(
                        order_service_pb2.WatchOrderRequest(id=order_id),
                        metadata=[("authorization", headers["authorization"])],
                    )
                    async for message in stream:
                        if message.order.state in PAID_OR_LATER:
                            now = time.perf_counter()
                            paid_latencies.append(now - started)
                            paid_times.append(now)
                            stream.cancel()
                            return
                        if message.order.state == O.STATE_CANCELLED:
                            break
            except (TimeoutError, grpc.aio.AioRpcError):
                pass
            errors += 1

        began = time.perf_counter()
        await asyncio.gather(*(one(n) for n in range(args.orders)))
        span = (max(paid_times) - began) if paid_times else float("nan")

    print(f"checkout bench: {args.orders} orders, concurrency {args.concurrency}")
    print(f"{'':<24} {'p50 ms':>9} {'p99 ms':>9}")
    for name, values in (("PlaceOrder", place_latencies), ("PlaceOrder -> PAID", paid_latencies)):
        print(
            f"{name:<24} {statistics.median(values or [0]) * 1000:>9.1f} "
            f"{_percentile(values, 0.99) * 1000:>9.1f}"
        )
    print(f"reached PAID: {len(paid_latencies)} of {args.orders} ({errors} failed or timed out)")
    print(f"orders/s reaching PAID: {len(paid_latencies) / span:.1f}")


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gateway", default="127.0.0.1:8080")
    parser.add_argument("--orders", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--shoppers", type=int, default=8)
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for PAID")
    return parser.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(parse()))
