"""GetProduct and ListProducts through the gateway, cached and uncached: req/s, p50 and p99.

    uv run --frozen python -m bench.catalog_reads [--gateway 127.0.0.1:8080] [--seconds 10]
        [--concurrency 16] [--products 50]

Needs the platform running (`make run`). Signs in as the development admin
(admin@example.com), creates `--products` products, then drives each read over REST for
`--seconds` with `--concurrency` requests in flight and prints one table and the cached /
uncached throughput ratios. "Uncached" sends `cache-control: no-cache`, which the catalog
honours for admins only: the same call, token check and encoding, with Redis skipped and
Cassandra read every time. Both runs use the admin token so the figures differ only by the
cache. The load generator shares the machine's cores with the servers: compare figures of one
machine, not across machines.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import secrets
import uuid
from collections.abc import Awaitable, Callable

import httpx

from bench.harness import HEADER, drive

ADMIN = ("admin@example.com", "emporium-admin-dev")


async def main(gateway: str, seconds: float, concurrency: int, count: int) -> None:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=f"http://{gateway}", limits=limits, timeout=30) as http:
        login = await http.post("/v1/auth:login", json={"email": ADMIN[0], "password": ADMIN[1]})
        login.raise_for_status()
        admin = {"authorization": f"Bearer {login.json()['access_token']}"}
        fresh = {**admin, "cache-control": "no-cache"}
        word = f"bench{secrets.token_hex(4)}"
        ids = []
        for i in range(count):
            created = await http.post(
                "/v1/products",
                params={"request_id": str(uuid.uuid4())},
                json={
                    "sku": f"BENCH-{word}-{i}",
                    "title": f"Bench {word} {i}",
                    "price": {"currency_code": "USD", "units": str(10 + i)},
                },
                headers=admin,
            )
            created.raise_for_status()
            ids.append(created.json()["id"])
        cycle = itertools.cycle(ids)

        def get(headers: dict[str, str]) -> Callable[[], Awaitable[None]]:
            async def call() -> None:
                response = await http.get(f"/v1/products/{next(cycle)}", headers=headers)
                response.raise_for_status()

            return call

        def listing(headers: dict[str, str]) -> Callable[[], Awaitable[None]]:
            async def call() -> None:
                response = await http.get(
                    "/v1/products", params={"query": word, "page_size": 20}, headers=headers
                )
                response.raise_for_status()

            return call

        results = []
        for name, call in [
            ("GetProduct cached", get(admin)),
            ("GetProduct uncached", get(fresh)),
            ("ListProducts cached", listing(admin)),
            ("ListProducts uncached", listing(fresh)),
        ]:
            results.append(await drive(name, call, seconds, concurrency))

    print(
        f"gateway {gateway}, {seconds:g} s per operation, {concurrency} in flight, {count} products"
    )
    print(HEADER)
    for result in results:
        print(result.row())
    rate = {r.name: r.rate for r in results}
    for op in ("GetProduct", "ListProducts"):
        if rate.get(f"{op} uncached"):
            ratio = rate[f"{op} cached"] / rate[f"{op} uncached"]
            print(f"{op} cached/uncached throughput ratio: {ratio:.2f}x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--gateway", default="127.0.0.1:8080")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--products", type=int, default=50)
    args = parser.parse_args()
    asyncio.run(main(args.gateway, args.seconds, args.concurrency, args.products))
