"""Webhook deliveries: deliveries/s to a local receiver, and event published -> delivered latency.

    uv run --frozen python -m bench.webhooks [--gateway 127.0.0.1:8080] [--events 500]
        [--rate 0]

Needs the platform running with the webhooks service (`make run`; the local stack lets it
deliver to 127.0.0.1 over http). Signs in as the development admin, starts a receiver on
127.0.0.1 (an asyncio HTTP/1.1 server answering 204 to every POST), creates an endpoint for
`emporium.catalog.v1.ProductCreated` pointing at it, then publishes `--events` ProductCreated
events on the bus as the catalog would (EMPORIUM_RABBITMQ_URL; `--rate` per second, 0 = as
fast as the broker confirms). Each event is timed from the moment its publish was confirmed
to the moment the receiver got the request with its webhook-id; the run prints p50/p99 of
that, how many arrived, and deliveries/s (arrivals over the span from the first publish to the
last arrival). The endpoint is deleted afterwards. Prints figures, asserts nothing: the load
generator shares the machine's cores with the servers.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import time
import uuid

import httpx
from emporium.catalog.v1 import catalog_events_pb2, product_pb2

from kit.bus import Bus
from kit.config import RabbitSettings
from kit.events import Event

ADMIN = {"email": "admin@example.com", "password": "emporium-admin-dev"}
EVENT_TYPE = "emporium.catalog.v1.ProductCreated"


class Receiver:
    """A minimal HTTP/1.1 keep-alive server: records the arrival time of each webhook-id."""

    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}
        self.everything = asyncio.Event()
        self.expected = 0
        self.server: asyncio.Server | None = None
        self.connections: set[asyncio.Task] = set()

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/bench"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self.connections.add(task)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                headers = {}
                for line in head.decode("latin-1").split("\r\n")[1:]:
                    if ":" in line:
                        name, value = line.split(":", 1)
                        headers[name.strip().lower()] = value.strip()
                await reader.readexactly(int(headers.get("content-length", "0")))
                webhook_id = headers.get("webhook-id", "")
                if webhook_id and webhook_id not in self.arrived:
                    self.arrived[webhook_id] = time.perf_counter()
                    if len(self.arrived) >= self.expected:
                        self.everything.set()
                writer.write(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
            self.connections.discard(task)  # type: ignore[arg-type]

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
        for task in list(self.connections):  # the service keeps its connections alive
            task.cancel()
        await asyncio.gather(*self.connections, return_exceptions=True)


def _ok(response: httpx.Response) -> dict:
    if response.status_code != 200:
        raise SystemExit(f"{response.request.url}: {response.status_code} {response.text}")
    return response.json()


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values) or [0.0]
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


async def main(args: argparse.Namespace) -> None:
    receiver = Receiver()
    receiver.expected = args.events
    url = await receiver.start()
    async with httpx.AsyncClient(base_url=f"http://{args.gateway}", timeout=30) as api:
        admin = {
            "authorization": "Bearer "
            + _ok(await api.post("/v1/auth:login", json=ADMIN))["access_token"]
        }
        endpoint = _ok(
            await api.post(
                "/v1/webhooks/endpoints",
                json={"url": url, "event_types": [EVENT_TYPE], "description": "bench"},
                headers=admin,
            )
        )
        bus = await Bus.connect(RabbitSettings.from_env(), source="catalog")
        published: dict[str, float] = {}
        try:
            started = time.perf_counter()
            gap = 1 / args.rate if args.rate else 0.0
            batch = 1 if gap else 50
            for first in range(0, args.events, batch):
                events = [
                    Event.of(
                        catalog_events_pb2.ProductCreated(
                            product=product_pb2.Product(
                                id=str(uuid.uuid4()), sku=f"BENCH-{first + n}"
                            )
                        ),
                        "catalog",
                    )
                    for n in range(min(batch, args.events - first))
                ]
                await bus.publish(events)
                confirmed = time.perf_counter()
                for event in events:
                    published[event.id] = confirmed
                if gap:
                    await asyncio.sleep(gap)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(receiver.everything.wait(), args.timeout)
        finally:
            await bus.close()
            await api.delete(f"/v1/webhooks/endpoints/{endpoint['id']}", headers=admin)
            await receiver.close()
    latencies = [receiver.arrived[i] - published[i] for i in published if i in receiver.arrived]
    last = max(receiver.arrived.values(), default=started)
    span = max(last - started, 1e-9)
    print(f"webhooks bench: {args.events} events, receiver on 127.0.0.1")
    print(f"{'':<28} {'p50 ms':>9} {'p99 ms':>9}")
    print(
        f"{'published -> delivered':<28} {statistics.median(latencies or [0]) * 1000:>9.1f} "
        f"{_percentile(latencies, 0.99) * 1000:>9.1f}"
    )
    print(f"delivered: {len(latencies)} of {args.events}")
    print(f"deliveries/s: {len(latencies) / span:.1f}")


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gateway", default="127.0.0.1:8080")
    parser.add_argument("--events", type=int, default=500)
    parser.add_argument("--rate", type=float, default=0.0, help="events/s; 0 = unpaced")
    parser.add_argument("--timeout", type=float, default=120.0)
    return parser.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(parse()))
