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

import grpc
import httpx
from emporium.user.v1 import user_service_pb2, user_service_pb2_grpc

from bench.harness import HEADER, drive

PASSWORD = "bench password 1234"


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
    print(HEADER)
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
