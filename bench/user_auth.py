"""Login and GetMe through the gateway, over REST and gRPC: requests/s, p50 and p99.

    uv run --frozen python -m bench.user_auth [--gateway 127.0.0.1:8080] [--seconds 10]
        [--concurrency 16]

Needs the platform running (`make run`). Registers one account per run, then drives each
operation for `--seconds` with `--concurrency` requests in flight and prints one table, so the
figures of one run sit side by side. Login is bound by Argon2id (64 MiB, 3 passes per
attempt, by design); GetMe is a token check plus one Cassandra read. The load generator shares
the machine's cores with the servers: compare figures of one machine, not across machines.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import grpc
import httpx
from emporium.user.v1 import user_service_pb2, user_service_pb2_grpc

PASSWORD = "bench password 1234"


@dataclass
class Result:
    name: str
    latencies: list[float]
    errors: int
    seconds: float

    def row(self) -> str:
        ordered = sorted(self.latencies) or [0.0]
        p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
        return (
            f"{self.name:<22} {len(self.latencies) / self.seconds:>9.0f} "
            f"{statistics.median(ordered) * 1000:>9.1f} {p99 * 1000:>9.1f} {self.errors:>7}"
        )


async def drive(name: str, call: Callable[[], Awaitable[None]], seconds: float, concurrency: int):
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal errors
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            try:
                await call()
            except Exception:
                errors += 1
                continue
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return Result(name, latencies, errors, time.perf_counter() - started)


async def main(gateway: str, seconds: float, concurrency: int) -> None:
    email = f"bench-{secrets.token_hex(6)}@example.com"
    base = f"http://{gateway}"
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with (
        httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as http,
        grpc.aio.insecure_channel(gateway) as channel,
    ):
        stub = user_service_pb2_grpc.UserServiceStub(channel)
        registered = await http.post(
            "/v1/users:register",
            json={"email": email, "password": PASSWORD, "display_name": "Bench"},
        )
        registered.raise_for_status()
        credentials = {"email": email, "password": PASSWORD}
        login = await http.post("/v1/auth:login", json=credentials)
        login.raise_for_status()
        token = login.json()["access_token"]
        bearer = {"authorization": f"Bearer {token}"}

        async def rest_login() -> None:
            (await http.post("/v1/auth:login", json=credentials)).raise_for_status()

        async def grpc_login() -> None:
            await stub.Login(user_service_pb2.LoginRequest(**credentials))

        async def rest_me() -> None:
            (await http.get("/v1/users/me", headers=bearer)).raise_for_status()

        async def grpc_me() -> None:
            await stub.GetMe(user_service_pb2.GetMeRequest(), metadata=list(bearer.items()))

        results = []
        for name, call in [
            ("GetMe REST", rest_me),
            ("GetMe gRPC", grpc_me),
            ("Login REST", rest_login),
            ("Login gRPC", grpc_login),
        ]:
            results.append(await drive(name, call, seconds, concurrency))

    print(f"gateway {gateway}, {seconds:g} s per operation, {concurrency} in flight")
    print(f"{'operation':<22} {'req/s':>9} {'p50 ms':>9} {'p99 ms':>9} {'errors':>7}")
    for result in results:
        print(result.row())
    me = {r.name: len(r.latencies) / r.seconds for r in results}
    if me.get("Login REST"):
        print(f"GetMe/Login throughput ratio (REST): {me['GetMe REST'] / me['Login REST']:.0f}x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--gateway", default="127.0.0.1:8080")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    asyncio.run(main(args.gateway, args.seconds, args.concurrency))
